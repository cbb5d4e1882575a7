/**
 * The measurements as an HTTP Archive (HAR 1.2): one entry per HTTP exchange, timed at
 * the SOCKS proxy. Entries are the connections' exchanges (`exchanges` in
 * src/domain/Exchange.ts) with their request and response events; `connect` is the SOCKS
 * setup (Tor's stream setup, with any SOCKS delay MITM injected) for a connection's first
 * request, and `blocked` is the HTTP delay MITM injected into that exchange (SPEC §6).
 */
import { isIP } from "node:net"
import type { Connection } from "../domain/Connection.js"
import type { DecodeFailure, EventOf } from "../domain/Event.js"
import { type Exchange, exchanges } from "../domain/Exchange.js"
import type { TorAttribution } from "../domain/TorCircuits.js"
import {
  type HarCookie,
  harHeaders,
  harHeaderValue,
  type HarNameValue,
  headSize,
  queryOf,
  requestCookies,
  responseCookies
} from "./HarHeaders.js"
import { type ListedJson, listedJson } from "./Responses.js"
import { isSettled, SettledTexts, textAsked } from "./SettledText.js"

export type { HarCookie, HarNameValue } from "./HarHeaders.js"

export interface HarOptions {
  /** Wall-clock epoch milliseconds of session time 0. */
  readonly sessionStartMillis: number
  readonly creatorVersion: string
  /** Tor's circuit of a connection, for the entries' `_tor` (SPEC §7); none when not given. */
  readonly torOf?: (connectionId: number) => TorAttribution | null
}

/** An entry's `_tor`: the circuit that carried its connection and the circuit's path. */
export interface HarTor {
  readonly circuit: string | null
  readonly path: TorAttribution["path"]
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

export interface HarContent {
  readonly size: number
  readonly mimeType: string
  readonly comment?: string
}

export interface HarResponse {
  readonly status: number
  readonly statusText: string
  readonly httpVersion: string
  readonly cookies: ReadonlyArray<HarCookie>
  readonly headers: ReadonlyArray<HarNameValue>
  readonly content: HarContent
  readonly redirectURL: string
  readonly headersSize: number
  readonly bodySize: number
  readonly comment?: string
  /** Why no response came, as Chrome's exports say it; only once the connection is over. */
  readonly _error?: string
}

/**
 * One exchange. Optional fields that do not apply are present as undefined, which
 * JSON leaves out: every entry then has the same shape, which serializes faster.
 */
export interface HarEntry {
  readonly pageref: string
  readonly startedDateTime: string
  readonly time: number
  readonly request: HarRequest
  readonly response: HarResponse
  readonly cache: Record<string, never>
  readonly timings: HarTimings
  readonly serverIPAddress?: string
  /** MITM's id of the connection. */
  readonly connection: string
  readonly comment?: string
  /** The target as the browser asked MITM for it, `host:port`. */
  readonly _socksHost: string
  readonly _upstream: string
  readonly _protocol: Connection["protocol"]
  readonly _tor: HarTor | null
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

/** The log without its entries. */
export type HarLogHead = Omit<HarDocument["log"], "entries">

const pageId = "mitm"

const logComment = "Times are measured at MITM, the SOCKS proxy between the browser and Tor, so every phase " +
  "includes the trip through Tor. connect is the SOCKS setup (Tor's circuit and stream setup, plus any SOCKS " +
  "delay MITM injected) and counts for the first request on a connection only; blocked is the HTTP delay MITM " +
  "injected; dns is -1 because host names go to Tor unresolved. An entry starts its connect time before its " +
  "request, so that its phases end when the response did. Bodies are not kept; sizes are body bytes without chunk framing."

/** Seconds to milliseconds, at most 3 decimals, never -0. */
const ms = (seconds: number): number => Math.round(seconds * 1e6) / 1e3 + 0

/**
 * Session seconds as ISO 8601 wall-clock time, for entries built in start order: one after
 * another they mostly fall in the same second, so the text up to its milliseconds is kept.
 */
const isoClock = (options: HarOptions): (seconds: number) => string => {
  let second = Number.NaN
  let upToMillis = ""
  return (seconds: number): string => {
    const millis = Math.round(options.sessionStartMillis + seconds * 1000)
    const now = Math.floor(millis / 1000)
    if (now !== second) {
      const iso = new Date(now * 1000).toISOString()
      // Always `….mmmZ`, also for years beyond 9999.
      upToMillis = iso.slice(0, iso.length - 4)
      second = now
    }
    const rest = millis - now * 1000
    return `${upToMillis}${rest < 10 ? "00" : rest < 100 ? "0" : ""}${rest}Z`
  }
}

/** What building the log and its entries needs besides the connections. */
interface HarContext {
  readonly options: HarOptions
  readonly isoAt: (seconds: number) => string
}

const torOf = (connectionId: number, context: HarContext): HarTor | null => {
  const tor = context.options.torOf?.(connectionId) ?? null
  return tor === null ? null : { circuit: tor.circuit, path: tor.path }
}

/** An injected delay: when it began and ended (end null while it still holds). */
type Hold = NonNullable<Exchange["hold"]>

/** A connection's SOCKS setup: the browser's request to MITM's reply, and the SOCKS delay MITM injected in it. */
interface SocksSetup {
  readonly start: number
  /** Null when MITM never replied. */
  readonly end: number | null
  readonly delay: Hold | null
}

/** Read from the events up to MITM's SOCKS reply, which come before any HTTP. */
const socksSetupOf = (connection: Connection): SocksSetup => {
  let start: number | null = null
  let delay: { start: number; end: number | null } | null = null
  for (const event of connection.events) {
    switch (event.type) {
      case "SocksRequestStart":
        start ??= event.time
        break
      case "DelayStart":
        if (event.delay === "socks") delay = { start: event.time, end: null }
        break
      case "DelayEnd":
        if (event.delay === "socks" && delay !== null) delay.end = event.time
        break
      case "SocksResponseEnd":
        return { start: start ?? connection.openedAt, end: event.time, delay }
      case "HttpRequestStart":
        return { start: start ?? connection.openedAt, end: null, delay }
    }
  }
  return { start: start ?? connection.openedAt, end: null, delay }
}

/** What the entries of one connection share, found once for all of them. */
interface ConnectionEntries {
  readonly connection: Connection
  /** Its id as HAR's `connection` has it. */
  readonly id: string
  /** Its HTTP exchanges: one entry each, in start order. */
  readonly exchanges: ReadonlyArray<Exchange>
  /** The number of its first entry in the entry table. */
  readonly first: number
  /** The SOCKS setup in seconds, the first entry's `connect`; null when MITM never replied. */
  readonly connect: number | null
  readonly socksDelay: Hold | null
  /** `host:port` as the browser asked for it, an IPv6 literal in brackets. */
  readonly socksHost: string
  readonly serverIPAddress: string | undefined
  /** Its decoder's failure, looked for only when an entry has no response; undefined until then. */
  failure: DecodeFailure | null | undefined
}

/** A connection's entries, numbered from `first`; undefined when it has none (TLS, unknown, no request yet). */
const connectionEntriesOf = (connection: Connection, first: number): ConnectionEntries | undefined => {
  const all = exchanges(connection)
  if (all.length === 0 || all[0].inferred) return undefined
  const socks = socksSetupOf(connection)
  const ip = isIP(connection.host)
  return {
    connection,
    id: String(connection.id),
    exchanges: all,
    first,
    connect: socks.end === null ? null : socks.end - socks.start,
    socksDelay: socks.delay,
    socksHost: ip === 6 ? `[${connection.host}]:${connection.port}` : `${connection.host}:${connection.port}`,
    serverIPAddress: ip === 0 ? undefined : connection.host,
    failure: undefined
  }
}

/** When an entry starts: its request, less the SOCKS setup for a connection's first one. */
const startOf = (source: ConnectionEntries, position: number): number =>
  source.exchanges[position].requestStart - (position === 0 ? source.connect ?? 0 : 0)

/** When a connection's measurements stop: a delay still holding lasts until then. */
const lastTimeOf = (connection: Connection): number =>
  connection.closedAt ?? connection.events[connection.events.length - 1]?.time ?? connection.openedAt

/** The first decode failure on the connection, or null. */
const failureOf = (source: ConnectionEntries): DecodeFailure | null => {
  if (source.failure === undefined) {
    source.failure = null
    for (const event of source.connection.events) {
      if (event.type === "DecodeError") {
        source.failure = event.error
        break
      }
    }
  }
  return source.failure
}

const timingsOf = (exchange: Exchange, connect: number | null, connection: Connection): HarTimings => {
  const { hold, requestEnd, requestStart, response, responseEnd } = exchange
  const heldUntil = hold === null ? requestStart : hold.end ?? lastTimeOf(connection)
  const blocked = hold === null ? 0 : heldUntil - hold.start
  const sentAt = Math.max(requestEnd ?? requestStart, heldUntil)
  return {
    blocked: hold === null ? -1 : ms(blocked),
    dns: -1,
    connect: connect === null ? -1 : ms(connect),
    ssl: -1,
    send: requestEnd === null ? 0 : ms(Math.max(0, requestEnd - requestStart - blocked)),
    wait: response === null ? 0 : ms(Math.max(0, response.time - sentAt)),
    receive: response === null || responseEnd === null ? 0 : ms(Math.max(0, responseEnd - response.time))
  }
}

/** The whole entry's time: its phases that apply, added up. */
const totalOf = (timings: HarTimings): number =>
  ms((Math.max(timings.blocked, 0) + Math.max(timings.connect, 0) + timings.send + timings.wait + timings.receive) / 1000)

/** `METHOD target HTTP/1.1`'s length, as the request line was received. */
const requestLineLength = (request: EventOf<"HttpRequestStart">): number =>
  request.method.length + 1 + request.target.length + (request.httpVersion === "" ? 0 : 1 + request.httpVersion.length)

/** `HTTP/1.1 200 OK`'s length, as the status line was received. */
const statusLineLength = (response: EventOf<"HttpResponseStart">): number =>
  response.httpVersion.length + 1 + String(response.status).length + (response.reason === "" ? 0 : 1 + response.reason.length)

const requestOf = (exchange: Exchange, request: EventOf<"HttpRequestStart">): HarRequest => {
  const headers = harHeaders(request.headers)
  const url = exchange.url ?? ""
  return {
    method: request.method,
    url,
    httpVersion: request.httpVersion,
    cookies: requestCookies(headers),
    headers,
    queryString: queryOf(url),
    headersSize: headSize(requestLineLength(request), request.headers),
    bodySize: exchange.requestBodyBytes ?? -1
  }
}

/** Why an exchange has no response, for people. */
const missingOf = (source: ConnectionEntries): string => {
  const failure = failureOf(source)
  const { connection } = source
  return failure !== null
    ? `the response was not decoded (${failure._tag}: ${failure.message})`
    : connection.state === "open"
    ? "no response yet"
    : connection.error ?? `the connection was closed by ${connection.closedBy ?? "MITM"} before a response`
}

/** Headers, cookies and sizes of a response that came. */
const answeredOf = (exchange: Exchange, response: EventOf<"HttpResponseStart">, { options }: HarContext): HarResponse => {
  const headers = harHeaders(response.headers)
  const size = exchange.responseBodyBytes ?? -1
  const encoding = harHeaderValue(headers, "content-encoding")
  return {
    status: response.status,
    statusText: response.reason,
    httpVersion: response.httpVersion,
    cookies: responseCookies(headers, options.sessionStartMillis + response.time * 1000),
    headers,
    content: {
      size: Math.max(size, 0),
      mimeType: harHeaderValue(headers, "content-type") ?? "",
      comment: encoding !== undefined && size > 0 && encoding.toLowerCase() !== "identity"
        ? `size is of the ${encoding}-encoded body: MITM keeps no bodies and decompresses none`
        : undefined
    },
    redirectURL: harHeaderValue(headers, "location") ?? "",
    headersSize: headSize(statusLineLength(response), response.headers),
    bodySize: size,
    comment: undefined,
    _error: undefined
  }
}

/** The response HAR requires of an exchange that has none: status 0, and why in a comment. */
const unansweredOf = (source: ConnectionEntries, exchange: Exchange): HarResponse => {
  const missing = missingOf(source)
  const size = exchange.responseBodyBytes ?? -1
  return {
    status: 0,
    statusText: "",
    httpVersion: "",
    cookies: [],
    headers: [],
    content: { size: Math.max(size, 0), mimeType: "", comment: undefined },
    redirectURL: "",
    headersSize: -1,
    bodySize: size,
    comment: missing,
    _error: source.connection.state === "open" ? undefined : missing
  }
}

/** What MITM injected into this entry, for people; undefined when nothing. */
const injectedOf = (source: ConnectionEntries, position: number, exchange: Exchange): string | undefined => {
  const { socksDelay } = source
  const socks = position === 0 && socksDelay !== null
    ? `connect includes ${ms((socksDelay.end ?? lastTimeOf(source.connection)) - socksDelay.start)} ms of SOCKS delay injected by MITM`
    : undefined
  const http = exchange.hold === null ? undefined : "blocked is the HTTP delay injected by MITM"
  return socks === undefined ? http : http === undefined ? socks : `${socks}; ${http}`
}

const entryOf = (source: ConnectionEntries, position: number, start: number, context: HarContext): HarEntry => {
  const exchange = source.exchanges[position]
  const { connection } = source
  const timings = timingsOf(exchange, position === 0 ? source.connect : null, connection)
  return {
    pageref: pageId,
    startedDateTime: context.isoAt(start),
    time: totalOf(timings),
    // An HTTP exchange always has its request event; only inferred ones lack it, and they make no entries.
    request: requestOf(exchange, exchange.request!),
    response: exchange.response === null ? unansweredOf(source, exchange) : answeredOf(exchange, exchange.response, context),
    cache: {},
    timings,
    serverIPAddress: source.serverIPAddress,
    connection: source.id,
    comment: injectedOf(source, position, exchange),
    _socksHost: source.socksHost,
    _upstream: connection.upstream,
    _protocol: connection.protocol,
    _tor: torOf(connection.id, context)
  }
}

/**
 * Every entry of some connections, numbered in connection order and within a connection in
 * exchange order, with when each starts: what ordering and building entries read. Typed
 * arrays of the exact size: growing large arrays entry by entry costs more than filling them.
 */
interface EntryTable {
  readonly sources: ReadonlyArray<ConnectionEntries>
  /** Entry number → index of its connection in `sources`. */
  readonly sourceOf: Int32Array
  /** Entry number → when it starts: its request, less the SOCKS setup for a connection's first one. */
  readonly starts: Float64Array
  /** Source index → its connection's id, which orders entries that start at the same time. */
  readonly ids: Float64Array
}

const entryTableOf = (connections: ReadonlyArray<Connection>): EntryTable => {
  const sources: Array<ConnectionEntries> = []
  let count = 0
  for (const connection of connections) {
    const source = connectionEntriesOf(connection, count)
    if (source === undefined) continue
    sources.push(source)
    count += source.exchanges.length
  }
  const sourceOf = new Int32Array(count)
  const starts = new Float64Array(count)
  const ids = new Float64Array(sources.length)
  for (let index = 0; index < sources.length; index++) {
    const { connect, connection, exchanges, first } = sources[index]
    ids[index] = connection.id
    for (let position = 0; position < exchanges.length; position++) {
      starts[first + position] = startOf(sources[index], position)
      sourceOf[first + position] = index
    }
  }
  return { sources, sourceOf, starts, ids }
}

/** Entries, at most one per connection, by start (ties: the lower connection id first), the earliest on top. */
class StartHeap {
  private readonly items: Int32Array
  size = 0

  constructor(private readonly table: EntryTable) {
    this.items = new Int32Array(table.sources.length)
  }

  get top(): number {
    return this.items[0]
  }

  before(a: number, b: number): boolean {
    const { ids, sourceOf, starts } = this.table
    return starts[a] < starts[b] || (starts[a] === starts[b] && ids[sourceOf[a]] < ids[sourceOf[b]])
  }

  push(entry: number): void {
    const { items } = this
    let at = this.size++
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (!this.before(entry, items[parent])) break
      items[at] = items[parent]
      at = parent
    }
    items[at] = entry
  }

  /** Puts `entry` where the top was: it starts no earlier. */
  replaceTop(entry: number): void {
    const { items, size } = this
    let at = 0
    for (;;) {
      let child = 2 * at + 1
      if (child >= size) break
      if (child + 1 < size && this.before(items[child + 1], items[child])) child++
      if (!this.before(items[child], entry)) break
      items[at] = items[child]
      at = child
    }
    items[at] = entry
  }

  popTop(): void {
    const last = this.items[--this.size]
    if (this.size > 0) this.replaceTop(last)
  }
}

/**
 * The entry numbers in start order (ties: by connection id). A connection's own entries
 * are in start order, and connections mostly begin in id order: so connections are sorted
 * by their first entry (near-linear when they already are), and merged by a heap that
 * holds one entry of each connection begun and not done, as many as were open at once.
 */
const startOrder = (table: EntryTable): Array<number> => {
  const { sourceOf, sources, starts } = table
  const firsts = new Int32Array(sources.length)
  for (let index = 0; index < sources.length; index++) firsts[index] = sources[index].first
  const heap = new StartHeap(table)
  firsts.sort((a, b) => heap.before(a, b) ? -1 : heap.before(b, a) ? 1 : 0)
  const order = new Array<number>(starts.length)
  let begun = 0
  for (let at = 0; at < order.length;) {
    if (begun < firsts.length && (heap.size === 0 || heap.before(firsts[begun], heap.top))) {
      heap.push(firsts[begun++])
      continue
    }
    const entry = heap.top
    order[at++] = entry
    if (entry + 1 < starts.length && sourceOf[entry + 1] === sourceOf[entry]) heap.replaceTop(entry + 1)
    else heap.popTop()
  }
  return order
}

/** The HAR of some connections, ready to be streamed entry by entry. */
export interface HarIndex {
  readonly log: HarLogHead
  /** The entries in start order, as numbers for `entry`: cheap to hold, built one at a time. */
  readonly entries: ReadonlyArray<number>
  readonly entry: (entryNumber: number) => HarEntry
  /** The entry's JSON: made once for a settled connection and kept as bytes, made now for an open one. */
  readonly entryText: (entryNumber: number) => string | ListedJson
}

const logHead = ({ isoAt, options }: HarContext): HarLogHead => ({
  version: "1.2",
  creator: { name: "MITM", version: options.creatorVersion },
  pages: [{
    id: pageId,
    title: "MITM session",
    startedDateTime: isoAt(0),
    pageTimings: { onContentLoad: -1, onLoad: -1 }
  }],
  comment: logComment
})

/**
 * The HAR without its entries, and the entries in start order, each built when asked for:
 * the report streams a large HAR piece by piece, so no entry outlives its serialization.
 */
export const harIndex = (connections: ReadonlyArray<Connection>, options: HarOptions): HarIndex => {
  const table = entryTableOf(connections)
  const { sourceOf, sources, starts } = table
  const context: HarContext = { options, isoAt: isoClock(options) }
  return {
    log: logHead(context),
    entries: startOrder(table),
    entry: (entryNumber) => {
      const source = sources[sourceOf[entryNumber]]
      return entryOf(source, entryNumber - source.first, starts[entryNumber], context)
    },
    entryText: (entryNumber) => {
      textAsked()
      const source = sources[sourceOf[entryNumber]]
      const position = entryNumber - source.first
      return isSettled(source.connection)
        ? entryTextsOf(source, context)[position]
        : JSON.stringify(entryOf(source, position, starts[entryNumber], context))
    }
  }
}

/** Settled connections' entries as JSON bytes, in exchange order. */
const entryTexts = new SettledTexts<ReadonlyArray<ListedJson>>()

/** What a HAR entry depends on besides its connection and Tor's attribution of it. */
const harContextOf = (options: HarOptions): string => `${options.sessionStartMillis} ${options.creatorVersion}`

const entryTextsOf = (source: ConnectionEntries, context: HarContext): ReadonlyArray<ListedJson> =>
  entryTexts.of(
    source.connection,
    context.options.torOf?.(source.connection.id) ?? null,
    harContextOf(context.options),
    () => entryTextsMade(source, context)
  )

const entryTextsMade = (source: ConnectionEntries, context: HarContext): ReadonlyArray<ListedJson> =>
  source.exchanges.map((_, position) => listedJson(entryOf(source, position, startOf(source, position), context)))

/**
 * Makes a settled connection's entries' JSON ahead of a request for the HAR (nothing when it
 * is open or they are made already); says whether it had anything to do.
 */
export const warmHarEntries = (connection: Connection, options: HarOptions): boolean =>
  entryTexts.warm(connection, options.torOf?.(connection.id) ?? null, harContextOf(options), () => {
    const source = connectionEntriesOf(connection, 0)
    return source === undefined ? [] : entryTextsMade(source, { options, isoAt: isoClock(options) })
  })

/** The HAR with its entries between the pages and the comment, where HAR viewers show them. */
export const harWith = <E>(log: HarLogHead, entries: E) => ({
  log: { version: log.version, creator: log.creator, pages: log.pages, entries, comment: log.comment }
})

export const toHar = (connections: ReadonlyArray<Connection>, options: HarOptions): HarDocument => {
  const { entries, entry, log } = harIndex(connections, options)
  return harWith(log, entries.map(entry))
}
