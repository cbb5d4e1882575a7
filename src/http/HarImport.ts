/**
 * Any HAR as measurements (SPEC §8): Chromium/DevTools, Firefox, Playwright, or MITM's
 * own `/har`. The document is decoded with effect/Schema, leniently where HAR tools
 * differ (optional fields, `-1` for phases that do not apply, no `connection`, `_`
 * extensions, pages), and becomes the connections and typed events the report reads:
 * one connection per HAR `connection` id (or per entry without one), one exchange per
 * entry, and the phases from `timings`:
 *
 *     startedDateTime ─ blocked ─┬ dns ─ connect (its ssl part last) ┬ send ─ wait ─ receive
 *                          SocksRequestStart   TlsClientHello   HttpRequestStart   HttpResponseStart   HttpResponseEnd
 *
 * The connection's setup (dns + connect, what a browser behind a SOCKS proxy counts as
 * connecting) is drawn as its SOCKS setup, the `ssl` part as its TLS handshake. In MITM's
 * own HARs `blocked` is the HTTP delay MITM injected after the request began, so there it
 * becomes a held request (DelayStart/DelayEnd) inside the wait, as MITM measured it.
 */
import { Either, Schema } from "effect"
import type { Connection } from "../domain/Connection.js"
import { type ConnectionEvent, type EventFacts, stamp } from "../domain/Event.js"
import type { HarDocumentError, Measurements } from "../domain/Session.js"
import { firstProblem } from "../domain/SessionDocument.js"

/** The schema, whose failure reads `expected …` (the first problem is what people see). */
const withMessage = <A, I>(schema: Schema.Schema<A, I>, expected: string): Schema.Schema<A, I> =>
  schema.annotations({ message: () => ({ message: `expected ${expected}`, override: false }) })

/** Milliseconds; HAR writes -1 for a phase that does not apply. */
const Millis = Schema.optional(withMessage(Schema.Number, "a number of milliseconds (or -1)"))

const IsoDate = withMessage(
  Schema.String.pipe(Schema.filter((text) => !Number.isNaN(Date.parse(text)))),
  "an ISO 8601 date such as 2026-12-01T10:00:00.000Z"
)

const AbsoluteUrl = withMessage(
  Schema.String.pipe(Schema.filter((text) => URL.canParse(text))),
  "an absolute URL such as http://example.com/"
)

const NameValue = withMessage(Schema.Struct({ name: Schema.String, value: Schema.String }), "a { name, value } pair of strings")

const HarHeadersSchema = Schema.optional(withMessage(Schema.Array(NameValue), "an array of { name, value }"))

const HarTimingsSchema = Schema.Struct({
  blocked: Millis,
  dns: Millis,
  connect: Millis,
  ssl: Millis,
  send: Millis,
  wait: Millis,
  receive: Millis
})

const HarRequestSchema = Schema.Struct({
  method: withMessage(Schema.String.pipe(Schema.minLength(1)), "an HTTP method such as GET"),
  url: AbsoluteUrl,
  httpVersion: Schema.optional(Schema.String),
  headers: HarHeadersSchema,
  headersSize: Schema.optional(Schema.Number),
  bodySize: Schema.optional(Schema.Number),
  postData: Schema.optional(Schema.Struct({ text: Schema.optional(Schema.String) }))
})

const HarResponseSchema = Schema.Struct({
  status: withMessage(Schema.Number, "an HTTP status number (0 when there was no response)"),
  statusText: Schema.optional(Schema.String),
  httpVersion: Schema.optional(Schema.String),
  headers: HarHeadersSchema,
  content: Schema.optional(Schema.Struct({ size: Schema.optional(Schema.Number) })),
  headersSize: Schema.optional(Schema.Number),
  bodySize: Schema.optional(Schema.Number),
  /** Chromium's bytes on the wire, headers included. */
  _transferSize: Schema.optional(Schema.Number),
  /** Chromium's reason for a response that never came. */
  _error: Schema.optional(Schema.NullOr(Schema.String))
})

const HarEntrySchema = withMessage(
  Schema.Struct({
    startedDateTime: IsoDate,
    time: Schema.optional(Schema.Number),
    request: withMessage(HarRequestSchema, "a request object ({ method, url, … })"),
    response: withMessage(HarResponseSchema, "a response object ({ status, … })"),
    timings: Schema.optional(withMessage(HarTimingsSchema, "a timings object ({ send, wait, receive, … })")),
    connection: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
    /** MITM's own HARs: the upstream the connection went through. */
    _upstream: Schema.optional(Schema.String)
  }),
  "an entry object ({ startedDateTime, request, response, timings })"
)

const HarPageSchema = Schema.Struct({
  id: Schema.optional(Schema.String),
  title: Schema.optional(Schema.String),
  startedDateTime: Schema.optional(IsoDate)
})

const HarLogSchema = Schema.Struct({
  version: Schema.optional(Schema.String),
  creator: Schema.optional(Schema.Struct({ name: Schema.String, version: Schema.optional(Schema.String) })),
  pages: Schema.optional(withMessage(Schema.Array(HarPageSchema), "an array of pages")),
  entries: withMessage(Schema.Array(HarEntrySchema), "an array of entries")
})

/** A HAR as MITM reads it: what it needs, every other field (and `_` extension) left as it is. */
export const HarFileSchema = Schema.Struct({
  log: withMessage(HarLogSchema, "a HAR log object ({ version, creator, entries })")
})

export type HarFile = typeof HarFileSchema.Type
type HarEntry = HarFile["log"]["entries"][number]

/** The document as a HAR, or its first problem (where, and what was expected). */
export const decodeHar = (document: unknown): Either.Either<HarFile, HarDocumentError> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(withMessage(HarFileSchema, "a HAR document: an object with a log"))(document),
    (error) => firstProblem(error, document)
  )

const micros = (seconds: number): number => Math.round(seconds * 1e6) / 1e6

/** A phase in seconds: 0 where HAR says -1 or nothing. */
const phase = (millis: number | undefined): number => (millis === undefined || millis < 0 ? 0 : millis / 1000)

const defaultPorts: Record<string, number> = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 }

/** Host and port the entry's connection went to, from its URL (an IPv6 literal without brackets). */
const targetOf = (entry: HarEntry): { readonly host: string; readonly port: number; readonly tls: boolean } => {
  const url = new URL(entry.request.url)
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
  return { host, port: url.port === "" ? defaultPorts[url.protocol] ?? 0 : Number(url.port), tls: url.protocol === "https:" || url.protocol === "wss:" }
}

const headerLines = (headers: ReadonlyArray<{ readonly name: string; readonly value: string }> | undefined): Array<string> =>
  (headers ?? []).map((header) => `${header.name}: ${header.value}`)

const nonNegative = (value: number | undefined): number => (value === undefined || value < 0 ? 0 : value)

/** Bytes the request took on the wire, as far as the HAR says. */
const bytesUpOf = (entry: HarEntry): number =>
  nonNegative(entry.request.headersSize) + nonNegative(entry.request.bodySize)

/** Bytes the response took: Chromium's transfer size, else headers and body (the decoded size when no body size). */
const bytesDownOf = (entry: HarEntry): number => {
  const { response } = entry
  if (response._transferSize !== undefined && response._transferSize >= 0) return response._transferSize
  const body = response.bodySize !== undefined && response.bodySize >= 0 ? response.bodySize : nonNegative(response.content?.size)
  return nonNegative(response.headersSize) + body
}

type Timed = readonly [time: number, facts: EventFacts]

/** What one entry adds to its connection: its exchange's events, and the connection's setup when it opened it. */
const entryEvents = (entry: HarEntry, exchange: number, start: number, opensConnection: boolean, injectedBlocked: boolean): Array<Timed> => {
  const timings = entry.timings
  const began = (Date.parse(entry.startedDateTime) - start) / 1000
  const blocked = phase(timings?.blocked)
  const dns = phase(timings?.dns)
  const connect = phase(timings?.connect)
  const target = targetOf(entry)
  // Only an https (wss) request has a TLS handshake; Playwright writes an `ssl` time for plain http too.
  const ssl = target.tls ? phase(timings?.ssl) : 0
  const send = phase(timings?.send)
  // Without timings, the entry's whole time is its wait.
  const wait = timings === undefined ? phase(entry.time) : phase(timings.wait)
  const receive = phase(timings?.receive)
  const setupStart = injectedBlocked ? began : began + blocked
  // HAR 1.2 counts ssl inside connect; some tools do not, and then ssl follows connect.
  const handshakeEnd = setupStart + dns + (ssl <= connect ? connect : connect + ssl)
  const events: Array<Timed> = []
  if (opensConnection && (timings?.connect ?? -1) >= 0) {
    events.push([setupStart, { type: "SocksRequestStart", host: target.host, port: target.port, command: "connect", version: 5 }])
    events.push([handshakeEnd - ssl, { type: "SocksResponseEnd", reply: 0, replyName: "succeeded", address: null }])
    if (ssl > 0) {
      events.push([handshakeEnd - ssl, { type: "TlsClientHello", sni: target.host, alpn: [], versions: [] }])
      events.push([handshakeEnd, { type: "TlsServerHello", tlsVersion: "TLS", cipher: "not in the HAR", alpn: null, helloRetryRequest: false }])
    }
  }
  const requestStart = handshakeEnd
  const { request, response } = entry
  events.push([requestStart, {
    type: "HttpRequestStart",
    exchange,
    method: request.method,
    target: request.url,
    httpVersion: request.httpVersion ?? "",
    headers: headerLines(request.headers)
  }])
  let sent = requestStart
  if (injectedBlocked && blocked > 0) {
    const ms = Math.round(blocked * 1000)
    events.push([requestStart, { type: "DelayStart", delay: "http", ms, exchange }])
    events.push([requestStart + blocked, { type: "DelayEnd", delay: "http", ms, exchange }])
    sent += blocked
  }
  const requestBody = request.bodySize !== undefined && request.bodySize >= 0 ? request.bodySize : request.postData?.text?.length ?? 0
  events.push([sent + send, { type: "HttpRequestEnd", exchange, bodyBytes: requestBody }])
  if (response.status > 0) {
    const responseStart = sent + send + wait
    events.push([responseStart, {
      type: "HttpResponseStart",
      exchange,
      status: response.status,
      reason: response.statusText ?? "",
      httpVersion: response.httpVersion ?? "",
      headers: headerLines(response.headers)
    }])
    events.push([responseStart + receive, { type: "HttpResponseEnd", exchange, bodyBytes: nonNegative(response.content?.size) }])
  }
  return events
}

/**
 * The key that puts entries on one connection. Firefox writes the server's port as
 * `connection`, not a connection id: there (and where there is none) each entry is its own.
 */
const connectionKey = (entry: HarEntry, index: number, firefox: boolean): string => {
  const id = entry.connection === undefined ? "" : String(entry.connection)
  const { host, port } = targetOf(entry)
  if (id === "" || (firefox && id === String(port))) return `entry ${index}`
  return `${id} ${host}:${port}`
}

/** When the HAR's session began: its earliest page or entry, as epoch milliseconds. */
const startOf = (har: HarFile): number => {
  let start = Infinity
  for (const page of har.log.pages ?? []) if (page.startedDateTime !== undefined) start = Math.min(start, Date.parse(page.startedDateTime))
  for (const entry of har.log.entries) start = Math.min(start, Date.parse(entry.startedDateTime))
  return Number.isFinite(start) ? start : 0
}

const connectionOf = (id: number, entries: ReadonlyArray<HarEntry>, start: number, injectedBlocked: boolean): Connection => {
  const timed: Array<Timed> = []
  entries.forEach((entry, exchange) => timed.push(...entryEvents(entry, exchange, start, exchange === 0, injectedBlocked)))
  // Stable: at one instant the events keep the order they were made in.
  timed.sort((a, b) => a[0] - b[0])
  const events: Array<ConnectionEvent> = timed.map(([time, facts]) => stamp(micros(time), facts))
  const { host, port, tls } = targetOf(entries[0])
  const answered = entries.some((entry) => entry.response.status > 0)
  const failure = entries.find((entry) => entry.response.status <= 0)
  return {
    id,
    client: "",
    host,
    port,
    socksVersion: 5,
    command: "connect",
    isolation: null,
    upstream: entries[0]._upstream ?? "unknown",
    state: answered ? "closed" : "failed",
    protocol: tls ? "tls" : "http",
    openedAt: events[0].time,
    closedAt: events[events.length - 1].time,
    closedBy: null,
    bytesUp: entries.reduce((sum, entry) => sum + bytesUpOf(entry), 0),
    bytesDown: entries.reduce((sum, entry) => sum + bytesDownOf(entry), 0),
    events,
    eventsCut: 0,
    error: answered ? null : failure?.response._error ?? "no response (status 0)"
  }
}

/** The HAR's entries as measurements: connections numbered from 1 in the order they began. */
export const measurementsOfHar = (har: HarFile): Measurements => {
  const start = startOf(har)
  const creator = har.log.creator?.name ?? ""
  const firefox = /firefox/i.test(creator)
  const injectedBlocked = creator === "MITM"
  const byStart = har.log.entries
    .map((entry, index) => ({ entry, index, began: Date.parse(entry.startedDateTime) }))
    .sort((a, b) => a.began - b.began || a.index - b.index)
  const groups = new Map<string, Array<HarEntry>>()
  for (const { entry, index } of byStart) {
    const key = connectionKey(entry, index, firefox)
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [entry])
    else group.push(entry)
  }
  const connections = Array.from(groups.values(), (entries, index) => connectionOf(index + 1, entries, start, injectedBlocked))
  return {
    connections,
    tor: new Map(),
    circuits: [],
    sessionStartMillis: start,
    now: connections.reduce((latest, connection) => Math.max(latest, connection.closedAt ?? connection.openedAt), 0)
  }
}

/** A name for an imported HAR: its first page's title, else its creator's. */
export const harTitle = (har: HarFile): string | undefined => {
  const title = har.log.pages?.find((page) => (page.title ?? "").trim() !== "")?.title?.trim()
  return title ?? (har.log.creator === undefined ? undefined : `${har.log.creator.name} HAR`)
}
