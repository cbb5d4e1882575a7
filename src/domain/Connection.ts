/**
 * A measured connection as the report and the JSON API show it (SPEC §3), and
 * the per-server statistics derived from connections' events.
 */
import type { ConnectionEvent, SocksCommandName } from "./Event.js"
import { exchangeJson, exchanges } from "./Exchange.js"
import type { TorAttribution } from "./TorCircuits.js"

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
  readonly command: SocksCommandName
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

/** A connection as the JSON API shows it (SPEC §3, §6, §7): its fields, typed events, exchanges, and Tor's stream and circuit. */
export const connectionJson = (connection: Connection, tor: TorAttribution | null = null) => ({
  ...connection,
  exchanges: exchanges(connection).map(exchangeJson),
  tor
})

const roundMillis = (seconds: number): number => Math.round(seconds * 1000) / 1000

interface ExchangeCounts {
  requests: number
  responses: number
  inferred: number
  /** Waits of answered HTTP exchanges. */
  readonly waits: Array<number>
}

const countExchanges = (group: ReadonlyArray<Connection>): ExchangeCounts => {
  const counts: ExchangeCounts = { requests: 0, responses: 0, inferred: 0, waits: [] }
  for (const connection of group) {
    for (const exchange of exchanges(connection)) {
      if (exchange.inferred) {
        counts.inferred++
        continue
      }
      counts.requests++
      if (exchange.wait !== null) {
        counts.responses++
        counts.waits.push(exchange.wait)
      }
    }
  }
  return counts
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
    const { inferred, requests, responses, waits } = countExchanges(group)
    const open = group.filter((c) => c.state === "open").length
    const firstStart = Math.min(...group.map((c) => c.openedAt))
    const lastClose = Math.max(...group.map((c) => c.closedAt ?? c.openedAt))
    return {
      host,
      ports: Array.from(new Set(group.map((c) => c.port))).sort((a, b) => a - b),
      connections: group.length,
      openConnections: open,
      requests,
      responses,
      inferredExchanges: inferred,
      meanResponseTime: waits.length === 0 ? null : roundMillis(waits.reduce((a, b) => a + b, 0) / waits.length),
      totalConnectionTime: open > 0 ? null : roundMillis(lastClose - firstStart)
    }
  })
}
