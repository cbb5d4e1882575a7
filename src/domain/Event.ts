/**
 * The event model: everything MITM learns about a connection is one of these
 * typed facts, stamped with seconds since the session start. What a decoder
 * learns leaves it as fields (method, status, body bytes, SNI …), and the
 * display text `detail` is derived from those fields here, in one place
 * (SPEC §6). No reader parses `detail`.
 */
import { Duration } from "effect"

/** Which way bytes went: `up` from the browser towards the server, `down` back. */
export type Direction = "up" | "down"

/** A SOCKS command as SPEC §6 names it; `invalid` for a handshake that never made a request. */
export type SocksCommandName = "connect" | "resolve" | "resolve_ptr" | "bind" | "udp_associate" | "invalid"

/** Which of MITM's delays held the connection. */
export type DelayKind = "socks" | "http"

/** A decoder's typed failure as events and the JSON API carry it. */
export interface DecodeFailure {
  readonly _tag: "HttpParseError" | "TlsParseError" | "SocksParseError"
  /** What failed, as the error's `reason` code (e.g. `HeaderLine`). */
  readonly reason: string
  /** For people: `invalid header line 3`. */
  readonly message: string
  /** Where in that direction's byte stream the decoder gave up; null when not known. */
  readonly offset: number | null
}

export interface SocksRequestStart {
  readonly type: "SocksRequestStart"
  /** As the browser sent it; a name is never resolved by MITM. */
  readonly host: string
  readonly port: number
  readonly command: SocksCommandName
  readonly version: 4 | 5
}

export interface SocksResponseEnd {
  readonly type: "SocksResponseEnd"
  /** The reply code as the browser got it: 0 succeeded, 4 host unreachable, 240 = 0xF0 … (SOCKS4: 90–93). */
  readonly reply: number
  readonly replyName: string
  /** The answer to a RESOLVE or RESOLVE_PTR; null otherwise. */
  readonly address: string | null
}

export interface HttpRequestStart {
  readonly type: "HttpRequestStart"
  /** 0, 1, 2 … on this connection. */
  readonly exchange: number
  readonly method: string
  readonly target: string
  /** `HTTP/1.1` */
  readonly httpVersion: string
  /** Header lines after the request line, as received. */
  readonly headers: ReadonlyArray<string>
}

export interface HttpRequestEnd {
  readonly type: "HttpRequestEnd"
  readonly exchange: number
  readonly bodyBytes: number
}

export interface HttpResponseStart {
  readonly type: "HttpResponseStart"
  readonly exchange: number
  readonly status: number
  readonly reason: string
  readonly httpVersion: string
  readonly headers: ReadonlyArray<string>
}

/** A 1xx response before the final one. */
export interface HttpInformational {
  readonly type: "HttpInformational"
  readonly exchange: number
  readonly status: number
  readonly reason: string
  readonly httpVersion: string
  readonly headers: ReadonlyArray<string>
}

export interface HttpResponseEnd {
  readonly type: "HttpResponseEnd"
  readonly exchange: number
  /** Decoded length: chunk framing not counted. */
  readonly bodyBytes: number
}

export interface TlsClientHello {
  readonly type: "TlsClientHello"
  readonly sni: string | null
  readonly alpn: ReadonlyArray<string>
  /** The versions offered, GREASE left out: `TLS 1.3`, `TLS 1.2` … */
  readonly versions: ReadonlyArray<string>
}

export interface TlsServerHello {
  readonly type: "TlsServerHello"
  /** `TLS 1.3` */
  readonly tlsVersion: string
  readonly cipher: string
  /** Null when none was chosen or when it is not visible (TLS 1.3 sends it encrypted). */
  readonly alpn: string | null
  readonly helloRetryRequest: boolean
}

export interface TlsApplicationData {
  readonly type: "TlsApplicationData"
  readonly direction: Direction
}

/** A client burst after silence or after server bytes, on traffic MITM cannot read. */
export interface InferredRequest {
  readonly type: "InferredRequest"
  readonly exchange: number
  /** Bytes of the server burst before it; null for the first burst. */
  readonly afterBytes: number | null
}

/** A server burst after client bytes: the inferred response to exchange `exchange`. */
export interface InferredResponse {
  readonly type: "InferredResponse"
  readonly exchange: number
  /** Bytes of the client burst before it; null when the server spoke first. */
  readonly afterBytes: number | null
}

export interface DelayStart {
  readonly type: "DelayStart"
  readonly delay: DelayKind
  /** The planned hold. */
  readonly ms: number
  /** The exchange an HTTP delay holds; null for a SOCKS delay. */
  readonly exchange: number | null
}

export interface DelayEnd {
  readonly type: "DelayEnd"
  readonly delay: DelayKind
  readonly ms: number
  readonly exchange: number | null
}

export interface DecodeError {
  readonly type: "DecodeError"
  readonly error: DecodeFailure
}

export interface ConnectionClose {
  readonly type: "ConnectionClose"
  /** Who ended or broke its side first; null when MITM closed it. */
  readonly closedBy: "client" | "server" | null
  readonly bytesUp: number
  readonly bytesDown: number
}

/** Tor attached the connection's stream to a circuit (SPEC §7). */
export interface TorStreamAttached {
  readonly type: "TorStreamAttached"
  readonly stream: string
  readonly circuit: string
  /** The path's nicknames, guard first. */
  readonly path: ReadonlyArray<string>
}

/** Tor gave up on the connection's stream. */
export interface TorStreamFailed {
  readonly type: "TorStreamFailed"
  readonly stream: string
  /** Tor's REASON, e.g. `CANT_ATTACH`, `TIMEOUT`. */
  readonly reason: string | null
  /** The exit's REMOTE_REASON. */
  readonly remoteReason: string | null
}

/** What is known of an event before the clock stamps it. */
export type EventFacts =
  | SocksRequestStart
  | SocksResponseEnd
  | HttpRequestStart
  | HttpRequestEnd
  | HttpResponseStart
  | HttpInformational
  | HttpResponseEnd
  | TlsClientHello
  | TlsServerHello
  | TlsApplicationData
  | InferredRequest
  | InferredResponse
  | DelayStart
  | DelayEnd
  | DecodeError
  | TorStreamAttached
  | TorStreamFailed
  | ConnectionClose

export type EventType = EventFacts["type"]

/** Every event type, in the order of a connection's life. */
export const eventTypes: ReadonlyArray<EventType> = [
  "SocksRequestStart",
  "SocksResponseEnd",
  "HttpRequestStart",
  "HttpRequestEnd",
  "HttpResponseStart",
  "HttpResponseEnd",
  "HttpInformational",
  "TlsClientHello",
  "TlsServerHello",
  "TlsApplicationData",
  "InferredRequest",
  "InferredResponse",
  "DelayStart",
  "DelayEnd",
  "DecodeError",
  "TorStreamAttached",
  "TorStreamFailed",
  "ConnectionClose"
]

/**
 * What a decoder reports from one chunk. An HttpRequestStart also says where in
 * that chunk its request began (`offset`), so the relay can hold it there.
 */
export type DecoderEvent =
  | Exclude<EventFacts, HttpRequestStart>
  | (HttpRequestStart & { readonly offset: number })

type Stamped<F> = F extends EventFacts ? F & { readonly time: number; readonly detail: string } : never

/** A recorded event: its facts, the time (seconds since the session start) and the display text. */
export type ConnectionEvent = Stamped<EventFacts>

export type EventOf<T extends EventType> = Extract<ConnectionEvent, { readonly type: T }>

const ms = (value: number): string => Duration.format(Duration.millis(value))

const burstAfter = (afterBytes: number | null, direction: Direction): string =>
  afterBytes === null ? "" : `, after ${afterBytes} bytes ${direction}`

/** The event's display text, from its fields: the one place it is made. */
export const detailOf = (facts: EventFacts): string => {
  switch (facts.type) {
    case "SocksRequestStart":
      return facts.command === "invalid" ? "invalid SOCKS request" : `${facts.host.includes(":") ? `[${facts.host}]` : facts.host}:${facts.port}`
    case "SocksResponseEnd":
      return facts.address === null ? facts.replyName : `${facts.replyName}: ${facts.address}`
    case "HttpRequestStart":
      return `${facts.method} ${facts.target} ${facts.httpVersion}`
    case "HttpResponseStart":
    case "HttpInformational":
      return facts.reason === "" ? `${facts.httpVersion} ${facts.status}` : `${facts.httpVersion} ${facts.status} ${facts.reason}`
    case "HttpRequestEnd":
    case "HttpResponseEnd":
      return `${facts.bodyBytes} bytes`
    case "TlsClientHello":
      return [
        `SNI ${facts.sni ?? "none"}`,
        `ALPN ${facts.alpn.length > 0 ? facts.alpn.join(",") : "none"}`,
        `versions ${facts.versions.length > 0 ? facts.versions.join(",") : "none"}`
      ].join(", ")
    case "TlsServerHello":
      return [
        ...(facts.helloRetryRequest ? ["HelloRetryRequest"] : []),
        facts.tlsVersion,
        `cipher ${facts.cipher}`,
        ...(facts.alpn === null ? [] : [`ALPN ${facts.alpn}`])
      ].join(", ")
    case "TlsApplicationData":
      return `first application data ${facts.direction}`
    case "InferredRequest":
      return `exchange ${facts.exchange + 1}: client burst${burstAfter(facts.afterBytes, "down")}`
    case "InferredResponse":
      return facts.afterBytes === null
        ? "server burst before any request"
        : `exchange ${facts.exchange + 1}: server burst${burstAfter(facts.afterBytes, "up")}`
    case "DelayStart":
      return `${facts.delay === "socks" ? "SOCKS connect" : "HTTP request"} held ${ms(facts.ms)}`
    case "DelayEnd":
      return `${facts.delay === "socks" ? "SOCKS connect" : "HTTP request"} released`
    case "DecodeError":
      return `${facts.error._tag}: ${facts.error.message}`
    case "TorStreamAttached":
      return `circuit ${facts.circuit}${facts.path.length > 0 ? `: ${facts.path.join(" → ")}` : ""}`
    case "TorStreamFailed":
      return `stream ${facts.stream}: ${facts.reason ?? "failed"}${facts.remoteReason === null ? "" : ` (remote ${facts.remoteReason})`}`
    case "ConnectionClose":
      return `${facts.closedBy === null ? "closed by MITM" : `closed by ${facts.closedBy}`}, ${facts.bytesUp} bytes up, ${facts.bytesDown} bytes down`
  }
}

/** The recorded event: facts first stamped with the time, then the display text derived from them. */
export const stamp = (time: number, facts: DecoderEvent | EventFacts): ConnectionEvent => {
  if (facts.type === "HttpRequestStart" && "offset" in facts) {
    const { offset: _offset, ...request } = facts
    return { time, detail: detailOf(request), ...request }
  }
  return { time, detail: detailOf(facts), ...facts } as ConnectionEvent
}
