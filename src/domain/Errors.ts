/**
 * Typed errors. Each carries the fields a message needs; `message` is built
 * from them here, in one place.
 */
import { Data, Schema } from "effect"

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
}> {
  override get message() {
    return `${this.reason}: ${this.detail}`
  }
}

/** An HTTP/1.x message could not be decoded; the bytes still flow. */
export class HttpParseError extends Data.TaggedError("HttpParseError")<{
  readonly reason: "StartLine" | "HeaderLine" | "HeaderTooLarge" | "Framing" | "UnexpectedResponse"
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

/** A TLS handshake record could not be decoded; the bytes still flow. */
export class TlsParseError extends Data.TaggedError("TlsParseError")<{
  readonly detail: string
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

/** A settings document, form or flag was refused; nothing changed. */
export class SettingsError extends Schema.TaggedError<SettingsError>()("SettingsError", {
  field: Schema.String,
  message: Schema.String
}) {}

/** How a decode error reads in an event log: `HttpParseError: invalid header line 3`. */
export const describeDecodeError = (error: SocksParseError | HttpParseError | TlsParseError): string =>
  `${error._tag}: ${error.message}`
