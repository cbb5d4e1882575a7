/**
 * The event model: everything MITM learns about a connection is one of these,
 * stamped with seconds since the session start.
 */
import { Schema } from "effect"

export const EventType = Schema.Literal(
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
  "ConnectionClose"
)
export type EventType = typeof EventType.Type

/** What a decoder reports: an event before the clock has stamped it. */
export interface DecoderEvent {
  readonly type: EventType
  readonly detail: string
  /** Header lines after the start line (requests and responses), as received. */
  readonly headers?: ReadonlyArray<string>
}

export const ConnectionEvent = Schema.Struct({
  time: Schema.Number,
  type: EventType,
  detail: Schema.String,
  headers: Schema.optional(Schema.Array(Schema.String))
})
export interface ConnectionEvent extends DecoderEvent {
  /** Seconds since the session start. */
  readonly time: number
}

/** Which way bytes went: `up` from the browser towards the server, `down` back. */
export type Direction = "up" | "down"
