/**
 * The measurements as an HTTP Archive (HAR 1.2): one entry per HTTP exchange,
 * timed at the SOCKS proxy. `connect` is the SOCKS setup (Tor's stream setup)
 * for a connection's first request; `blocked` is MITM's injected delay.
 */
import type { Connection } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"

export interface HarOptions {
  /** Wall-clock epoch milliseconds of session time 0. */
  readonly sessionStartMillis: number
  readonly creatorVersion: string
}

export interface HarHeader {
  readonly name: string
  readonly value: string
}

export interface HarEntry {
  readonly pageref: string
  readonly startedDateTime: string
  readonly time: number
  readonly request: {
    readonly method: string
    readonly url: string
    readonly httpVersion: string
    readonly cookies: ReadonlyArray<{ name: string; value: string }>
    readonly headers: ReadonlyArray<HarHeader>
    readonly queryString: ReadonlyArray<{ name: string; value: string }>
    readonly headersSize: number
    readonly bodySize: number
  }
  readonly response: {
    readonly status: number
    readonly statusText: string
    readonly httpVersion: string
    readonly cookies: ReadonlyArray<{ name: string; value: string }>
    readonly headers: ReadonlyArray<HarHeader>
    readonly content: { readonly size: number; readonly mimeType: string }
    readonly redirectURL: string
    readonly headersSize: number
    readonly bodySize: number
    readonly comment?: string
  }
  readonly cache: Record<string, never>
  readonly timings: {
    readonly blocked: number
    readonly dns: number
    readonly connect: number
    readonly send: number
    readonly wait: number
    readonly receive: number
    readonly ssl: number
  }
  readonly serverIPAddress?: string
  readonly connection: string
  readonly comment?: string
  readonly _upstream: string
}

export interface HarDocument {
  readonly log: {
    readonly version: "1.2"
    readonly creator: { readonly name: string; readonly version: string }
    readonly pages: ReadonlyArray<{
      readonly id: string
      readonly title: string
      readonly startedDateTime: string
      readonly pageTimings: { readonly onContentLoad: number; readonly onLoad: number }
    }>
    readonly entries: ReadonlyArray<HarEntry>
    readonly comment: string
  }
}

const pageId = "mitm"

const ms = (seconds: number) => Math.round(seconds * 1e6) / 1e3

const headersOf = (lines: ReadonlyArray<string> | undefined): Array<HarHeader> =>
  (lines ?? []).map((line) => {
    const colon = line.indexOf(":")
    return colon < 0 ? { name: line, value: "" } : { name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() }
  })

const header = (headers: ReadonlyArray<HarHeader>, name: string): string | undefined =>
  headers.find((h) => h.name.toLowerCase() === name)?.value

/** Bytes of the start line, header lines and their CRLFs, and the blank line. */
const headersSize = (startLine: string, lines: ReadonlyArray<string> | undefined): number =>
  (lines ?? []).reduce((size, line) => size + Buffer.byteLength(line, "latin1") + 2, Buffer.byteLength(startLine, "latin1") + 4)

const bodyBytes = (event: ConnectionEvent | undefined): number => {
  const match = event === undefined ? null : /^(\d+) bytes/.exec(event.detail)
  return match === null ? -1 : Number(match[1])
}

const cookiesOf = (value: string | undefined) =>
  value === undefined
    ? []
    : value.split(";").map((pair) => pair.trim()).filter((pair) => pair !== "").map((pair) => {
      const equals = pair.indexOf("=")
      return equals < 0 ? { name: pair, value: "" } : { name: pair.slice(0, equals), value: pair.slice(equals + 1) }
    })

const urlOf = (connection: Connection, target: string, host: string | undefined): string => {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return target
  const authority = host ?? (connection.port === 80 ? connection.host : `${connection.host}:${connection.port}`)
  return `http://${authority}${target.startsWith("/") ? target : `/${target}`}`
}

const queryOf = (url: string) => {
  try {
    return Array.from(new URL(url).searchParams, ([name, value]) => ({ name, value }))
  } catch {
    return []
  }
}

/** The delays (DelayStart → DelayEnd) on a connection, by what they held. */
const delaysOf = (events: ReadonlyArray<ConnectionEvent>) => {
  const delays: Array<{ readonly what: string; readonly start: number; readonly end: number }> = []
  let open: ConnectionEvent | undefined
  for (const event of events) {
    if (event.type === "DelayStart") open = event
    else if (event.type === "DelayEnd" && open !== undefined) {
      delays.push({ what: open.detail.startsWith("SOCKS") ? "socks" : "http", start: open.time, end: event.time })
      open = undefined
    }
  }
  return delays
}

const entriesOf = (connection: Connection, options: HarOptions): Array<HarEntry> => {
  const events = connection.events
  const requests = events.filter((e) => e.type === "HttpRequestStart")
  if (requests.length === 0) return []
  const requestEnds = events.filter((e) => e.type === "HttpRequestEnd")
  const responses = events.filter((e) => e.type === "HttpResponseStart")
  const responseEnds = events.filter((e) => e.type === "HttpResponseEnd")
  const socksReply = events.find((e) => e.type === "SocksResponseEnd")
  const delays = delaysOf(events)
  const socksDelay = delays.find((d) => d.what === "socks")
  return requests.map((request, index): HarEntry => {
    const [method = "", target = "", version = "HTTP/1.1"] = request.detail.split(" ")
    const requestHeaders = headersOf(request.headers)
    const url = urlOf(connection, target, header(requestHeaders, "host"))
    const requestEnd = requestEnds[index]
    const response = responses[index]
    const responseEnd = responseEnds[index]
    const held = delays.find((d) => d.what === "http" && d.start >= request.time && (requestEnd === undefined || d.start <= requestEnd.time))
    const blocked = held === undefined ? -1 : ms(held.end - held.start)
    const connect = index === 0 && socksReply !== undefined ? ms(socksReply.time - connection.openedAt) : -1
    const sent = requestEnd === undefined ? 0 : ms(requestEnd.time - request.time)
    const send = Math.max(0, sent - Math.max(blocked, 0))
    const wait = response === undefined ? -1 : ms(Math.max(0, response.time - (requestEnd ?? request).time))
    const receive = response === undefined || responseEnd === undefined ? -1 : ms(responseEnd.time - response.time)
    const responseHeaders = headersOf(response?.headers)
    const [responseVersion = "", status = "0", ...reason] = (response?.detail ?? "").split(" ")
    const size = bodyBytes(responseEnd)
    const timings = { blocked, dns: -1, connect, send, wait, receive, ssl: -1 }
    const started = index === 0 ? connection.openedAt : request.time
    return {
      pageref: pageId,
      startedDateTime: new Date(options.sessionStartMillis + started * 1000).toISOString(),
      time: Math.round([blocked, connect, send, wait, receive].reduce((sum, t) => sum + Math.max(t, 0), 0) * 1000) / 1000,
      request: {
        method,
        url,
        httpVersion: version,
        cookies: cookiesOf(header(requestHeaders, "cookie")),
        headers: requestHeaders,
        queryString: queryOf(url),
        headersSize: headersSize(request.detail, request.headers),
        bodySize: bodyBytes(requestEnd)
      },
      response: {
        status: Number(status) || 0,
        statusText: reason.join(" "),
        httpVersion: responseVersion,
        cookies: [],
        headers: responseHeaders,
        content: { size: Math.max(size, 0), mimeType: header(responseHeaders, "content-type") ?? "" },
        redirectURL: header(responseHeaders, "location") ?? "",
        headersSize: response === undefined ? -1 : headersSize(response.detail, response.headers),
        bodySize: size,
        ...(response === undefined ? { comment: connection.state === "open" ? "no response yet" : "no response" } : {})
      },
      cache: {},
      timings,
      ...(/^[\d.]+$|:/.test(connection.host) ? { serverIPAddress: connection.host } : {}),
      connection: String(connection.id),
      ...(index === 0 && socksDelay !== undefined
        ? { comment: `connect includes ${ms(socksDelay.end - socksDelay.start)} ms of SOCKS delay injected by MITM` }
        : {}),
      _upstream: connection.upstream
    }
  })
}

export const toHar = (connections: ReadonlyArray<Connection>, options: HarOptions): HarDocument => ({
  log: {
    version: "1.2",
    creator: { name: "MITM", version: options.creatorVersion },
    pages: [{
      id: pageId,
      title: "MITM session",
      startedDateTime: new Date(options.sessionStartMillis).toISOString(),
      pageTimings: { onContentLoad: -1, onLoad: -1 }
    }],
    entries: connections.flatMap((connection) => entriesOf(connection, options)).sort((a, b) =>
      a.startedDateTime < b.startedDateTime ? -1 : a.startedDateTime > b.startedDateTime ? 1 : 0
    ),
    comment: "Measured at MITM, the SOCKS proxy between the browser and Tor: connect is the SOCKS setup (Tor's stream setup), blocked is delay injected by MITM, dns is never done locally."
  }
})
