/**
 * Exchanges: each request with what answered it and what MITM injected into it,
 * made from a connection's typed events by one function. The time graph, the
 * page-load summary, the server statistics, the connection page, HAR and the
 * JSON API all read these; requests and responses are paired nowhere else.
 */
import type { ConnectionEvent, EventOf } from "./Event.js"
import { headerValue } from "./HttpHeaders.js"

/** One request/response pair (SPEC §6), or one inferred from the direction of encrypted bytes. */
export interface Exchange {
  readonly index: number
  readonly inferred: boolean
  readonly method: string | null
  readonly url: string | null
  readonly status: number | null
  readonly requestStart: number
  readonly requestEnd: number | null
  readonly responseStart: number | null
  readonly responseEnd: number | null
  /** responseStart − requestStart: what the browser waited, injected delay included. */
  readonly wait: number | null
  /** The part of `wait` that MITM injected (an HTTP delay), seconds; 0 when none. */
  readonly blocked: number
  readonly requestBodyBytes: number | null
  readonly responseBodyBytes: number | null
  /** The events behind it, for readers that show headers (HAR, the connection page); null when inferred. */
  readonly request: EventOf<"HttpRequestStart"> | null
  readonly response: EventOf<"HttpResponseStart"> | null
  /** The injected hold of this request: when it began and ended (end null while it still holds). */
  readonly hold: { readonly start: number; readonly end: number | null } | null
}

/** An exchange as the JSON API shows it (SPEC §6). */
export type ExchangeJson = Omit<Exchange, "request" | "response" | "hold">

/** What exchanges are made from. */
export interface ExchangeSource {
  readonly host: string
  readonly port: number
  readonly events: ReadonlyArray<ConnectionEvent>
}

/** `host:port` with an IPv6 literal in brackets; the port left out when it is the default. */
const authorityOf = (host: string, port: number, defaultPort: number): string => {
  const name = host.includes(":") ? `[${host}]` : host
  return port === defaultPort ? name : `${name}:${port}`
}

/** Absolute-form targets as they are; otherwise `http://` + Host (or the SOCKS target) + target. */
export const urlOf = (source: ExchangeSource, request: EventOf<"HttpRequestStart">): string => {
  const { method, target } = request
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target
  if (method === "CONNECT") return `http://${target}`
  const authority = headerValue(request.headers, "host") ?? authorityOf(source.host, source.port, 80)
  return `http://${authority}${target.startsWith("/") ? target : `/${target}`}`
}

interface Building {
  index: number
  inferred: boolean
  method: string | null
  url: string | null
  status: number | null
  requestStart: number
  requestEnd: number | null
  responseStart: number | null
  responseEnd: number | null
  wait: number | null
  blocked: number
  requestBodyBytes: number | null
  responseBodyBytes: number | null
  request: EventOf<"HttpRequestStart"> | null
  response: EventOf<"HttpResponseStart"> | null
  hold: { start: number; end: number | null } | null
}

const started = (index: number, time: number): Building => ({
  index,
  inferred: false,
  method: null,
  url: null,
  status: null,
  requestStart: time,
  requestEnd: null,
  responseStart: null,
  responseEnd: null,
  wait: null,
  blocked: 0,
  requestBodyBytes: null,
  responseBodyBytes: null,
  request: null,
  response: null,
  hold: null
})

const roundMicros = (seconds: number): number => Math.round(seconds * 1e6) / 1e6

/** The connection's exchanges in order: HTTP ones by their `exchange` index, inferred ones by theirs. */
export const exchangesOf = (source: ExchangeSource): ReadonlyArray<Exchange> => {
  const http: Array<Building> = []
  const inferred: Array<Building> = []
  for (const event of source.events) {
    switch (event.type) {
      case "HttpRequestStart": {
        const exchange = started(event.exchange, event.time)
        exchange.method = event.method
        exchange.url = urlOf(source, event)
        exchange.request = event
        http[event.exchange] = exchange
        break
      }
      case "HttpRequestEnd": {
        const exchange = http[event.exchange]
        if (exchange === undefined) break
        exchange.requestEnd = event.time
        exchange.requestBodyBytes = event.bodyBytes
        break
      }
      case "HttpResponseStart": {
        const exchange = http[event.exchange]
        if (exchange === undefined) break
        exchange.status = event.status
        exchange.responseStart = event.time
        exchange.response = event
        break
      }
      case "HttpResponseEnd": {
        const exchange = http[event.exchange]
        if (exchange === undefined) break
        exchange.responseEnd = event.time
        exchange.responseBodyBytes = event.bodyBytes
        break
      }
      case "DelayStart": {
        const exchange = event.exchange === null ? undefined : http[event.exchange]
        if (exchange !== undefined) exchange.hold = { start: event.time, end: null }
        break
      }
      case "DelayEnd": {
        const exchange = event.exchange === null ? undefined : http[event.exchange]
        if (exchange?.hold != null) exchange.hold.end = event.time
        break
      }
      case "InferredRequest": {
        const previous = inferred[inferred.length - 1]
        if (previous !== undefined && event.afterBytes !== null) previous.responseBodyBytes = event.afterBytes
        const exchange = started(event.exchange, event.time)
        exchange.inferred = true
        inferred.push(exchange)
        break
      }
      case "InferredResponse": {
        // It answers the latest client burst, or none (the server spoke first).
        const exchange = inferred.at(-1)?.index === event.exchange ? inferred.at(-1) : undefined
        if (exchange === undefined || exchange.responseStart !== null) break
        exchange.responseStart = event.time
        exchange.requestBodyBytes = event.afterBytes
        break
      }
    }
  }
  const all = http.length > 0 ? http.filter((exchange) => exchange !== undefined) : inferred
  for (const exchange of all) {
    if (exchange.responseStart !== null) exchange.wait = roundMicros(exchange.responseStart - exchange.requestStart)
    if (exchange.hold !== null && exchange.hold.end !== null) exchange.blocked = roundMicros(exchange.hold.end - exchange.hold.start)
  }
  return all
}

const memo = new WeakMap<ExchangeSource, { readonly events: number; readonly exchanges: ReadonlyArray<Exchange> }>()

/**
 * `exchangesOf`, remembered per connection until it records another event: the report's
 * summary, server table and time graph all ask for the same connections' exchanges.
 */
export const exchanges = (source: ExchangeSource): ReadonlyArray<Exchange> => {
  const known = memo.get(source)
  if (known !== undefined && known.events === source.events.length) return known.exchanges
  const made = exchangesOf(source)
  memo.set(source, { events: source.events.length, exchanges: made })
  return made
}

/** The JSON API's view of an exchange: the SPEC §6 fields, in order. */
export const exchangeJson = (exchange: Exchange): ExchangeJson => ({
  index: exchange.index,
  inferred: exchange.inferred,
  method: exchange.method,
  url: exchange.url,
  status: exchange.status,
  requestStart: exchange.requestStart,
  requestEnd: exchange.requestEnd,
  responseStart: exchange.responseStart,
  responseEnd: exchange.responseEnd,
  wait: exchange.wait,
  blocked: exchange.blocked,
  requestBodyBytes: exchange.requestBodyBytes,
  responseBodyBytes: exchange.responseBodyBytes
})
