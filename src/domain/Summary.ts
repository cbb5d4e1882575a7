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

/**
 * The `count` slowest items seen, the slowest first and, at equal seconds, the one seen first.
 * Kept as they come rather than sorted at the end: at 10,000 connections, sorting every
 * response to show five took a fifth of the report page's time.
 */
class Slowest<A extends { readonly seconds: number }> {
  readonly items: Array<A> = []

  constructor(private readonly count: number) {}

  /** Whether an item of these seconds would be kept: asked before the item is built. */
  admits(seconds: number): boolean {
    if (this.items.length < this.count) return true
    return this.count > 0 && seconds > this.items[this.items.length - 1].seconds
  }

  add(item: A): void {
    let at = this.items.length
    while (at > 0 && this.items[at - 1].seconds < item.seconds) at--
    this.items.splice(at, 0, item)
    if (this.items.length > this.count) this.items.pop()
  }
}

export const socksSetupTime = (connection: Connection): number | undefined => {
  const reply = connection.events.find((event) => event.type === "SocksResponseEnd")
  return reply === undefined ? undefined : reply.time - connection.openedAt
}

export const summarize = (connections: ReadonlyArray<Connection>, count = 5): Summary => {
  const hosts = new Set<string>()
  const setups = new Slowest<SlowSocksSetup>(count)
  const responses = new Slowest<SlowResponse>(count)
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
    if (setup !== undefined && setups.admits(setup)) setups.add({ id: connection.id, host: connection.host, port: connection.port, seconds: setup })
    for (const exchange of exchanges(connection)) {
      if (exchange.inferred || exchange.request === null) continue
      requests++
      if (exchange.requestStart < first) first = exchange.requestStart
      if (exchange.responseEnd !== null && exchange.responseEnd > last) last = exchange.responseEnd
      if (exchange.wait === null) continue
      answered++
      if (responses.admits(exchange.wait)) {
        responses.add({ id: connection.id, host: connection.host, requestLine: exchange.request.detail, seconds: exchange.wait })
      }
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
    slowestSocksSetups: setups.items,
    slowestResponses: responses.items
  }
}
