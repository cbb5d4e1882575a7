/**
 * Tor's control protocol (torspec control-spec) as a pure decoder: feed it the
 * bytes Tor sent, get back whole replies, synchronous (`250 OK`) or
 * asynchronous events (`650 CIRC …`), then decode those into typed values.
 * Also the few commands MITM may send and the SAFECOOKIE arithmetic. No I/O,
 * no clock: the control-port layer owns the socket.
 *
 * Text is handled as latin1 (one char per byte), so nothing is lost before a
 * QuotedString is unescaped; values that are file paths are read as UTF-8.
 */
import { Data, Either, Redacted } from "effect"
import * as crypto from "node:crypto"

/** Tor's bytes could not be read as control-protocol replies, or a reply lacked what it must carry. */
export class TorControlParseError extends Data.TaggedError("TorControlParseError")<{
  readonly reason:
    | "StatusLine"
    | "MixedStatus"
    | "LineTooLong"
    | "ReplyTooLarge"
    | "QuotedString"
    | "MissingField"
    | "BadValue"
  /** The offending line, cut to 200 characters. */
  readonly line: string
}> {
  override get message() {
    return `${this.reason}: ${this.line}`
  }
}

const excerpt = (line: string): string => (line.length > 200 ? `${line.slice(0, 200)}…` : line)

const parseError = (reason: TorControlParseError["reason"], line: string) =>
  new TorControlParseError({ reason, line: excerpt(line) })

// ---------------------------------------------------------------------------
// Replies

/** One line of a reply: the text after `250-`, `250 ` or `250+`; `data` is the block that follows a `+` line. */
export interface ControlReplyLine {
  readonly text: string
  /** The data block, dot-unstuffed, lines joined with "\n" (no trailing newline); undefined unless the line had `+`. */
  readonly data: string | undefined
}

/** The answer to one command, in the order commands were sent. */
export interface SyncReply {
  readonly _tag: "SyncReply"
  readonly status: number
  readonly lines: ReadonlyArray<ControlReplyLine>
}

/** An event (status 650) that Tor sends when it likes, also between the replies to commands. */
export interface AsyncReply {
  readonly _tag: "AsyncReply"
  readonly status: number
  readonly lines: ReadonlyArray<ControlReplyLine>
}

export type ControlReply = SyncReply | AsyncReply

/** What a feed yields: replies, or an error for a line that broke the framing (the parser goes on at the next line). */
export type ControlMessage = ControlReply | TorControlParseError

/** Longest line accepted (Tor's are a few hundred bytes; circuit-status lines under 1 KiB). */
export const maxLineLength = 1 << 20
/** Largest reply accepted, data blocks included. */
export const maxReplyLength = 16 << 20

interface PendingReply {
  readonly status: number
  readonly lines: Array<{ text: string; data: string | undefined }>
  length: number
}

interface PendingData {
  readonly reply: PendingReply
  readonly line: { text: string; data: string | undefined }
  readonly lines: Array<string>
  /** The reply grew too large: read to the terminating "." and drop it. */
  discard: boolean
}

/**
 * One per control connection: `feed` each chunk as it arrives (split anywhere)
 * and get the replies completed by it. Lines end with CRLF (a bare LF is
 * accepted). Events are assembled apart from synchronous replies, so an event
 * between the lines of a reply does not disturb it.
 */
export class ControlReplyParser {
  private partial: Array<string> = []
  private partialLength = 0
  /** Skipping the rest of a line that was too long. */
  private skippingLine = false
  private sync: PendingReply | undefined
  private async: PendingReply | undefined
  private data: PendingData | undefined

  feed(chunk: Uint8Array): ReadonlyArray<ControlMessage> {
    const out: Array<ControlMessage> = []
    const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1")
    let start = 0
    while (start < text.length) {
      const newline = text.indexOf("\n", start)
      if (newline < 0) {
        this.keep(text.slice(start), out)
        break
      }
      const piece = text.slice(start, newline)
      start = newline + 1
      if (this.skippingLine) {
        this.skippingLine = false
        this.partial = []
        this.partialLength = 0
        continue
      }
      const raw = this.partialLength > 0 ? this.partial.join("") + piece : piece
      this.partial = []
      this.partialLength = 0
      if (raw.length > maxLineLength) {
        this.lineTooLong(raw, out)
        continue
      }
      this.line(raw.endsWith("\r") ? raw.slice(0, -1) : raw, out)
    }
    return out
  }

  private keep(piece: string, out: Array<ControlMessage>): void {
    if (this.skippingLine) return
    this.partial.push(piece)
    this.partialLength += piece.length
    if (this.partialLength > maxLineLength) {
      this.lineTooLong(this.partial.join(""), out)
      this.partial = []
      this.partialLength = 0
      this.skippingLine = true
    }
  }

  private lineTooLong(raw: string, out: Array<ControlMessage>): void {
    out.push(parseError("LineTooLong", raw))
    // The line is lost, so whatever reply it belonged to is too.
    this.sync = undefined
    this.async = undefined
    this.data = undefined
  }

  private line(line: string, out: Array<ControlMessage>): void {
    const data = this.data
    if (data !== undefined) {
      if (line === ".") {
        this.data = undefined
        if (!data.discard) data.line.data = data.lines.join("\n")
        return
      }
      if (data.discard) return
      data.reply.length += line.length + 2
      if (data.reply.length > maxReplyLength) {
        out.push(parseError("ReplyTooLarge", data.reply.lines[0]?.text ?? line))
        data.discard = true
        this.dropReply(data.reply)
        return
      }
      data.lines.push(line.startsWith(".") ? line.slice(1) : line)
      return
    }

    if (!isStatusLine(line)) {
      out.push(parseError("StatusLine", line))
      return
    }
    const status = Number(line.slice(0, 3))
    const separator = line.length === 3 ? " " : line[3]
    const isAsync = line[0] === "6"
    let reply = isAsync ? this.async : this.sync
    if (reply !== undefined && reply.status !== status) {
      out.push(parseError("MixedStatus", line))
      reply = undefined
    }
    if (reply === undefined) reply = { status, lines: [], length: 0 }
    reply.length += line.length + 2
    if (reply.length > maxReplyLength) {
      out.push(parseError("ReplyTooLarge", line))
      this.dropReply(reply)
      return
    }
    const entry = { text: line.slice(4), data: undefined as string | undefined }
    reply.lines.push(entry)
    if (separator === " ") {
      out.push({ _tag: isAsync ? "AsyncReply" : "SyncReply", status, lines: reply.lines })
      reply = undefined
    } else if (separator === "+") {
      this.data = { reply, line: entry, lines: [], discard: false }
    }
    if (isAsync) this.async = reply
    else this.sync = reply
  }

  private dropReply(reply: PendingReply): void {
    if (this.sync === reply) this.sync = undefined
    if (this.async === reply) this.async = undefined
  }
}

/** A parser for a new control connection. */
export const makeControlReplyParser = (): ControlReplyParser => new ControlReplyParser()

const isDigit = (code: number) => code >= 48 && code <= 57

/** `StatusCode ("-" / "+" / SP) text`; a bare status code counts as a final line with no text. */
const isStatusLine = (line: string): boolean =>
  line.length >= 3 &&
  isDigit(line.charCodeAt(0)) && isDigit(line.charCodeAt(1)) && isDigit(line.charCodeAt(2)) &&
  (line.length === 3 || line[3] === " " || line[3] === "-" || line[3] === "+")

// ---------------------------------------------------------------------------
// Arguments: positional words, then KEYWORD=value pairs with QuotedString values

/**
 * Splits reply text at spaces, keeping a quoted string (with its escapes) inside
 * one token: `A="x y" B` gives `A="x y"` and `B`.
 */
export const splitArguments = (text: string): Either.Either<Array<string>, TorControlParseError> => {
  const tokens: Array<string> = []
  let start = -1
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    if (quoted) {
      if (char === "\\") i++
      else if (char === "\"") quoted = false
      continue
    }
    if (char === " ") {
      if (start >= 0) tokens.push(text.slice(start, i))
      start = -1
      continue
    }
    if (start < 0) start = i
    if (char === "\"") quoted = true
  }
  if (quoted) return Either.left(parseError("QuotedString", text))
  if (start >= 0) tokens.push(text.slice(start))
  return Either.right(tokens)
}

const isOctal = (char: string | undefined) => char !== undefined && char >= "0" && char <= "7"

/**
 * The value of a QuotedString. Tor writes many of them as C strings (control-spec
 * 2.1.1), so `\n`, `\t`, `\r` and octal `\0`…`\377` are read as C escapes, and a
 * backslash before any other character stands for that character.
 */
export const unquote = (quoted: string): Either.Either<string, TorControlParseError> => {
  if (quoted.length < 2 || quoted[0] !== "\"" || quoted[quoted.length - 1] !== "\"") {
    return Either.left(parseError("QuotedString", quoted))
  }
  let out = ""
  const end = quoted.length - 1
  for (let i = 1; i < end; i++) {
    const char = quoted[i]
    if (char === "\"") return Either.left(parseError("QuotedString", quoted))
    if (char !== "\\") {
      out += char
      continue
    }
    i++
    if (i >= end) return Either.left(parseError("QuotedString", quoted))
    const escaped = quoted[i]
    if (escaped === "n") out += "\n"
    else if (escaped === "t") out += "\t"
    else if (escaped === "r") out += "\r"
    else if (isOctal(escaped)) {
      let digits = escaped
      while (digits.length < 3 && i + 1 < end && isOctal(quoted[i + 1])) digits += quoted[++i]
      const value = parseInt(digits, 8)
      if (value > 255) return Either.left(parseError("QuotedString", quoted))
      out += String.fromCharCode(value)
    } else out += escaped
  }
  return Either.right(out)
}

const keywordPattern = /^[A-Za-z_][A-Za-z0-9_]*=/

/** Whether a token is `KEYWORD=value` (a path like `$FP=nick` is not: it starts with `$`). */
const isKeywordArgument = (token: string) => keywordPattern.test(token)

/** Reply arguments: the positional words before the first keyword, and the keywords (unquoted). */
export interface Arguments {
  readonly positional: ReadonlyArray<string>
  readonly keywords: ReadonlyMap<string, string>
}

/** Reads `word word KEY=value KEY="quoted value"`; keywords in any order, later duplicates win. */
export const parseArguments = (text: string): Either.Either<Arguments, TorControlParseError> =>
  Either.flatMap(splitArguments(text), (tokens) => {
    const positional: Array<string> = []
    const keywords = new Map<string, string>()
    for (const token of tokens) {
      if (!isKeywordArgument(token)) {
        // Words after the keywords are not in the grammar; tolerated and ignored.
        if (keywords.size === 0) positional.push(token)
        continue
      }
      const equals = token.indexOf("=")
      const raw = token.slice(equals + 1)
      if (raw.startsWith("\"")) {
        const value = unquote(raw)
        if (Either.isLeft(value)) return Either.left(parseError("QuotedString", text))
        keywords.set(token.slice(0, equals), value.right)
      } else {
        keywords.set(token.slice(0, equals), raw)
      }
    }
    return Either.right({ positional, keywords })
  })

const latin1ToUtf8 = (text: string): string => Buffer.from(text, "latin1").toString("utf8")

const optional = (keywords: ReadonlyMap<string, string>, key: string): string | null => keywords.get(key) ?? null

const optionalInteger = (keywords: ReadonlyMap<string, string>, key: string): number | null => {
  const raw = keywords.get(key)
  if (raw === undefined || !/^-?\d+$/.test(raw)) return null
  return Number(raw)
}

const list = (raw: string | null): ReadonlyArray<string> => (raw === null || raw === "" ? [] : raw.split(","))

// ---------------------------------------------------------------------------
// Relays and paths

/** A relay as Tor names it in a path: `$FINGERPRINT~nickname` (or `=` before Tor 0.3.1, or either part alone). */
export interface TorRelay {
  /** 40 upper-case hex characters; null only for the nickname-only form of very old Tors. */
  readonly fingerprint: string | null
  readonly nickname: string | null
}

const fingerprintPattern = /^[0-9A-Fa-f]{40}$/
const nicknamePattern = /^[A-Za-z0-9]{1,19}$/

/** One path element: `$FP~nick`, `$FP=nick`, `$FP` or `nick`. */
export const parseRelay = (text: string): Either.Either<TorRelay, TorControlParseError> => {
  if (!text.startsWith("$")) {
    return nicknamePattern.test(text)
      ? Either.right({ fingerprint: null, nickname: text })
      : Either.left(parseError("BadValue", text))
  }
  const separator = text.search(/[~=]/)
  const fingerprint = separator < 0 ? text.slice(1) : text.slice(1, separator)
  const nickname = separator < 0 ? null : text.slice(separator + 1)
  if (!fingerprintPattern.test(fingerprint) || (nickname !== null && !nicknamePattern.test(nickname))) {
    return Either.left(parseError("BadValue", text))
  }
  return Either.right({ fingerprint: fingerprint.toUpperCase(), nickname })
}

/** A comma-separated path; empty text is an empty path. */
export const parsePath = (text: string): Either.Either<ReadonlyArray<TorRelay>, TorControlParseError> =>
  text === "" ? Either.right([]) : Either.all(text.split(",").map(parseRelay))

// ---------------------------------------------------------------------------
// Events

/** Circuit statuses (Tor may add more: kept as text). */
export type CircuitStatus = "LAUNCHED" | "BUILT" | "GUARD_WAIT" | "EXTENDED" | "FAILED" | "CLOSED" | (string & {})

/** Stream statuses (Tor may add more: kept as text). */
export type StreamStatus =
  | "NEW"
  | "NEWRESOLVE"
  | "REMAP"
  | "SENTCONNECT"
  | "SENTRESOLVE"
  | "SUCCEEDED"
  | "FAILED"
  | "CLOSED"
  | "DETACHED"
  | "CONTROLLER_WAIT"
  | "XOFF_SENT"
  | "XOFF_RECV"
  | "XON_SENT"
  | "XON_RECV"
  | (string & {})

/** What `CIRC` events and `GETINFO circuit-status` lines say about a circuit. */
export interface CircuitFields {
  readonly id: string
  readonly path: ReadonlyArray<TorRelay>
  /** `ONEHOP_TUNNEL`, `IS_INTERNAL`, `NEED_CAPACITY`, `NEED_UPTIME`. */
  readonly buildFlags: ReadonlyArray<string>
  /** `GENERAL`, `CONFLUX_LINKED`, `HS_CLIENT_REND` … */
  readonly purpose: string | null
  readonly hsState: string | null
  /** ISO time without zone, as Tor writes it (`2026-12-01T14:21:59.511850`). */
  readonly timeCreated: string | null
  /** The conflux set this circuit is a leg of (Tor 0.4.8+). */
  readonly confluxId: string | null
}

/** A line of `GETINFO circuit-status`. */
export interface CircuitStatusEntry extends CircuitFields {
  readonly status: CircuitStatus
}

/** `650 CIRC`: a circuit changed status. */
export interface CircEvent extends CircuitFields {
  readonly _tag: "CircEvent"
  readonly status: CircuitStatus
  readonly reason: string | null
  readonly remoteReason: string | null
}

/** `650 CIRC_MINOR`: a circuit changed purpose or was cannibalized. */
export interface CircMinorEvent extends CircuitFields {
  readonly _tag: "CircMinorEvent"
  /** `PURPOSE_CHANGED` or `CANNIBALIZED`. */
  readonly event: string
  readonly oldPurpose: string | null
}

/** `650 STREAM`: a stream changed status. */
export interface StreamEvent {
  readonly _tag: "StreamEvent"
  readonly id: string
  readonly status: StreamStatus
  /** The circuit Tor names on the event; null for "0" (not attached). */
  readonly circuit: string | null
  /** `host:port` as Tor sees it (after REMAP, e.g. `127.0.0.1.$FP.exit:80`). */
  readonly target: string
  readonly reason: string | null
  readonly remoteReason: string | null
  /** `CACHE` or `EXIT` on REMAP. */
  readonly source: string | null
  /** Where the SOCKS client connected from, `127.0.0.1:54321` (on NEW and NEWRESOLVE). */
  readonly sourceAddress: string | null
  /** `USER`, `DNS_REQUEST`, `DIR_FETCH` … (on NEW and NEWRESOLVE). */
  readonly purpose: string | null
}

/** `650 CIRC_BW`: cells on a circuit since the last report, and congestion control state when Tor has it. */
export interface CircBwEvent {
  readonly _tag: "CircBwEvent"
  readonly id: string
  readonly read: number | null
  readonly written: number | null
  readonly time: string | null
  readonly deliveredRead: number | null
  readonly overheadRead: number | null
  readonly deliveredWritten: number | null
  readonly overheadWritten: number | null
  /** In slow start (`SS=1`). */
  readonly slowStart: boolean | null
  readonly cwnd: number | null
  /** Smoothed round-trip time in milliseconds (`RTT=`). */
  readonly rttMs: number | null
  readonly minRttMs: number | null
}

/** An event MITM does not decode (kept so callers can count or ignore it). */
export interface OtherEvent {
  readonly _tag: "OtherEvent"
  readonly keyword: string
}

export type TorEvent = CircEvent | CircMinorEvent | StreamEvent | CircBwEvent | OtherEvent

const circuitFields = (
  id: string,
  pathText: string | undefined,
  keywords: ReadonlyMap<string, string>
): Either.Either<CircuitFields, TorControlParseError> =>
  Either.map(parsePath(pathText ?? ""), (path) => ({
    id,
    path,
    buildFlags: list(optional(keywords, "BUILD_FLAGS")),
    purpose: optional(keywords, "PURPOSE"),
    hsState: optional(keywords, "HS_STATE"),
    timeCreated: optional(keywords, "TIME_CREATED"),
    confluxId: optional(keywords, "CONFLUX_ID")
  }))

const idPattern = /^[A-Za-z0-9]{1,16}$/

/** `ID STATUS [PATH] KEYWORDS…`: the body of a CIRC event and a circuit-status line. */
const parseCircuitBody = (
  text: string
): Either.Either<{ status: string; fields: CircuitFields; keywords: ReadonlyMap<string, string> }, TorControlParseError> =>
  Either.flatMap(parseArguments(text), ({ keywords, positional }) => {
    const [id, status, path] = positional
    if (id === undefined || status === undefined) return Either.left(parseError("MissingField", text))
    if (!idPattern.test(id)) return Either.left(parseError("BadValue", text))
    return Either.map(
      Either.mapLeft(circuitFields(id, path, keywords), () => parseError("BadValue", text)),
      (fields) => ({ status, fields, keywords })
    )
  })

/** One line of `GETINFO circuit-status`. */
export const parseCircuitStatusLine = (line: string): Either.Either<CircuitStatusEntry, TorControlParseError> =>
  Either.map(parseCircuitBody(line), ({ fields, status }) => ({ ...fields, status }))

/** The value of `GETINFO circuit-status`: one circuit per line (empty when there are none). */
export const decodeCircuitStatus = (
  value: string
): Either.Either<ReadonlyArray<CircuitStatusEntry>, TorControlParseError> =>
  Either.all(value.split("\n").filter((line) => line.trim() !== "").map(parseCircuitStatusLine))

const decodeCirc = (body: string): Either.Either<CircEvent, TorControlParseError> =>
  Either.map(parseCircuitBody(body), ({ fields, keywords, status }) => ({
    _tag: "CircEvent",
    ...fields,
    status,
    reason: optional(keywords, "REASON"),
    remoteReason: optional(keywords, "REMOTE_REASON")
  }))

const decodeCircMinor = (body: string): Either.Either<CircMinorEvent, TorControlParseError> =>
  Either.map(parseCircuitBody(body), ({ fields, keywords, status }) => ({
    _tag: "CircMinorEvent",
    ...fields,
    event: status,
    oldPurpose: optional(keywords, "OLD_PURPOSE")
  }))

const decodeStream = (body: string): Either.Either<StreamEvent, TorControlParseError> =>
  Either.flatMap(parseArguments(body), ({ keywords, positional }) => {
    const [id, status, circuit, target] = positional
    if (id === undefined || status === undefined || circuit === undefined || target === undefined) {
      return Either.left(parseError("MissingField", body))
    }
    if (!idPattern.test(id) || !idPattern.test(circuit)) return Either.left(parseError("BadValue", body))
    return Either.right({
      _tag: "StreamEvent",
      id,
      status,
      circuit: circuit === "0" ? null : circuit,
      target,
      reason: optional(keywords, "REASON"),
      remoteReason: optional(keywords, "REMOTE_REASON"),
      source: optional(keywords, "SOURCE"),
      sourceAddress: optional(keywords, "SOURCE_ADDR"),
      purpose: optional(keywords, "PURPOSE")
    })
  })

const decodeCircBw = (body: string): Either.Either<CircBwEvent, TorControlParseError> =>
  Either.flatMap(parseArguments(body), ({ keywords }) => {
    const id = keywords.get("ID")
    if (id === undefined) return Either.left(parseError("MissingField", body))
    if (!idPattern.test(id)) return Either.left(parseError("BadValue", body))
    const slowStart = optionalInteger(keywords, "SS")
    return Either.right({
      _tag: "CircBwEvent",
      id,
      read: optionalInteger(keywords, "READ"),
      written: optionalInteger(keywords, "WRITTEN"),
      time: optional(keywords, "TIME"),
      deliveredRead: optionalInteger(keywords, "DELIVERED_READ"),
      overheadRead: optionalInteger(keywords, "OVERHEAD_READ"),
      deliveredWritten: optionalInteger(keywords, "DELIVERED_WRITTEN"),
      overheadWritten: optionalInteger(keywords, "OVERHEAD_WRITTEN"),
      slowStart: slowStart === null ? null : slowStart !== 0,
      cwnd: optionalInteger(keywords, "CWND"),
      rttMs: optionalInteger(keywords, "RTT"),
      minRttMs: optionalInteger(keywords, "MIN_RTT")
    })
  })

/** The typed value of an event (the first line of a 650 reply names it). */
export const decodeEvent = (reply: AsyncReply): Either.Either<TorEvent, TorControlParseError> => {
  const first = reply.lines[0]?.text ?? ""
  const space = first.indexOf(" ")
  const keyword = space < 0 ? first : first.slice(0, space)
  const body = space < 0 ? "" : first.slice(space + 1)
  switch (keyword) {
    case "CIRC":
      return decodeCirc(body)
    case "CIRC_MINOR":
      return decodeCircMinor(body)
    case "STREAM":
      return decodeStream(body)
    case "CIRC_BW":
      return decodeCircBw(body)
    default:
      return Either.right({ _tag: "OtherEvent", keyword })
  }
}

// ---------------------------------------------------------------------------
// Synchronous replies MITM reads

/** How Tor lets controllers in, from `PROTOCOLINFO 1`. */
export interface ProtocolInfo {
  readonly protocolInfoVersion: number | null
  /** `NULL`, `HASHEDPASSWORD`, `COOKIE`, `SAFECOOKIE`. */
  readonly authMethods: ReadonlyArray<string>
  /** Where Tor keeps the cookie, unescaped and read as UTF-8. */
  readonly cookieFile: string | null
  readonly torVersion: string | null
}

/** A line `KEYWORD args…` of a reply, or undefined. */
const lineWith = (reply: ControlReply, keyword: string): string | undefined => {
  for (const line of reply.lines) {
    if (line.text === keyword) return ""
    if (line.text.startsWith(`${keyword} `)) return line.text.slice(keyword.length + 1)
  }
  return undefined
}

/** The reply to `PROTOCOLINFO 1`. */
export const decodeProtocolInfo = (reply: SyncReply): Either.Either<ProtocolInfo, TorControlParseError> => {
  const auth = lineWith(reply, "AUTH")
  if (auth === undefined) return Either.left(parseError("MissingField", reply.lines.map((l) => l.text).join(" | ")))
  return Either.gen(function*() {
    const authArguments = yield* parseArguments(auth)
    const version = lineWith(reply, "VERSION")
    const versionArguments = version === undefined ? undefined : yield* parseArguments(version)
    const protocolInfo = lineWith(reply, "PROTOCOLINFO")
    const cookieFile = authArguments.keywords.get("COOKIEFILE")
    return {
      protocolInfoVersion: protocolInfo !== undefined && /^\d+$/.test(protocolInfo) ? Number(protocolInfo) : null,
      authMethods: list(optional(authArguments.keywords, "METHODS")),
      cookieFile: cookieFile === undefined ? null : latin1ToUtf8(cookieFile),
      torVersion: versionArguments?.keywords.get("Tor") ?? null
    }
  })
}

/** Tor's half of SAFECOOKIE, from `AUTHCHALLENGE`. */
export interface AuthChallenge {
  readonly serverHash: Uint8Array
  readonly serverNonce: Uint8Array
}

const hexPattern = /^(?:[0-9A-Fa-f]{2})+$/

/** The reply to `AUTHCHALLENGE SAFECOOKIE …`: both values must be 32 bytes. */
export const decodeAuthChallenge = (reply: SyncReply): Either.Either<AuthChallenge, TorControlParseError> => {
  const body = lineWith(reply, "AUTHCHALLENGE")
  if (body === undefined) return Either.left(parseError("MissingField", reply.lines[0]?.text ?? ""))
  return Either.flatMap(parseArguments(body), ({ keywords }) => {
    const hash = keywords.get("SERVERHASH")
    const nonce = keywords.get("SERVERNONCE")
    if (hash === undefined || nonce === undefined) return Either.left(parseError("MissingField", body))
    if (!hexPattern.test(hash) || !hexPattern.test(nonce) || hash.length !== 64 || nonce.length !== 64) {
      return Either.left(parseError("BadValue", body))
    }
    return Either.right({
      serverHash: new Uint8Array(Buffer.from(hash, "hex")),
      serverNonce: new Uint8Array(Buffer.from(nonce, "hex"))
    })
  })
}

/**
 * The reply to `GETINFO k1 k2…`: `250-key=value` lines and `250+key=` data
 * blocks, ending with `250 OK`. Values are as Tor wrote them (not unquoted).
 */
export const decodeGetInfo = (reply: SyncReply): Either.Either<ReadonlyMap<string, string>, TorControlParseError> => {
  const values = new Map<string, string>()
  for (let index = 0; index < reply.lines.length; index++) {
    const line = reply.lines[index]
    if (index === reply.lines.length - 1 && line.data === undefined && line.text === "OK") continue
    const equals = line.text.indexOf("=")
    if (equals <= 0) return Either.left(parseError("BadValue", line.text))
    values.set(line.text.slice(0, equals), line.data ?? line.text.slice(equals + 1))
  }
  return Either.right(values)
}

// ---------------------------------------------------------------------------
// SAFECOOKIE (control-spec 3.24, proposal 193)

const serverToControllerKey = "Tor safe cookie authentication server-to-controller hash"
const controllerToServerKey = "Tor safe cookie authentication controller-to-server hash"

const safeCookieHmac = (key: string, cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array) =>
  new Uint8Array(crypto.createHmac("sha256", key).update(cookie).update(clientNonce).update(serverNonce).digest())

/** What MITM sends in AUTHENTICATE: HMAC-SHA256(controller-to-server key, cookie | client nonce | server nonce). */
export const safeCookieClientHash = (cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array) =>
  safeCookieHmac(controllerToServerKey, cookie, clientNonce, serverNonce)

/** What Tor must send in AUTHCHALLENGE to prove it knows the cookie. */
export const safeCookieServerHash = (cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array) =>
  safeCookieHmac(serverToControllerKey, cookie, clientNonce, serverNonce)

/** Whether Tor's SERVERHASH is right, compared in constant time: else the port is not the Tor that wrote the cookie. */
export const verifySafeCookieServerHash = (
  cookie: Uint8Array,
  clientNonce: Uint8Array,
  challenge: AuthChallenge
): boolean => {
  const expected = safeCookieServerHash(cookie, clientNonce, challenge.serverNonce)
  return expected.length === challenge.serverHash.length && crypto.timingSafeEqual(expected, challenge.serverHash)
}

// ---------------------------------------------------------------------------
// Commands: MITM only reads, so only these can be built

/** GETINFO keys MITM asks for. */
export const getInfoKeys = ["version", "circuit-status", "stream-status"] as const
export type GetInfoKey = typeof getInfoKeys[number]

/** Events MITM subscribes to. */
export const eventNames = ["STREAM", "CIRC", "CIRC_BW", "CIRC_MINOR"] as const
export type EventName = typeof eventNames[number]

/** The AUTHENTICATE argument: nothing (NULL auth), bytes as hex (COOKIE, SAFECOOKIE), or a password. */
export type AuthSecret =
  | { readonly _tag: "None" }
  | { readonly _tag: "Bytes"; readonly bytes: Redacted.Redacted<Uint8Array> }
  | { readonly _tag: "Password"; readonly password: Redacted.Redacted<string> }

export type ControlCommand =
  | { readonly _tag: "ProtocolInfo" }
  | { readonly _tag: "AuthChallenge"; readonly clientNonce: Uint8Array }
  | { readonly _tag: "Authenticate"; readonly secret: AuthSecret }
  | { readonly _tag: "GetInfo"; readonly keys: readonly [GetInfoKey, ...Array<GetInfoKey>] }
  | { readonly _tag: "SetEvents"; readonly events: ReadonlyArray<EventName> }

/** The commands MITM may send; nothing else can be built. */
export const ControlCommand = {
  protocolInfo: { _tag: "ProtocolInfo" } as ControlCommand,
  authChallenge: (clientNonce: Uint8Array): ControlCommand => ({ _tag: "AuthChallenge", clientNonce }),
  authenticate: (secret: AuthSecret): ControlCommand => ({ _tag: "Authenticate", secret }),
  getInfo: (...keys: readonly [GetInfoKey, ...Array<GetInfoKey>]): ControlCommand => ({ _tag: "GetInfo", keys }),
  setEvents: (...events: ReadonlyArray<EventName>): ControlCommand => ({ _tag: "SetEvents", events })
} as const

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex").toUpperCase()

/**
 * The password as Tor's AUTHENTICATE reads it: a QuotedString of its UTF-8 bytes
 * where `\` and `"` are escaped (Tor's decode_qstring takes any other byte as is).
 * A command is one line, so a password with CR, LF or NUL goes as hex instead.
 */
export const encodePasswordArgument = (password: string): Uint8Array => {
  const bytes = Buffer.from(password, "utf8")
  if (bytes.includes(0x0a) || bytes.includes(0x0d) || bytes.includes(0x00)) return Buffer.from(hex(bytes), "latin1")
  const out: Array<number> = [0x22]
  for (const byte of bytes) {
    if (byte === 0x5c || byte === 0x22) out.push(0x5c)
    out.push(byte)
  }
  out.push(0x22)
  return Uint8Array.from(out)
}

const ascii = (text: string) => Buffer.from(text, "latin1")

const authenticateArgument = (secret: AuthSecret): Uint8Array => {
  switch (secret._tag) {
    case "None":
      return ascii("")
    case "Bytes":
      return ascii(` ${hex(Redacted.value(secret.bytes))}`)
    case "Password":
      return Buffer.concat([ascii(" "), encodePasswordArgument(Redacted.value(secret.password))])
  }
}

/** The bytes of a command line, CRLF included. */
export const encodeCommand = (command: ControlCommand): Uint8Array => {
  switch (command._tag) {
    case "ProtocolInfo":
      return ascii("PROTOCOLINFO 1\r\n")
    case "AuthChallenge":
      return ascii(`AUTHCHALLENGE SAFECOOKIE ${hex(command.clientNonce)}\r\n`)
    case "Authenticate":
      return Buffer.concat([ascii("AUTHENTICATE"), authenticateArgument(command.secret), ascii("\r\n")])
    case "GetInfo":
      return ascii(`GETINFO ${command.keys.join(" ")}\r\n`)
    case "SetEvents":
      return ascii(command.events.length === 0 ? "SETEVENTS\r\n" : `SETEVENTS ${command.events.join(" ")}\r\n`)
  }
}
