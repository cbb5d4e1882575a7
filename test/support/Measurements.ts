/**
 * Connections built from typed events for page tests: the facts go through
 * `stamp`, so every `detail` is made by the real event model, never typed by
 * hand. HTTP events can also come from the real decoder (`httpExchange`).
 */
import type { Connection } from "../../src/domain/Connection.js"
import { type ConnectionEvent, type DecoderEvent, type EventFacts, type EventOf, stamp } from "../../src/domain/Event.js"
import { feedHttp, initialHttpDecoder } from "../../src/domain/HttpDecoder.js"
import type { TorCircuit } from "../../src/domain/TorCircuits.js"

export type Timed = readonly [number, EventFacts | DecoderEvent]

/**
 * A connection with these recorded events: the target comes from its SocksRequestStart, the
 * state, close and byte counts from its ConnectionClose.
 */
export const connectionOfEvents = (
  id: number,
  events: ReadonlyArray<ConnectionEvent>,
  overrides: Partial<Connection> = {}
): Connection => {
  const socks = events.find((event): event is EventOf<"SocksRequestStart"> => event.type === "SocksRequestStart")
  const close = events.find((event): event is EventOf<"ConnectionClose"> => event.type === "ConnectionClose")
  return {
    id,
    client: "127.0.0.1:50000",
    host: socks?.host ?? "",
    port: socks?.port ?? 0,
    socksVersion: 5,
    command: "connect",
    isolation: null,
    upstream: "socks5://127.0.0.1:9050",
    state: close === undefined ? "open" : "closed",
    protocol: "http",
    openedAt: events[0]?.time ?? 0,
    closedAt: close?.time ?? null,
    closedBy: close?.closedBy ?? null,
    bytesUp: close?.bytesUp ?? 0,
    bytesDown: close?.bytesDown ?? 0,
    events,
    eventsCut: 0,
    error: null,
    ...overrides
  }
}

/** A connection with these events, stamped at their times (see `connectionOfEvents`). */
export const connectionWith = (
  id: number,
  host: string,
  events: ReadonlyArray<Timed>,
  overrides: Partial<Connection> = {}
): Connection =>
  connectionOfEvents(id, events.map(([time, facts]) => stamp(time, facts)), { host, ...overrides })

export const socksRequest = (host: string, port = 80): EventFacts =>
  ({ type: "SocksRequestStart", host, port, command: "connect", version: 5 })

export const socksReply = (reply = 0, replyName = "succeeded"): EventFacts =>
  ({ type: "SocksResponseEnd", reply, replyName, address: null })

export const closed = (bytesUp = 100, bytesDown = 1000, closedBy: "client" | "server" | null = "server"): EventFacts =>
  ({ type: "ConnectionClose", closedBy, bytesUp, bytesDown })

export const delayStart = (delay: "socks" | "http", ms: number, exchange: number | null = null): EventFacts =>
  ({ type: "DelayStart", delay, ms, exchange })

export const delayEnd = (delay: "socks" | "http", ms: number, exchange: number | null = null): EventFacts =>
  ({ type: "DelayEnd", delay, ms, exchange })

export const tlsClientHello = (sni: string | null, alpn: ReadonlyArray<string> = ["h2"]): EventFacts =>
  ({ type: "TlsClientHello", sni, alpn, versions: ["TLS 1.3"] })

export const decodeError = (
  _tag: "HttpParseError" | "TlsParseError" | "SocksParseError",
  message: string,
  reason = "HeaderLine"
): EventFacts => ({ type: "DecodeError", error: { _tag, reason, message, offset: null } })

/**
 * The events the real HTTP decoder reports for a request and its response, at the given
 * times: [request start/end time, response start time, response end time].
 */
export const httpExchange = (
  request: string,
  response: string,
  times: readonly [number, number, number],
  state = initialHttpDecoder
): { readonly events: Array<Timed>; readonly state: typeof initialHttpDecoder } => {
  const [up, requestEvents] = feedHttp(state, "up", Buffer.from(request, "latin1"))
  const [down, responseEvents] = feedHttp(up, "down", Buffer.from(response, "latin1"))
  const [requestAt, responseAt, responseEndAt] = times
  return {
    events: [
      ...requestEvents.map((event): Timed => [requestAt, event]),
      ...responseEvents.map((event): Timed => [event.type === "HttpResponseEnd" ? responseEndAt : responseAt, event])
    ],
    state: down
  }
}

/** A relay of a test circuit: its fingerprint is the digit forty times. */
export const torRelay = (nickname: string | null, digit: string) => ({ fingerprint: digit.repeat(40), nickname })

/**
 * A circuit as the control port's tracker reports it: guard1, middle1, exit1, built (or
 * launched, when `builtAt` is null), its build time from the two times.
 */
export const torCircuit = (id: string, launchedAt: number | null, builtAt: number | null, overrides: Partial<TorCircuit> = {}): TorCircuit => ({
  id,
  purpose: "GENERAL",
  state: builtAt === null ? "launched" : "built",
  path: [torRelay("guard1", "A"), torRelay("middle1", "B"), torRelay("exit1", "C")],
  launchedAt,
  builtAt,
  buildTime: launchedAt === null || builtAt === null ? null : Math.round((builtAt - launchedAt) * 1e6) / 1e6,
  closedAt: null,
  reason: null,
  connections: [],
  rttMs: null,
  conflux: [],
  ...overrides
})
