/**
 * The measurements as an HTTP Archive (HAR 1.2): one entry per HTTP exchange, timed at
 * the SOCKS proxy. `connect` is the SOCKS setup (Tor's stream setup, with any SOCKS delay
 * MITM injected) for a connection's first request; `blocked` is MITM's injected HTTP delay.
 */
import { isIP } from "node:net"
import type { Connection } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"

export interface HarOptions {
  /** Wall-clock epoch milliseconds of session time 0. */
  readonly sessionStartMillis: number
  readonly creatorVersion: string
}

export interface HarNameValue {
  readonly name: string
  readonly value: string
}

export interface HarCookie extends HarNameValue {
  readonly path?: string
  readonly domain?: string
  readonly expires?: string
  readonly httpOnly?: boolean
  readonly secure?: boolean
}

/** Milliseconds; -1 where a phase does not apply (HAR allows that for blocked, dns, connect, ssl). */
export interface HarTimings {
  readonly blocked: number
  readonly dns: number
  readonly connect: number
  readonly send: number
  readonly wait: number
  readonly receive: number
  readonly ssl: number
}

export interface HarRequest {
  readonly method: string
  readonly url: string
  readonly httpVersion: string
  readonly cookies: ReadonlyArray<HarCookie>
  readonly headers: ReadonlyArray<HarNameValue>
  readonly queryString: ReadonlyArray<HarNameValue>
  readonly headersSize: number
  readonly bodySize: number
}

export interface HarResponse {
  readonly status: number
  readonly statusText: string
  readonly httpVersion: string
  readonly cookies: ReadonlyArray<HarCookie>
  readonly headers: ReadonlyArray<HarNameValue>
  readonly content: { readonly size: number; readonly mimeType: string; readonly comment?: string }
  readonly redirectURL: string
  readonly headersSize: number
  readonly bodySize: number
  readonly comment?: string
  /** Why no response came, as Chrome's exports say it; only once the connection is over. */
  readonly _error?: string
}

export interface HarEntry {
  readonly pageref: string
  readonly startedDateTime: string
  readonly time: number
  readonly request: HarRequest
  readonly response: HarResponse
  readonly cache: Record<string, never>
  readonly timings: HarTimings
  readonly serverIPAddress?: string
  readonly connection: string
  readonly comment?: string
  /** The target as the browser asked MITM for it, `host:port`. */
  readonly _socksHost: string
  readonly _upstream: string
  readonly _protocol: Connection["protocol"]
}

export interface HarPage {
  readonly id: string
  readonly title: string
  readonly startedDateTime: string
  readonly pageTimings: { readonly onContentLoad: number; readonly onLoad: number }
}

export interface HarDocument {
  readonly log: {
    readonly version: "1.2"
    readonly creator: { readonly name: string; readonly version: string }
    readonly pages: ReadonlyArray<HarPage>
    readonly entries: ReadonlyArray<HarEntry>
    readonly comment: string
  }
}

const pageId = "mitm"

const logComment = "Times are measured at MITM, the SOCKS proxy between the browser and Tor, so every phase " +
  "includes the trip through Tor. connect is the SOCKS setup (Tor's circuit and stream setup, plus any SOCKS " +
  "delay MITM injected) and counts for the first request on a connection only; blocked is the HTTP delay MITM " +
  "injected; dns is -1 because host names go to Tor unresolved. An entry starts its connect time before its " +
  "request, so that its phases end when the response did. Bodies are not kept; sizes are body bytes without chunk framing."

/** Seconds to milliseconds, at most 3 decimals, never -0. */
const ms = (seconds: number): number => Math.round(seconds * 1e6) / 1e3 + 0

const isoAt = (options: HarOptions, seconds: number): string =>
  new Date(Math.round(options.sessionStartMillis + seconds * 1000)).toISOString()

/** Header lines as received; an obsolete folded line continues the previous value. */
const headersOf = (lines: ReadonlyArray<string> | undefined): Array<HarNameValue> => {
  const headers: Array<{ name: string; value: string }> = []
  for (const line of lines ?? []) {
    const previous = headers[headers.length - 1]
    if (/^[ \t]/.test(line) && previous !== undefined) {
      previous.value = `${previous.value} ${line.trim()}`
      continue
    }
    const colon = line.indexOf(":")
    headers.push(colon < 0 ? { name: line.trim(), value: "" } : { name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() })
  }
  return headers
}

/** `name` in lower case; names of another length are skipped without lower-casing them. */
const isNamed = (header: HarNameValue, name: string): boolean =>
  header.name.length === name.length && header.name.toLowerCase() === name

const valuesOf = (headers: ReadonlyArray<HarNameValue>, name: string): Array<string> => {
  const values: Array<string> = []
  for (const header of headers) if (isNamed(header, name)) values.push(header.value)
  return values
}

const headerValue = (headers: ReadonlyArray<HarNameValue>, name: string): string | undefined => {
  for (const header of headers) if (isNamed(header, name)) return header.value
  return undefined
}

/** Bytes of the start line, the header lines, their CRLFs and the blank line (captured as latin1). */
const headersSize = (startLine: string, lines: ReadonlyArray<string> | undefined): number =>
  (lines ?? []).reduce((size, line) => size + Buffer.byteLength(line, "latin1") + 2, Buffer.byteLength(startLine, "latin1") + 4)

/** The body size in a `HttpRequestEnd` / `HttpResponseEnd` detail (`"123 bytes"`), -1 when unknown. */
const bodyBytes = (event: ConnectionEvent | undefined): number => {
  const match = event === undefined ? null : /^(\d+) bytes/.exec(event.detail)
  return match === null ? -1 : Number(match[1])
}

const splitPair = (pair: string, separator: string): HarNameValue => {
  const at = pair.indexOf(separator)
  return at < 0 ? { name: pair, value: "" } : { name: pair.slice(0, at), value: pair.slice(at + 1) }
}

const requestCookies = (headers: ReadonlyArray<HarNameValue>): Array<HarCookie> =>
  valuesOf(headers, "cookie")
    .flatMap((value) => value.split(";"))
    .map((pair) => pair.trim())
    .filter((pair) => pair !== "")
    .map((pair) => splitPair(pair, "="))

/** One cookie per `Set-Cookie`; `Max-Age` counts from when the response arrived. */
const responseCookies = (headers: ReadonlyArray<HarNameValue>, receivedMillis: number): Array<HarCookie> =>
  valuesOf(headers, "set-cookie").map((value) => {
    const [first = "", ...attributes] = value.split(";")
    const cookie: { -readonly [K in keyof HarCookie]: HarCookie[K] } = splitPair(first.trim(), "=")
    let maxAge: number | undefined
    for (const attribute of attributes) {
      const { name, value: attributeValue } = splitPair(attribute.trim(), "=")
      const key = name.toLowerCase()
      if (key === "path") cookie.path = attributeValue
      else if (key === "domain") cookie.domain = attributeValue
      else if (key === "httponly") cookie.httpOnly = true
      else if (key === "secure") cookie.secure = true
      else if (key === "max-age" && /^-?\d+$/.test(attributeValue)) maxAge = Number(attributeValue)
      else if (key === "expires") {
        const date = Date.parse(attributeValue)
        if (!Number.isNaN(date)) cookie.expires = new Date(date).toISOString()
      }
    }
    if (maxAge !== undefined) {
      const date = new Date(receivedMillis + maxAge * 1000)
      if (!Number.isNaN(date.getTime())) cookie.expires = date.toISOString()
    }
    return cookie
  })

/** `host:port` with an IPv6 literal in brackets. */
const authorityOf = (host: string, port: number | undefined): string => {
  const name = isIP(host) === 6 ? `[${host}]` : host
  return port === undefined ? name : `${name}:${port}`
}

/** Absolute-form targets as they are; otherwise `http://` + Host (or the SOCKS target) + target. */
const urlOf = (connection: Connection, method: string, target: string, host: string | undefined): string => {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target
  if (method === "CONNECT") return `http://${target}`
  const authority = host ?? authorityOf(connection.host, connection.port === 80 ? undefined : connection.port)
  return `http://${authority}${target.startsWith("/") ? target : `/${target}`}`
}

/** The query of a URL, decoded as a browser would; never throws on what was captured. */
const queryOf = (url: string): Array<HarNameValue> => {
  const question = url.indexOf("?")
  if (question < 0) return []
  const hash = url.indexOf("#", question)
  const query = url.slice(question + 1, hash < 0 ? undefined : hash)
  return Array.from(new URLSearchParams(query), ([name, value]) => ({ name, value }))
}

/** A request line `METHOD target HTTP/x.y`, tolerating a missing version. */
const requestLineOf = (line: string) => {
  const parts = line.split(" ")
  const version = parts.length > 2 && parts[parts.length - 1].startsWith("HTTP/") ? parts.pop()! : ""
  return { method: parts[0] ?? "", target: parts.slice(1).join(" "), version }
}

const statusLineOf = (line: string) => {
  const match = /^(\S+) +(\d{3})(?: (.*))?$/.exec(line)
  return match === null
    ? { version: "", status: 0, reason: "" }
    : { version: match[1], status: Number(match[2]), reason: match[3] ?? "" }
}

interface Held {
  readonly start: number
  end: number | undefined
}

/** A request on a connection, with what answered it, matched in order. */
interface Exchange {
  readonly request: ConnectionEvent
  requestEnd?: ConnectionEvent
  response?: ConnectionEvent
  responseEnd?: ConnectionEvent
  held?: Held
}

/** The decoder's events of a connection, gathered into exchanges and the SOCKS setup. */
const exchangesOf = (events: ReadonlyArray<ConnectionEvent>) => {
  const exchanges: Array<Exchange> = []
  let requestEnds = 0
  let responses = 0
  let responseEnds = 0
  let socksStart: number | undefined
  let socksEnd: number | undefined
  let socksDelay: Held | undefined
  let open: Held | undefined
  let decodeError: string | undefined
  for (const event of events) {
    switch (event.type) {
      case "HttpRequestStart": {
        const exchange: Exchange = { request: event }
        exchanges.push(exchange)
        continue
      }
      case "HttpRequestEnd":
        if (requestEnds < exchanges.length) exchanges[requestEnds++].requestEnd = event
        continue
      case "HttpResponseStart":
        if (responses < exchanges.length) exchanges[responses++].response = event
        break
      case "HttpResponseEnd":
        if (responseEnds < responses) exchanges[responseEnds++].responseEnd = event
        break
      case "SocksRequestStart":
        socksStart ??= event.time
        break
      case "SocksResponseEnd":
        socksEnd ??= event.time
        break
      case "DelayStart":
        open = { start: event.time, end: undefined }
        if (event.detail.startsWith("SOCKS")) socksDelay = open
        else {
          // The relay holds each request in turn, in request order, before it is answered:
          // the first request not yet held nor answered.
          const next = exchanges.find((exchange) =>
            exchange.held === undefined && exchange.response === undefined && exchange.request.time <= event.time
          )
          if (next !== undefined) next.held = open
        }
        break
      case "DelayEnd":
        if (open !== undefined) open.end = event.time
        open = undefined
        break
      case "DecodeError":
        decodeError ??= event.detail
        continue
    }
  }
  return { exchanges, socksStart, socksEnd, socksDelay, decodeError }
}

/** An entry not built yet: sorting needs only when it started, and building is the costly part. */
interface Dated {
  readonly start: number
  readonly connectionId: number
  readonly entry: () => HarEntry
}

const entriesOf = (connection: Connection, options: HarOptions): Array<Dated> => {
  const { decodeError, exchanges, socksDelay, socksEnd, socksStart = connection.openedAt } = exchangesOf(connection.events)
  const lastTime = connection.closedAt ?? connection.events[connection.events.length - 1]?.time ?? connection.openedAt
  return exchanges.map(({ held, request, requestEnd, response, responseEnd }, index): Dated => {
    const connectSeconds = index === 0 && socksEnd !== undefined ? socksEnd - socksStart : undefined
    // Starting connect before the request puts send, wait and receive where they happened.
    const start = request.time - (connectSeconds ?? 0)
    return {
      start,
      connectionId: connection.id,
      entry: () => {
        const { method, target, version } = requestLineOf(request.detail)
        const requestHeaders = headersOf(request.headers)
        const url = urlOf(connection, method, target, headerValue(requestHeaders, "host"))
        const responseHeaders = headersOf(response?.headers)
        const status = statusLineOf(response?.detail ?? "")

        // A delay still holding the request when measurements stop lasts until then.
        const heldUntil = held === undefined ? undefined : held.end ?? lastTime
        const blockedSeconds = held === undefined ? 0 : heldUntil! - held.start
        const sentAt = Math.max(requestEnd?.time ?? request.time, heldUntil ?? request.time)
        const timings: HarTimings = {
          blocked: held === undefined ? -1 : ms(blockedSeconds),
          dns: -1,
          connect: connectSeconds === undefined ? -1 : ms(connectSeconds),
          ssl: -1,
          send: requestEnd === undefined ? 0 : ms(Math.max(0, requestEnd.time - request.time - blockedSeconds)),
          wait: response === undefined ? 0 : ms(Math.max(0, response.time - sentAt)),
          receive: response === undefined || responseEnd === undefined ? 0 : ms(Math.max(0, responseEnd.time - response.time))
        }
        const time = ms(
          [timings.blocked, timings.connect, timings.send, timings.wait, timings.receive]
            .reduce((sum, t) => sum + Math.max(t, 0), 0) / 1000
        )

        const missing = response !== undefined
          ? undefined
          : decodeError !== undefined
          ? `the response was not decoded (${decodeError})`
          : connection.state === "open"
          ? "no response yet"
          : connection.error ?? `the connection was closed by ${connection.closedBy ?? "MITM"} before a response`
        const size = bodyBytes(responseEnd)
        const encoding = headerValue(responseHeaders, "content-encoding")
        const notes = [
          ...(index === 0 && socksDelay !== undefined
            ? [`connect includes ${ms((socksDelay.end ?? lastTime) - socksDelay.start)} ms of SOCKS delay injected by MITM`]
            : []),
          ...(held !== undefined ? [`blocked is the HTTP delay injected by MITM`] : [])
        ]

        const entry: HarEntry = {
          pageref: pageId,
          startedDateTime: isoAt(options, start),
          time,
          request: {
            method,
            url,
            httpVersion: version,
            cookies: requestCookies(requestHeaders),
            headers: requestHeaders,
            queryString: queryOf(url),
            headersSize: headersSize(request.detail, request.headers),
            bodySize: bodyBytes(requestEnd)
          },
          response: {
            status: status.status,
            statusText: status.reason,
            httpVersion: status.version,
            cookies: responseCookies(responseHeaders, options.sessionStartMillis + (response?.time ?? 0) * 1000),
            headers: responseHeaders,
            content: {
              size: Math.max(size, 0),
              mimeType: headerValue(responseHeaders, "content-type") ?? "",
              ...(encoding !== undefined && encoding.toLowerCase() !== "identity" && size > 0
                ? { comment: `size is of the ${encoding}-encoded body: MITM keeps no bodies and decompresses none` }
                : {})
            },
            redirectURL: headerValue(responseHeaders, "location") ?? "",
            headersSize: response === undefined ? -1 : headersSize(response.detail, response.headers),
            bodySize: size,
            ...(missing !== undefined ? { comment: missing } : {}),
            ...(missing !== undefined && connection.state !== "open" ? { _error: missing } : {})
          },
          cache: {},
          timings,
          ...(isIP(connection.host) !== 0 ? { serverIPAddress: connection.host } : {}),
          connection: String(connection.id),
          ...(notes.length > 0 ? { comment: notes.join("; ") } : {}),
          _socksHost: authorityOf(connection.host, connection.port),
          _upstream: connection.upstream,
          _protocol: connection.protocol
        }
        return entry
      }
    }
  })
}

/**
 * The HAR without its entries, and the entries in time order, each built when asked for:
 * the report streams a large HAR piece by piece, so no piece outlives its serialization.
 */
export const harParts = (connections: ReadonlyArray<Connection>, options: HarOptions) => ({
  log: {
    version: "1.2" as const,
    creator: { name: "MITM", version: options.creatorVersion },
    pages: [{
      id: pageId,
      title: "MITM session",
      startedDateTime: isoAt(options, 0),
      pageTimings: { onContentLoad: -1, onLoad: -1 }
    }],
    comment: logComment
  },
  entries: connections
    .flatMap((connection) => entriesOf(connection, options))
    .sort((a, b) => a.start - b.start || a.connectionId - b.connectionId)
    .map((dated) => dated.entry)
})

/** The HAR with its entries between the pages and the comment, where HAR viewers show them. */
export const harWith = <E>(log: ReturnType<typeof harParts>["log"], entries: E) => ({
  log: { version: log.version, creator: log.creator, pages: log.pages, entries, comment: log.comment }
})

export const toHar = (connections: ReadonlyArray<Connection>, options: HarOptions): HarDocument => {
  const { entries, log } = harParts(connections, options)
  return harWith(log, entries.map((entry) => entry()))
}
