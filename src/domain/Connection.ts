/**
 * A measured connection as the report and the JSON API show it (SPEC §3), and
 * the per-server statistics derived from connections' events.
 */
import type { ConnectionEvent } from "./Event.js"

export type ConnectionState = "open" | "closed" | "failed"
export type ConnectionProtocol = "http" | "tls" | "unknown" | "pending"

export interface Connection {
  readonly id: number
  /** The browser's address, `127.0.0.1:50312`. */
  readonly client: string
  /** The host the browser asked for, as sent (a name is never resolved by MITM). */
  readonly host: string
  readonly port: number
  readonly socksVersion: 4 | 5
  readonly command: string
  /**
   * The stream-isolation key the browser sent: the SOCKS5 username (Tor Browser puts the
   * first-party site there) or the SOCKS4 user id; null when none. Passwords are never kept.
   */
  readonly isolation: string | null
  /** The upstream this connection went through: `socks5://127.0.0.1:9050` or `direct`. */
  readonly upstream: string
  readonly state: ConnectionState
  readonly protocol: ConnectionProtocol
  readonly openedAt: number
  readonly closedAt: number | null
  /** Who closed first: `client`, `server`, or null while open or when MITM closed it. */
  readonly closedBy: "client" | "server" | null
  readonly bytesUp: number
  readonly bytesDown: number
  readonly events: ReadonlyArray<ConnectionEvent>
  /** Events not kept because the connection's event log reached its cap. */
  readonly eventsCut: number
  readonly error: string | null
}

export interface ServerStats {
  readonly host: string
  readonly ports: ReadonlyArray<number>
  readonly connections: number
  readonly openConnections: number
  readonly requests: number
  readonly responses: number
  /** Exchanges inferred on encrypted or unknown connections (client burst, then server burst). */
  readonly inferredExchanges: number
  /** Mean of HttpResponseStart − HttpRequestStart over answered requests, seconds. */
  readonly meanResponseTime: number | null
  /** First SocksRequestStart to last ConnectionClose; null while any connection is open. */
  readonly totalConnectionTime: number | null
}

const roundMillis = (seconds: number): number => Math.round(seconds * 1000) / 1000

/** The waits between each request and its response, matched in order on each connection. */
export const responseTimes = (connection: Connection): ReadonlyArray<number> => {
  const requests: Array<number> = []
  const waits: Array<number> = []
  let answered = 0
  for (const event of connection.events) {
    if (event.type === "HttpRequestStart") requests.push(event.time)
    else if (event.type === "HttpResponseStart" && answered < requests.length) {
      waits.push(event.time - requests[answered++])
    }
  }
  return waits
}

const countEvents = (connection: Connection, type: ConnectionEvent["type"]): number => {
  let count = 0
  for (const event of connection.events) if (event.type === type) count++
  return count
}

/** One row per requested host, in order of first appearance. */
export const serverStats = (connections: Iterable<Connection>): ReadonlyArray<ServerStats> => {
  const byHost = new Map<string, Array<Connection>>()
  for (const connection of connections) {
    if (connection.host === "") continue
    const group = byHost.get(connection.host)
    if (group === undefined) byHost.set(connection.host, [connection])
    else group.push(connection)
  }
  return Array.from(byHost, ([host, group]) => {
    const waits = group.flatMap(responseTimes)
    const open = group.filter((c) => c.state === "open").length
    const firstStart = Math.min(...group.map((c) => c.openedAt))
    const lastClose = Math.max(...group.map((c) => c.closedAt ?? c.openedAt))
    return {
      host,
      ports: Array.from(new Set(group.map((c) => c.port))).sort((a, b) => a - b),
      connections: group.length,
      openConnections: open,
      requests: group.reduce((sum, c) => sum + countEvents(c, "HttpRequestStart"), 0),
      responses: group.reduce((sum, c) => sum + countEvents(c, "HttpResponseStart"), 0),
      inferredExchanges: group.reduce((sum, c) => sum + countEvents(c, "InferredRequest"), 0),
      meanResponseTime: waits.length === 0 ? null : roundMillis(waits.reduce((a, b) => a + b, 0) / waits.length),
      totalConnectionTime: open > 0 ? null : roundMillis(lastClose - firstStart)
    }
  })
}
