/**
 * An incremental HTTP/1.x decoder for both directions of one connection, in the
 * sans-io style: bytes in, events out, no I/O and no clock. Body bytes are skipped
 * by arithmetic; only header sections and chunk-size lines are read.
 */
import { decodeFailureOf, HttpParseError } from "./Errors.js"
import type { DecoderEvent, Direction } from "./Event.js"

/** The most a header (or trailer) section may take before the decoder gives up. */
const SECTION_LIMIT = 65536
/** A chunk-size line (with extensions) longer than this is not a chunk-size line. */
const CHUNK_LINE_LIMIT = 4096
/** The start-line prefix check looks at this many bytes, so garbage fails early. */
const PREFIX_CHECK = 64

type Phase =
  | "head"
  | "length"
  | "chunkSize"
  | "chunkData"
  | "chunkDataEnd"
  | "trailers"
  | "untilClose"
  /** Up only: after a CONNECT or Upgrade request, until its response says tunnel or not. */
  | "paused"
  | "ended"

interface Cons<A> {
  readonly head: A
  readonly tail: Cons<A> | undefined
}

const toArray = <A>(list: Cons<A> | undefined): Array<A> => {
  const out: Array<A> = []
  for (let l = list; l !== undefined; l = l.tail) out.push(l.head)
  return out.reverse()
}

interface Side {
  readonly phase: Phase
  /** Body bytes left in a Content-Length body or in the current chunk. */
  readonly remaining: number
  /** Decoded body bytes so far. */
  readonly body: number
  /** The unfinished line: header section or chunk-size line (latin1). */
  readonly line: string
  /** Finished lines of the header section, newest first. */
  readonly lines: Cons<string> | undefined
  readonly lineCount: number
  /** Bytes of the header or trailer section so far. */
  readonly size: number
  /** Trailers: bytes of the current line so far. */
  readonly lineLength: number
  /** chunkDataEnd: CR seen; trailers: the current line so far is a lone CR. */
  readonly sawCR: boolean
  /** Up: the request being read stops decoding until its response (Upgrade). */
  readonly pauseAfter: boolean
  /** Up bytes that arrived while paused, newest first (at most SECTION_LIMIT). */
  readonly held: Cons<Uint8Array> | undefined
  readonly heldSize: number
  readonly heldOverflow: boolean
  /** FIN arrived while paused. */
  readonly endedWhilePaused: boolean
  /** The exchange of the message being read (responses: the request it answers). */
  readonly exchange: number
  /** Bytes of this direction fed before the current chunk: where a failure is in the stream. */
  readonly position: number
}

interface Pending {
  readonly exchange: number
  readonly method: string
  /** The up direction is paused until this request's final response. */
  readonly pauses: boolean
}

/** A FIFO of outstanding requests as two lists, so the state stays persistent. */
interface Queue {
  readonly front: Cons<Pending> | undefined
  readonly back: Cons<Pending> | undefined
}

export interface HttpDecoderState {
  readonly mode: "decoding" | "tunnel" | "failed"
  readonly up: Side
  readonly down: Side
  readonly pending: Queue
  /** Requests seen so far: the next request's exchange index. */
  readonly requests: number
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type MSide = Mutable<Side>
/** The state being worked on during one call; a fresh copy each call. */
interface Work {
  mode: HttpDecoderState["mode"]
  /** Where in this chunk the request head being read began; -1 when it began in an earlier chunk. */
  headStart: number
  /**
   * Where the fed chunk begins in its direction's stream, and where in the chunk the element
   * being read began (a line may have begun in an earlier chunk, so `at` may be negative).
   */
  base: number
  at: number
  /** Where in the stream the header or trailer section being read began. */
  sectionStart: number
  requests: number
  up: MSide
  down: MSide
  /** `up` is still the previous state's object (a down feed copies it only to resume it). */
  upShared: boolean
  pending: Mutable<Queue>
  readonly events: Array<DecoderEvent>
}

const headSide: Side = {
  phase: "head",
  remaining: 0,
  body: 0,
  line: "",
  lines: undefined,
  lineCount: 0,
  size: 0,
  lineLength: 0,
  sawCR: false,
  pauseAfter: false,
  held: undefined,
  heldSize: 0,
  heldOverflow: false,
  endedWhilePaused: false,
  exchange: 0,
  position: 0
}

export const initialHttpDecoder: HttpDecoderState = {
  mode: "decoding",
  up: headSide,
  down: headSide,
  pending: { front: undefined, back: undefined },
  requests: 0
}

/** "tunnel" after 101 or a 2xx to CONNECT; "failed" after a DecodeError. Neither emits events. */
export const httpDecoderMode = (state: HttpDecoderState): "decoding" | "tunnel" | "failed" => state.mode

const NO_EVENTS: ReadonlyArray<DecoderEvent> = []

/** The work copy of a state: only the fed side is copied; a feed never touches the other one, except resumeUp. */
const begin = (state: HttpDecoderState, direction: Direction): Work => ({
  mode: state.mode,
  headStart: -1,
  base: state[direction].position,
  at: 0,
  sectionStart: state[direction].position,
  requests: state.requests,
  up: direction === "up" ? { ...state.up } : state.up as MSide,
  down: direction === "down" ? { ...state.down } : state.down as MSide,
  upShared: direction !== "up",
  pending: { ...state.pending },
  events: []
})

const finish = (w: Work): readonly [HttpDecoderState, ReadonlyArray<DecoderEvent>] => [
  { mode: w.mode, up: w.up, down: w.down, pending: w.pending, requests: w.requests },
  w.events
]

/** One chunk of one direction, as relayed: "up" carries requests, "down" responses. */
export const feedHttp = (
  state: HttpDecoderState,
  direction: Direction,
  chunk: Uint8Array
): readonly [HttpDecoderState, ReadonlyArray<DecoderEvent>] => {
  if (state.mode !== "decoding" || chunk.length === 0) return [state, NO_EVENTS]
  const w = begin(state, direction)
  feedSide(w, direction, chunk, 0)
  const side = direction === "up" ? w.up : w.down
  side.position = w.base + chunk.length
  return finish(w)
}

/** That direction's stream ended (FIN): ends a close-delimited response body (HttpResponseEnd); an unfinished message becomes a DecodeError. */
export const endHttp = (
  state: HttpDecoderState,
  direction: Direction
): readonly [HttpDecoderState, ReadonlyArray<DecoderEvent>] => {
  if (state.mode !== "decoding") return [state, NO_EVENTS]
  const w = begin(state, direction)
  endSide(w, direction)
  return finish(w)
}

// --- events and failure ---

/** Decoding stops; `offset` is where the offending element began in the stream, however the bytes were split. */
const fail = (w: Work, reason: HttpParseError["reason"], detail: string, offset = w.base + w.at): void => {
  w.events.push({ type: "DecodeError", error: decodeFailureOf(new HttpParseError({ reason, detail, offset })) })
  w.mode = "failed"
}

/** Back to reading a head; where the side is in its stream and which exchange it is on stay. */
const resetToHead = (side: MSide): void => {
  const { exchange, position } = side
  Object.assign(side, headSide)
  side.exchange = exchange
  side.position = position
}

/** The message on this side is complete. */
const endMessage = (w: Work, direction: Direction, side: MSide): void => {
  w.events.push({ type: direction === "up" ? "HttpRequestEnd" : "HttpResponseEnd", exchange: side.exchange, bodyBytes: side.body })
  const pause = direction === "up" && side.pauseAfter
  resetToHead(side)
  if (pause) side.phase = "paused"
}

// --- the byte loop ---

const feedSide = (w: Work, direction: Direction, chunk: Uint8Array, start: number): void => {
  const side = direction === "up" ? w.up : w.down
  const end = chunk.length
  const text = view(chunk)
  let i = start
  while (i < end && w.mode === "decoding") {
    w.at = i
    switch (side.phase) {
      case "head":
        i = readHead(w, direction, side, chunk, text, i)
        break
      case "length": {
        const take = Math.min(side.remaining, end - i)
        side.remaining -= take
        side.body += take
        i += take
        if (side.remaining === 0) endMessage(w, direction, side)
        break
      }
      case "chunkData": {
        const take = Math.min(side.remaining, end - i)
        side.remaining -= take
        side.body += take
        i += take
        if (side.remaining === 0) {
          side.phase = "chunkDataEnd"
          side.sawCR = false
        }
        break
      }
      case "chunkSize":
        i = readChunkSize(w, side, chunk, text, i)
        break
      case "chunkDataEnd": {
        const b = chunk[i]
        if (b === 10) {
          side.phase = "chunkSize"
          side.line = ""
        } else if (b === 13 && !side.sawCR) {
          side.sawCR = true
        } else {
          fail(w, "Framing", "missing CRLF after chunk data")
        }
        i += 1
        break
      }
      case "trailers":
        i = readTrailers(w, direction, side, chunk, i)
        break
      case "untilClose":
        side.body += end - i
        i = end
        break
      case "paused":
        hold(side, chunk, i)
        i = end
        break
      case "ended":
        i = end
        break
    }
  }
}

const endSide = (w: Work, direction: Direction): void => {
  const side = direction === "up" ? w.up : w.down
  w.at = 0
  switch (side.phase) {
    case "head":
      if (side.lineCount === 0 && (side.line === "" || side.line === "\r")) {
        resetToHead(side)
        side.phase = "ended"
      } else {
        fail(w, "Framing", direction === "up" ? "stream ended inside a request" : "stream ended inside a response")
      }
      return
    case "untilClose":
      endMessage(w, direction, side)
      resetToHead(side)
      side.phase = "ended"
      return
    case "paused":
      side.endedWhilePaused = true
      return
    case "ended":
      return
    default:
      fail(w, "Framing", direction === "up" ? "stream ended inside a request" : "stream ended inside a response")
  }
}

// --- header sections ---

const view = (chunk: Uint8Array): Buffer =>
  Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)

const TOKEN = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1
}
const TOKEN_CLASS = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]"
const REQUEST_LINE = new RegExp(`^${TOKEN_CLASS}+ [^\\x00-\\x20\\x7f]+ HTTP/1\\.[0-9]$`)
const STATUS_LINE = /^HTTP\/1\.[0-9] [0-9]{3}(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/
const HEADER_LINE = new RegExp(`^${TOKEN_CLASS}+:`)
const HTTP_PREFIX = "HTTP/1."

/** Whether an unfinished start line can still become a valid one (prefix-closed, so chunking cannot change the verdict). */
const startLinePrefixOk = (direction: Direction, line: string): boolean => {
  if (line === "\r") return true // a leading empty line, being ended
  const n = Math.min(line.length, PREFIX_CHECK)
  if (direction === "down") {
    for (let k = 0; k < n && k < HTTP_PREFIX.length; k++) {
      if (line.charCodeAt(k) !== HTTP_PREFIX.charCodeAt(k)) return false
    }
    return true
  }
  for (let k = 0; k < n; k++) {
    const c = line.charCodeAt(k)
    if (c === 32) return k > 0
    if (c > 255 || TOKEN[c] !== 1) return false
  }
  return true
}

/** Reads header-section lines; returns where it stopped in the chunk. */
const readHead = (
  w: Work,
  direction: Direction,
  side: MSide,
  chunk: Uint8Array,
  text: Buffer,
  from: number
): number => {
  const end = chunk.length
  let i = from
  while (i < end) {
    w.at = i - side.line.length
    w.sectionStart = w.base + i - side.size
    if (side.lineCount === 0 && side.line === "" && side.size === 0) w.headStart = i
    const lf = chunk.indexOf(10, i)
    const segmentEnd = lf === -1 ? end : lf
    const next = lf === -1 ? end : lf + 1
    const consumed = next - i
    // Once a start line is PREFIX_CHECK long, its prefix has been checked.
    if (side.lineCount === 0 && side.line.length < PREFIX_CHECK) {
      const prefix = side.line + text.toString("latin1", i, Math.min(segmentEnd, i + PREFIX_CHECK))
      if (!startLinePrefixOk(direction, prefix)) {
        fail(w, "StartLine", direction === "up" ? "invalid request line" : "invalid status line")
        return end
      }
    }
    if (side.size + consumed > SECTION_LIMIT) {
      fail(w, "HeaderTooLarge", `header section over ${SECTION_LIMIT} bytes`, w.sectionStart)
      return end
    }
    const line = side.line + text.toString("latin1", i, segmentEnd)
    if (lf === -1) {
      side.line = line
      side.size += consumed
      return end
    }
    i = next
    side.line = ""
    const content = line.endsWith("\r") ? line.slice(0, -1) : line
    if (content === "") {
      if (side.lineCount === 0) {
        side.size = 0 // empty lines before a start line are ignored (RFC 9112 §2.2)
        continue
      }
      const lines = toArray(side.lines)
      side.lines = undefined
      side.lineCount = 0
      side.size = 0
      if (direction === "up") onRequestHead(w, side, lines)
      else onResponseHead(w, side, lines)
      return i
    }
    side.size += consumed
    side.lineCount += 1
    if (side.lineCount === 1) {
      if (!(direction === "up" ? REQUEST_LINE : STATUS_LINE).test(content)) {
        fail(w, "StartLine", direction === "up" ? "invalid request line" : "invalid status line")
        return end
      }
    } else if (!HEADER_LINE.test(content)) {
      fail(w, "HeaderLine", `invalid header line ${side.lineCount}`)
      return end
    }
    side.lines = { head: content, tail: side.lines }
  }
  return i
}

// --- framing (RFC 9112 §6) ---

const trimOws = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, "")

interface Fields {
  /** Transfer codings, lower case, in order; empty when absent. */
  readonly codings: ReadonlyArray<string>
  /** Content-Length values, one per list element; undefined when absent. */
  readonly contentLength: ReadonlyArray<string> | undefined
  readonly upgrade: boolean
}

const readFields = (headers: ReadonlyArray<string>): Fields => {
  const codings: Array<string> = []
  let contentLength: Array<string> | undefined
  let upgrade = false
  for (const header of headers) {
    const colon = header.indexOf(":")
    // Only three names matter here; skip the others without lower-casing them.
    if (colon !== 17 && colon !== 14 && colon !== 7) continue
    const name = header.slice(0, colon).toLowerCase()
    if (name === "transfer-encoding") {
      for (const coding of header.slice(colon + 1).split(",")) {
        const c = trimOws(coding).toLowerCase()
        if (c !== "") codings.push(c)
      }
    } else if (name === "content-length") {
      contentLength ??= []
      for (const value of header.slice(colon + 1).split(",")) contentLength.push(trimOws(value))
    } else if (name === "upgrade") {
      upgrade = true
    }
  }
  return { codings, contentLength, upgrade }
}

/** The body length, or an error detail. */
const parseContentLength = (values: ReadonlyArray<string>): number | string => {
  let length: number | undefined
  for (const value of values) {
    if (!/^[0-9]{1,15}$/.test(value)) return "invalid Content-Length"
    const n = Number(value)
    if (length !== undefined && n !== length) return "conflicting Content-Length"
    length = n
  }
  return length ?? "invalid Content-Length"
}

/** Sets the body phase from the framing fields; false when it failed. */
const startBody = (
  w: Work,
  direction: Direction,
  side: MSide,
  fields: Fields,
  otherwise: "none" | "untilClose"
): boolean => {
  if (fields.codings.length > 0) {
    if (fields.codings[fields.codings.length - 1] === "chunked") {
      side.phase = "chunkSize"
      side.line = ""
      return true
    }
    if (direction === "up") {
      fail(w, "Framing", "request Transfer-Encoding does not end in chunked", w.sectionStart)
      return false
    }
    side.phase = "untilClose"
    return true
  }
  if (fields.contentLength !== undefined) {
    const length = parseContentLength(fields.contentLength)
    if (typeof length === "string") {
      fail(w, "Framing", length, w.sectionStart)
      return false
    }
    if (length === 0) {
      endMessage(w, direction, side)
    } else {
      side.phase = "length"
      side.remaining = length
    }
    return true
  }
  if (otherwise === "untilClose") side.phase = "untilClose"
  else endMessage(w, direction, side)
  return true
}

const onRequestHead = (w: Work, side: MSide, lines: ReadonlyArray<string>): void => {
  // REQUEST_LINE checked it: `method SP target SP HTTP/x.y`, single spaces.
  const requestLine = lines[0]
  const headers = lines.slice(1)
  const method = requestLine.slice(0, requestLine.indexOf(" "))
  const exchange = w.requests++
  side.exchange = exchange
  w.events.push({
    type: "HttpRequestStart",
    exchange,
    method,
    target: requestLine.slice(method.length + 1, requestLine.length - 9),
    httpVersion: requestLine.slice(requestLine.length - 8),
    headers,
    // Where the request began in this chunk (0: in an earlier one): the relay holds it there.
    offset: Math.max(w.headStart, 0)
  })
  const fields = readFields(headers)
  // Bytes after a CONNECT or an Upgrade request may already be the tunnel's: wait for the response.
  const pauses = method === "CONNECT" || fields.upgrade
  w.pending.back = { head: { exchange, method, pauses }, tail: w.pending.back }
  side.pauseAfter = pauses
  if (method === "CONNECT") {
    endMessage(w, "up", side)
    return
  }
  startBody(w, "up", side, fields, "none")
}

const peekPending = (w: Work): Pending | undefined => {
  if (w.pending.front === undefined && w.pending.back !== undefined) {
    let front: Cons<Pending> | undefined
    for (let l: Cons<Pending> | undefined = w.pending.back; l !== undefined; l = l.tail) {
      front = { head: l.head, tail: front }
    }
    w.pending.front = front
    w.pending.back = undefined
  }
  return w.pending.front?.head
}

const onResponseHead = (w: Work, side: MSide, lines: ReadonlyArray<string>): void => {
  const statusLine = lines[0]
  const headers = lines.slice(1)
  const request = peekPending(w)
  if (request === undefined) {
    fail(w, "UnexpectedResponse", "response without a request", w.sectionStart)
    return
  }
  // STATUS_LINE checked it: `HTTP/x.y SP 3DIGIT [SP reason]`.
  const status = Number(statusLine.slice(9, 12))
  const start = {
    exchange: request.exchange,
    status,
    reason: statusLine.slice(13),
    httpVersion: statusLine.slice(0, 8),
    headers
  }
  if (status < 200 && status !== 101) {
    w.events.push({ type: "HttpInformational", ...start })
    return
  }
  w.pending.front = w.pending.front!.tail
  side.exchange = request.exchange
  w.events.push({ type: "HttpResponseStart", ...start })
  if (status === 101 || (request.method === "CONNECT" && status < 300)) {
    endMessage(w, "down", side)
    w.mode = "tunnel"
    return
  }
  if (request.method === "HEAD" || status === 204 || status === 304) {
    endMessage(w, "down", side)
  } else if (!startBody(w, "down", side, readFields(headers), "untilClose")) {
    return
  }
  if (request.pauses) resumeUp(w)
}

// --- chunked bodies ---

const CHUNK_SIZE_LINE = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/

const readChunkSize = (w: Work, side: MSide, chunk: Uint8Array, text: Buffer, from: number): number => {
  const end = chunk.length
  w.at = from - side.line.length
  const lf = chunk.indexOf(10, from)
  const segmentEnd = lf === -1 ? end : lf
  if (side.line.length + (segmentEnd - from) > CHUNK_LINE_LIMIT) {
    fail(w, "Framing", "invalid chunk size line")
    return end
  }
  const line = side.line + text.toString("latin1", from, segmentEnd)
  if (lf === -1) {
    side.line = line
    return end
  }
  side.line = ""
  const match = CHUNK_SIZE_LINE.exec(line.endsWith("\r") ? line.slice(0, -1) : line)
  const digits = match === null ? "" : match[1].replace(/^0+(?=.)/, "")
  if (match === null || digits.length > 13) {
    fail(w, "Framing", "invalid chunk size line")
    return end
  }
  const size = parseInt(digits, 16)
  if (size === 0) {
    side.phase = "trailers"
    side.size = 0
    side.lineLength = 0
    side.sawCR = false
  } else {
    side.phase = "chunkData"
    side.remaining = size
  }
  return lf + 1
}

/** Trailer fields are counted against the section limit, not kept. */
const readTrailers = (w: Work, direction: Direction, side: MSide, chunk: Uint8Array, from: number): number => {
  const end = chunk.length
  let i = from
  while (i < end) {
    w.at = i - side.lineLength
    const lf = chunk.indexOf(10, i)
    const segmentEnd = lf === -1 ? end : lf
    const next = lf === -1 ? end : lf + 1
    if (side.size + (next - i) > SECTION_LIMIT) {
      fail(w, "HeaderTooLarge", `trailer section over ${SECTION_LIMIT} bytes`, w.base + i - side.size)
      return end
    }
    side.size += next - i
    const length = side.lineLength + (segmentEnd - i)
    const loneCR = length === 1 && (side.lineLength === 1 ? side.sawCR : chunk[i] === 13)
    if (lf === -1) {
      side.lineLength = length
      side.sawCR = loneCR
      return end
    }
    i = next
    if (length === 0 || loneCR) {
      endMessage(w, direction, side)
      return i
    }
    side.lineLength = 0
    side.sawCR = false
  }
  return i
}

// --- pausing the up direction ---

const hold = (side: MSide, chunk: Uint8Array, from: number): void => {
  if (side.heldOverflow) return
  const n = chunk.length - from
  if (side.heldSize + n > SECTION_LIMIT) {
    // Too much to keep: decoding resumes with the bytes that arrive after the response.
    side.held = undefined
    side.heldSize = 0
    side.heldOverflow = true
    return
  }
  side.held = { head: chunk.slice(from), tail: side.held }
  side.heldSize += n
}

/** The response said "no tunnel": decode the up bytes that waited. */
const resumeUp = (w: Work): void => {
  if (w.upShared) {
    w.up = { ...w.up }
    w.upShared = false
  }
  const up = w.up
  if (up.phase !== "paused") {
    up.pauseAfter = false // answered before its body was complete
    return
  }
  const held = toArray(up.held)
  const ended = up.endedWhilePaused
  resetToHead(up)
  for (const chunk of held) {
    if (w.mode !== "decoding") return
    feedSide(w, "up", chunk, 0)
  }
  if (ended && w.mode === "decoding") endSide(w, "up")
}
