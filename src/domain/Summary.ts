/**
 * The page-load summary above the time graph: totals, the span from first
 * request to last byte, and the slowest SOCKS setups and responses.
 */
import type { Connection } from "./Connection.js"
import { exchanges } from "./Exchange.js"

export interface SlowSocksSetup {
  readonly id: number
  readonly host: string
  readonly port: number
  /** SOCKS request → reply: Tor's stream setup (and any injected delay). */
  readonly seconds: number
}

export interface SlowResponse {
  readonly id: number
  readonly host: string
  readonly requestLine: string
  /** HTTP request start → response start. */
  readonly seconds: number
}

export interface Summary {
  readonly servers: number
  readonly connections: number
  readonly openConnections: number
  readonly failedConnections: number
  readonly requests: number
  readonly responses: number
  readonly bytesUp: number
  readonly bytesDown: number
  /** First HttpRequestStart to the last HttpResponseEnd; null without both. */
  readonly firstRequestToLastByte: { readonly from: number; readonly to: number } | null
  readonly slowestSocksSetups: ReadonlyArray<SlowSocksSetup>
  readonly slowestResponses: ReadonlyArray<SlowResponse>
}

const top = <A extends { readonly seconds: number }>(items: Array<A>, count: number): ReadonlyArray<A> =>
  items.sort((a, b) => b.seconds - a.seconds).slice(0, count)

export const socksSetupTime = (connection: Connection): number | undefined => {
  const reply = connection.events.find((event) => event.type === "SocksResponseEnd")
  return reply === undefined ? undefined : reply.time - connection.openedAt
}

export const summarize = (connections: ReadonlyArray<Connection>, count = 5): Summary => {
  const hosts = new Set<string>()
  const setups: Array<SlowSocksSetup> = []
  const responses: Array<SlowResponse> = []
  let requests = 0
  let answered = 0
  let bytesUp = 0
  let bytesDown = 0
  let open = 0
  let failed = 0
  let first = Infinity
  let last = -Infinity
  for (const connection of connections) {
    if (connection.host !== "") hosts.add(connection.host)
    bytesUp += connection.bytesUp
    bytesDown += connection.bytesDown
    if (connection.state === "open") open++
    if (connection.state === "failed") failed++
    const setup = socksSetupTime(connection)
    if (setup !== undefined) setups.push({ id: connection.id, host: connection.host, port: connection.port, seconds: setup })
    for (const exchange of exchanges(connection)) {
      if (exchange.inferred || exchange.request === null) continue
      requests++
      if (exchange.requestStart < first) first = exchange.requestStart
      if (exchange.responseEnd !== null && exchange.responseEnd > last) last = exchange.responseEnd
      if (exchange.wait === null) continue
      answered++
      responses.push({ id: connection.id, host: connection.host, requestLine: exchange.request.detail, seconds: exchange.wait })
    }
  }
  return {
    servers: hosts.size,
    connections: connections.length,
    openConnections: open,
    failedConnections: failed,
    requests,
    responses: answered,
    bytesUp,
    bytesDown,
    firstRequestToLastByte: first <= last ? { from: first, to: last } : null,
    slowestSocksSetups: top(setups, count),
    slowestResponses: top(responses, count)
  }
}
