/**
 * Typed errors. Each carries the fields a message needs; `message` is built
 * from them here, in one place.
 */
import { Data, Schema } from "effect"
import type { DecodeFailure } from "./Event.js"

/** The client's SOCKS bytes could not be understood. */
export class SocksParseError extends Data.TaggedError("SocksParseError")<{
  readonly reason:
    | "UnsupportedVersion"
    | "NoAcceptableMethod"
    | "BadAuthVersion"
    | "BadRequest"
    | "UnsupportedAddressType"
    | "TooLong"
  readonly detail: string
  /** Where in the client's bytes the handshake went wrong; null when not known. */
  readonly offset: number | null
}> {
  override get message() {
    return `${this.reason}: ${this.detail}`
  }
}

/** An HTTP/1.x message could not be decoded; the bytes still flow. */
export class HttpParseError extends Data.TaggedError("HttpParseError")<{
  readonly reason: "StartLine" | "HeaderLine" | "HeaderTooLarge" | "Framing" | "UnexpectedResponse" | "Defect"
  readonly detail: string
  /** Where in that direction's bytes the decoder gave up. */
  readonly offset: number | null
}> {
  override get message() {
    return this.detail
  }
}

/** A TLS handshake record could not be decoded; the bytes still flow. */
export class TlsParseError extends Data.TaggedError("TlsParseError")<{
  readonly reason: "Record" | "Handshake" | "Hello" | "Defect"
  readonly detail: string
  /** Where in that direction's bytes the decoder gave up; null when not known. */
  readonly offset: number | null
}> {
  override get message() {
    return this.detail
  }
}

/** The upstream (Tor, another SOCKS server, or the target itself) did not give a stream. */
export class UpstreamError extends Data.TaggedError("UpstreamError")<{
  readonly reason: "Unreachable" | "Refused" | "Timeout" | "Protocol" | "Rejected"
  /** The SOCKS5 reply code the browser gets (for SOCKS4 clients it is mapped to 0x5B). */
  readonly replyCode: number
  readonly detail: string
}> {
  override get message() {
    return `${this.reason}: ${this.detail}`
  }
}

/** MITM itself refused a SOCKS request, before anything went upstream. */
export class SocksRefusal extends Data.TaggedError("SocksRefusal")<{
  readonly reason: "TooManyClients" | "CommandNotSupported"
  /** The reply code the browser gets, in its SOCKS version. */
  readonly replyCode: number
  readonly detail: string
}> {
  override get message() {
    return `${this.reason}: ${this.detail}`
  }
}

/** A settings document, form or flag was refused; nothing changed. */
export class SettingsError extends Schema.TaggedError<SettingsError>()("SettingsError", {
  field: Schema.String,
  message: Schema.String
}) {}

export type ParseError = SocksParseError | HttpParseError | TlsParseError

/** A parse error as a DecodeError event carries it (SPEC §6); it reads `HttpParseError: invalid header line 3`. */
export const decodeFailureOf = (error: ParseError): DecodeFailure => ({
  _tag: error._tag,
  reason: error.reason,
  message: error.message,
  offset: error.offset
})

/** A measured page load (SPEC §9) did not come to its load event; the run is left out of the statistics. */
export class PageLoadError extends Data.TaggedError("PageLoadError")<{
  readonly reason: "Launch" | "Navigation" | "Timeout"
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

/** No browser to measure with: `measure` says how to install one and exits 1. */
export class BrowserMissing extends Data.TaggedError("BrowserMissing")<{
  readonly path: string
  readonly detail: string
}> {
  override get message() {
    return `no Chromium at ${this.path} (${this.detail}); install Debian's with: apt-get install -y chromium (or name another with --chromium PATH)`
  }
}
