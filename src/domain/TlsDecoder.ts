/**
 * An incremental TLS handshake observer for both directions of one connection, in
 * the sans-io style: bytes in, events out. It reads the plaintext hellos and notes
 * the first application-data record each way; it never decrypts anything.
 */
import { hexByte as hex } from "./Address.js"
import { decodeFailureOf, TlsParseError } from "./Errors.js"
import type { DecoderEvent, Direction, TlsClientHello, TlsServerHello } from "./Event.js"

/** The largest record TLS allows (2^14 plus expansion). */
const RECORD_LIMIT = 16384 + 2048
/** The most a buffered hello message may take before the decoder gives up. */
const HELLO_LIMIT = 65536

const CHANGE_CIPHER_SPEC = 20
const HANDSHAKE = 22
const APPLICATION_DATA = 23
const HEARTBEAT = 24

const CLIENT_HELLO = 1
const SERVER_HELLO = 2

const EXT_SERVER_NAME = 0
const EXT_ALPN = 16
const EXT_SUPPORTED_VERSIONS = 43

/** The ServerHello random that marks a HelloRetryRequest (RFC 8446 §4.1.3). */
const HELLO_RETRY_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"

interface Side {
  /** The first application-data record went by: nothing more to learn this way. */
  readonly finished: boolean
  /** Bytes of the record header read so far (fewer than 5). */
  readonly recordHeader: ReadonlyArray<number>
  readonly inRecord: boolean
  readonly recordType: number
  readonly recordLeft: number
  /** ChangeCipherSpec went by: in TLS 1.2 later handshake records are encrypted. */
  readonly sawChangeCipherSpec: boolean
  /** Bytes of the handshake message header read so far (fewer than 4). */
  readonly handshakeHeader: ReadonlyArray<number>
  readonly inMessage: boolean
  readonly messageType: number
  readonly messageLeft: number
  /** The current message is this side's hello, so its body is kept. */
  readonly keep: boolean
  readonly kept: ReadonlyArray<Uint8Array>
  /** Bytes of this direction fed before the current chunk: where a failure is in the stream. */
  readonly position: number
  /** Where in the stream the current handshake message's header began. */
  readonly messageStart: number
}

export interface TlsDecoderState {
  readonly failed: boolean
  /**
   * A ServerHello chose TLS 1.3, whose ChangeCipherSpec is a dummy: its encrypted
   * handshake travels as application data, and plaintext hellos may follow a CCS.
   */
  readonly tls13: boolean
  readonly up: Side
  readonly down: Side
}

const freshSide: Side = {
  finished: false,
  recordHeader: [],
  inRecord: false,
  recordType: 0,
  recordLeft: 0,
  sawChangeCipherSpec: false,
  handshakeHeader: [],
  inMessage: false,
  messageType: 0,
  messageLeft: 0,
  keep: false,
  kept: [],
  position: 0,
  messageStart: 0
}

export const initialTlsDecoder: TlsDecoderState = { failed: false, tls13: false, up: freshSide, down: freshSide }

/** True once nothing more will be reported: both first application-data records seen, or failed. */
export const tlsDecoderDone = (state: TlsDecoderState): boolean =>
  state.failed || (state.up.finished && state.down.finished)

const NO_EVENTS: ReadonlyArray<DecoderEvent> = []

type MSide = { -readonly [K in keyof Side]: Side[K] }
interface Work {
  failed: boolean
  tls13: boolean
  readonly events: Array<DecoderEvent>
  /** Where the fed chunk begins in its direction's stream, and how far into it the decoder is. */
  readonly base: number
  at: number
}

/** One chunk of one direction, as relayed: "up" carries the ClientHello, "down" the ServerHello. */
export const feedTls = (
  state: TlsDecoderState,
  direction: Direction,
  chunk: Uint8Array
): readonly [TlsDecoderState, ReadonlyArray<DecoderEvent>] => {
  const current = direction === "up" ? state.up : state.down
  if (state.failed || current.finished || chunk.length === 0) return [state, NO_EVENTS]
  const w: Work = { failed: false, tls13: state.tls13, events: [], base: current.position, at: 0 }
  const side: MSide = { ...current }
  feedSide(w, direction, side, chunk)
  side.position += chunk.length
  const next: TlsDecoderState = {
    failed: w.failed,
    tls13: w.tls13,
    up: direction === "up" ? side : state.up,
    down: direction === "down" ? side : state.down
  }
  return [next, w.events]
}

/** Decoding stops; `offset` is where the offending record or message began, however the bytes were split. */
const fail = (w: Work, reason: TlsParseError["reason"], detail: string, offset = w.base + w.at): void => {
  w.events.push({ type: "DecodeError", error: decodeFailureOf(new TlsParseError({ reason, detail, offset })) })
  w.failed = true
}

// --- the record layer ---

const feedSide = (w: Work, direction: Direction, side: MSide, chunk: Uint8Array): void => {
  let i = 0
  while (i < chunk.length && !w.failed && !side.finished) {
    // A record header may have begun in an earlier chunk.
    w.at = side.inRecord ? i : i - side.recordHeader.length
    if (!side.inRecord) {
      const need = 5 - side.recordHeader.length
      const take = Math.min(need, chunk.length - i)
      side.recordHeader = [...side.recordHeader, ...chunk.subarray(i, i + take)]
      i += take
      if (side.recordHeader.length === 5) startRecord(w, direction, side)
      continue
    }
    const take = Math.min(side.recordLeft, chunk.length - i)
    if (side.recordType === HANDSHAKE && (!side.sawChangeCipherSpec || w.tls13)) handshakeBytes(w, direction, side, chunk, i, i + take)
    i += take
    side.recordLeft -= take
    if (side.recordLeft === 0) side.inRecord = false
  }
}

const startRecord = (w: Work, direction: Direction, side: MSide): void => {
  const [type, major, minor, hi, lo] = side.recordHeader
  const length = (hi << 8) | lo
  side.recordHeader = []
  if (type < CHANGE_CIPHER_SPEC || type > HEARTBEAT) return fail(w, "Record", `bad record type ${type}`)
  if (major !== 3) return fail(w, "Record", `bad record version ${hex(major)}${hex(minor).slice(2)}`)
  if (length > RECORD_LIMIT) return fail(w, "Record", `record of ${length} bytes is too long`)
  if (type === APPLICATION_DATA) {
    w.events.push({ type: "TlsApplicationData", direction })
    side.finished = true
    return
  }
  if (type === CHANGE_CIPHER_SPEC) side.sawChangeCipherSpec = true
  // Alerts (21), heartbeats and ChangeCipherSpec bodies are skipped: they say nothing we report.
  side.inRecord = length > 0
  side.recordType = type
  side.recordLeft = length
}

// --- handshake messages, possibly spread over records ---

const handshakeBytes = (
  w: Work,
  direction: Direction,
  side: MSide,
  chunk: Uint8Array,
  start: number,
  end: number
): void => {
  let j = start
  while (j < end && !w.failed) {
    w.at = j
    if (!side.inMessage) {
      if (side.handshakeHeader.length === 0) side.messageStart = w.base + j
      const take = Math.min(4 - side.handshakeHeader.length, end - j)
      side.handshakeHeader = [...side.handshakeHeader, ...chunk.subarray(j, j + take)]
      j += take
      if (side.handshakeHeader.length === 4) startMessage(w, direction, side)
      continue
    }
    const take = Math.min(side.messageLeft, end - j)
    // A copy: the relay may reuse its buffer once we return.
    if (side.keep) side.kept = [...side.kept, new Uint8Array(chunk.subarray(j, j + take))]
    j += take
    side.messageLeft -= take
    if (side.messageLeft === 0) endMessage(w, direction, side)
  }
}

const startMessage = (w: Work, direction: Direction, side: MSide): void => {
  const [type, a, b, c] = side.handshakeHeader
  const length = (a << 16) | (b << 8) | c
  side.handshakeHeader = []
  side.messageType = type
  side.messageLeft = length
  side.keep = type === (direction === "up" ? CLIENT_HELLO : SERVER_HELLO)
  side.kept = []
  if (side.keep && length > HELLO_LIMIT) return fail(w, "Handshake", `${helloName(type)} of ${length} bytes is too long`, side.messageStart)
  side.inMessage = true
  if (length === 0) endMessage(w, direction, side)
}

const endMessage = (w: Work, direction: Direction, side: MSide): void => {
  side.inMessage = false
  if (!side.keep) return
  const body = concat(side.kept)
  side.keep = false
  side.kept = []
  const result = direction === "up" ? readClientHello(body) : readServerHello(body)
  if (typeof result === "string") return fail(w, "Hello", result, side.messageStart)
  w.events.push(result.hello)
  if (result.tls13) w.tls13 = true
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => (parts.length === 1 ? parts[0] : Buffer.concat(parts))

const helloName = (type: number): string => (type === CLIENT_HELLO ? "ClientHello" : "ServerHello")

// --- the hellos ---

/** What went wrong first in a hello, shared by a reader and the readers made from it. */
interface Failure {
  detail: string | undefined
}

/**
 * Reads a hello body. Nothing throws: running past a boundary, or a field that cannot be,
 * records the first failure and leaves the reader empty, so that the rest of the parse reads
 * zeros and ends; `guard` then gives the failure instead of the hello.
 */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    readonly end: number,
    readonly what: string,
    readonly failure: Failure
  ) {}
  get left(): number {
    return this.end - this.at
  }
  u8(): number {
    return this.need(1) ? this.bytes[this.at++] : 0
  }
  u16(): number {
    if (!this.need(2)) return 0
    const v = (this.bytes[this.at] << 8) | this.bytes[this.at + 1]
    this.at += 2
    return v
  }
  take(n: number): Uint8Array {
    if (!this.need(n)) return this.bytes.subarray(0, 0)
    const out = this.bytes.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
  /** A sub-reader over the next `n` bytes, which this reader skips. */
  sub(n: number, what: string): Reader {
    const start = this.at
    const ok = this.need(n)
    this.at = ok ? start + n : this.at
    return new Reader(this.bytes, start, ok ? start + n : start, what, this.failure)
  }
  need(n: number): boolean {
    if (n <= this.left) return true
    this.fail(`${this.what} is truncated`)
    return false
  }
  done(): void {
    if (this.left !== 0) this.fail(`${this.what} has ${this.left} extra bytes`)
  }
  /** Records the first failure and empties this reader. */
  fail(detail: string): void {
    this.failure.detail ??= detail
    this.at = this.end
  }
}

/** What a hello says, and whether it settles on TLS 1.3. */
interface Hello {
  readonly hello: TlsClientHello | TlsServerHello
  readonly tls13: boolean
}

/** The hello, or what is malformed in it. */
const guard = (what: string, body: Uint8Array, parse: (r: Reader) => Hello): Hello | string => {
  const failure: Failure = { detail: undefined }
  const hello = parse(new Reader(body, 0, body.length, what, failure))
  return failure.detail === undefined ? hello : `malformed ${what}: ${failure.detail}`
}

interface Extension {
  readonly type: number
  readonly data: Reader
}

/** The extensions block, if any: it is optional at the end of both hellos. */
const readExtensions = (r: Reader): ReadonlyArray<Extension> => {
  if (r.left === 0) return []
  const block = r.sub(r.u16(), "extensions")
  r.done()
  const out: Array<Extension> = []
  while (block.left > 0) {
    const type = block.u16()
    out.push({ type, data: block.sub(block.u16(), `extension ${type}`) })
  }
  return out
}

const readClientHello = (body: Uint8Array): Hello | string =>
  guard("ClientHello", body, (r) => {
    const legacyVersion = r.u16()
    r.take(32)
    const sessionId = r.u8()
    if (sessionId > 32) r.fail(`session id of ${sessionId} bytes`)
    r.take(sessionId)
    const suites = r.u16()
    if (suites === 0 || suites % 2 !== 0) r.fail(`cipher suites of ${suites} bytes`)
    r.take(suites)
    const compression = r.u8()
    if (compression === 0) r.fail("no compression methods")
    r.take(compression)
    let names: Array<string> = []
    let alpn: Array<string> = []
    let versions: Array<number> = [legacyVersion]
    for (const { data, type } of readExtensions(r)) {
      if (type === EXT_SERVER_NAME) names = readServerNames(data)
      else if (type === EXT_ALPN) alpn = readAlpn(data)
      else if (type === EXT_SUPPORTED_VERSIONS) versions = readVersionList(data)
    }
    const hello: TlsClientHello = {
      type: "TlsClientHello",
      sni: names.length > 0 ? names.join(",") : null,
      alpn,
      versions: versions.filter((v) => !isGrease(v)).map(versionName)
    }
    return { hello, tls13: false }
  })

const readServerHello = (body: Uint8Array): Hello | string =>
  guard("ServerHello", body, (r) => {
    const legacyVersion = r.u16()
    const random = toHex(r.take(32))
    const sessionId = r.u8()
    if (sessionId > 32) r.fail(`session id of ${sessionId} bytes`)
    r.take(sessionId)
    const suite = r.u16()
    r.u8()
    let version = legacyVersion
    let alpn: string | undefined
    for (const { data, type } of readExtensions(r)) {
      if (type === EXT_SUPPORTED_VERSIONS) {
        version = data.u16()
        data.done()
      } else if (type === EXT_ALPN) {
        const chosen = readAlpn(data)
        if (chosen.length !== 1) data.fail(`ALPN with ${chosen.length} protocols`)
        alpn = chosen[0]
      }
    }
    const hello: TlsServerHello = {
      type: "TlsServerHello",
      tlsVersion: versionName(version),
      cipher: cipherName(suite),
      // TLS 1.3 sends ALPN in EncryptedExtensions, which we cannot see.
      alpn: alpn !== undefined && version !== 0x0304 ? alpn : null,
      helloRetryRequest: random === HELLO_RETRY_RANDOM
    }
    return { hello, tls13: version === 0x0304 }
  })

const readServerNames = (data: Reader): Array<string> => {
  const list = data.sub(data.u16(), "server_name list")
  data.done()
  const names: Array<string> = []
  while (list.left > 0) {
    const type = list.u8()
    const name = list.take(list.u16())
    if (type === 0) names.push(printable(name))
  }
  return names
}

const readAlpn = (data: Reader): Array<string> => {
  const list = data.sub(data.u16(), "ALPN list")
  data.done()
  const names: Array<string> = []
  while (list.left > 0) {
    const length = list.u8()
    if (length === 0) list.fail("empty ALPN protocol name")
    else names.push(printable(list.take(length)))
  }
  return names
}

const readVersionList = (data: Reader): Array<number> => {
  const length = data.u8()
  if (length % 2 !== 0) data.fail(`supported_versions of ${length} bytes`)
  const list = data.sub(length, "supported_versions")
  data.done()
  const versions: Array<number> = []
  while (list.left > 0) versions.push(list.u16())
  return versions
}

// --- names ---

/** GREASE (RFC 8701): 0x0a0a, 0x1a1a, … 0xfafa, sent to keep peers tolerant. */
const isGrease = (v: number): boolean => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff)

const VERSION_NAMES: Record<number, string> = {
  0x0300: "SSL 3.0",
  0x0301: "TLS 1.0",
  0x0302: "TLS 1.1",
  0x0303: "TLS 1.2",
  0x0304: "TLS 1.3"
}

const versionName = (v: number): string => VERSION_NAMES[v] ?? hex16(v)

const CIPHER_NAMES: Record<number, string> = {
  0x1301: "TLS_AES_128_GCM_SHA256",
  0x1302: "TLS_AES_256_GCM_SHA384",
  0x1303: "TLS_CHACHA20_POLY1305_SHA256",
  0xc02b: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  0xc02c: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  0xc02f: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  0xc030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  0xcca8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
  0xcca9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  0xc013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
  0xc014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
  0x009c: "TLS_RSA_WITH_AES_128_GCM_SHA256",
  0x009d: "TLS_RSA_WITH_AES_256_GCM_SHA384",
  0x002f: "TLS_RSA_WITH_AES_128_CBC_SHA",
  0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA"
}

/** `TLS_AES_128_GCM_SHA256 (0x1301)` for the common suites, else `0x1234`. */
const cipherName = (suite: number): string => {
  const name = CIPHER_NAMES[suite]
  return name === undefined ? hex16(suite) : `${name} (${hex16(suite)})`
}

const hex16 = (n: number): string => `0x${n.toString(16).padStart(4, "0")}`
const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

/** Host and protocol names as text when they are printable ASCII, else as hex. */
const printable = (bytes: Uint8Array): string =>
  bytes.every((b) => b >= 0x21 && b <= 0x7e) ? String.fromCharCode(...bytes) : `0x${toHex(bytes)}`
