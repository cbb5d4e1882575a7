/**
 * `npm run fuzz`: a long fuzz run of the pure decoders (SOCKS server
 * handshake, HTTP/1.x both directions, protocol sniffing, and the connection
 * observer that combines them). Inputs are random bytes and mutations of
 * valid messages, fed in random chunk splits. Any exception fails the run;
 * so does a valid message whose events depend on how it was split. Every
 * `--stream-every`th input also goes through the decoders' Stream forms
 * (`decodeHttp`, `decodeSocks`) after `Stream.rechunk(n)` for a random n: their
 * events, and their typed error in the error channel, must be what feeding the
 * state machines directly gives.
 *
 *   npm run fuzz -- [--inputs 1000000] [--seed 42] [--stream-every 25]
 */
import { Chunk, Effect, Either, Stream } from "effect"
import { decodeHttp, decodeSocks, type DirectedBytes } from "../src/domain/DecoderStreams.js"
import { endHttp, feedHttp, initialHttpDecoder } from "../src/domain/HttpDecoder.js"
import { sniffProtocol } from "../src/domain/ProtocolSniffer.js"
import { feedSocksServer, initialSocksServer } from "../src/domain/SocksProtocol.js"
import { type DecoderEvent, type Direction } from "../src/domain/Event.js"
import { observe } from "../src/layers/ProtocolDecoder.js"

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name)
  return index < 0 ? fallback : Number(process.argv[index + 1])
}
const inputs = argument("--inputs", 1_000_000)
const streamEvery = argument("--stream-every", 25)
let seed = argument("--seed", 42) >>> 0

/** xorshift32: a fixed seed gives the same run every time. */
const random = () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 4294967296
}
const int = (max: number) => Math.floor(random() * max)

const valid: Array<{ readonly kind: "socks" | "http-up" | "http-down"; readonly bytes: Uint8Array }> = [
  { kind: "socks", bytes: Buffer.from([5, 1, 0, 5, 1, 0, 3, 11, ...Buffer.from("example.com"), 0, 80]) },
  { kind: "socks", bytes: Buffer.from([5, 2, 0, 2, 1, 4, ...Buffer.from("user"), 5, ...Buffer.from("nonce"), 5, 1, 0, 1, 127, 0, 0, 1, 1, 187]) },
  { kind: "socks", bytes: Buffer.from([5, 1, 0, 5, 0xf0, 0, 4, ...new Array(15).fill(0), 1, 0, 0]) },
  { kind: "socks", bytes: Buffer.from([4, 1, 0, 80, 0, 0, 0, 1, ...Buffer.from("id\0example.org\0")]) },
  { kind: "http-up", bytes: Buffer.from("GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello") },
  { kind: "http-up", bytes: Buffer.from("PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nTrailer: t\r\n\r\n") },
  { kind: "http-down", bytes: Buffer.from("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n") },
  { kind: "http-down", bytes: Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") }
]

const mutate = (bytes: Uint8Array): Uint8Array => {
  const out = Buffer.from(bytes)
  const edits = 1 + int(4)
  let result: Buffer = out
  for (let i = 0; i < edits; i++) {
    const at = int(result.length + 1)
    switch (int(4)) {
      case 0:
        if (at < result.length) result[at] = int(256)
        break
      case 1:
        result = Buffer.concat([result.subarray(0, at), Buffer.from([int(256)]), result.subarray(at)])
        break
      case 2:
        result = Buffer.concat([result.subarray(0, at), result.subarray(at + 1 + int(8))])
        break
      case 3:
        result = Buffer.concat([result, result.subarray(0, int(result.length))])
        break
    }
  }
  return result
}

const randomBytes = () => {
  const out = Buffer.alloc(int(300))
  for (let i = 0; i < out.length; i++) out[i] = int(256)
  return out
}

const splits = (bytes: Uint8Array): Array<Uint8Array> => {
  const pieces: Array<Uint8Array> = []
  for (let at = 0; at < bytes.length;) {
    const size = 1 + int(Math.min(bytes.length - at, int(3) === 0 ? 3 : 64))
    pieces.push(bytes.subarray(at, at + size))
    at += size
  }
  return pieces
}

/** Where a request began in its chunk depends on the split; everything else must not. */
const splitFree = (event: DecoderEvent): string => {
  if (event.type !== "HttpRequestStart") return JSON.stringify(event)
  const { offset: _offset, ...rest } = event
  return JSON.stringify(rest)
}

/** The error as the stream's error channel and a DecodeError event both tell it. */
const errorKey = (error: { readonly _tag: string; readonly reason: string; readonly offset: number | null }) =>
  `${error._tag}:${error.reason}@${error.offset}`

/** Responses need requests: five GETs go up first. */
const fiveGets = Buffer.from("GET / HTTP/1.1\r\n\r\n".repeat(5))

/** HTTP fed directly, as `decodeHttp` sees it: the events before the first DecodeError, and that error. */
const httpDirect = (direction: Direction, pieces: ReadonlyArray<Uint8Array>) => {
  let state = initialHttpDecoder
  const events: Array<DecoderEvent> = []
  const feed = (side: Direction, bytes: Uint8Array) => {
    const [next, out] = feedHttp(state, side, bytes)
    state = next
    events.push(...out)
  }
  if (direction === "down") feed("up", fiveGets)
  for (const piece of pieces) feed(direction, piece)
  for (const side of ["up", "down"] as const) {
    const [next, out] = endHttp(state, side)
    state = next
    events.push(...out)
  }
  const failed = events.findIndex((event) => event.type === "DecodeError")
  const failure = failed < 0 ? undefined : events[failed]
  return {
    events: (failed < 0 ? events : events.slice(0, failed)).map(splitFree),
    error: failure?.type === "DecodeError" ? errorKey(failure.error) : undefined
  }
}

/** Bytes cut into chunks of `n` by `Stream.rechunk`. */
const rechunked = (bytes: Uint8Array, n: number): Stream.Stream<Uint8Array> =>
  Stream.fromIterable(bytes).pipe(Stream.rechunk(n), Stream.mapChunks((chunk) => Chunk.of(Uint8Array.from(chunk))))

/** The same bytes through `decodeHttp`, cut by `Stream.rechunk(n)`. */
const httpStream = (direction: Direction, bytes: Uint8Array, n: number) => {
  const directed = (side: Direction, data: Uint8Array): Stream.Stream<DirectedBytes> =>
    Stream.map(rechunked(data, n), (chunk) => [side, chunk] as const)
  const input = direction === "down" ? Stream.concat(directed("up", fiveGets), directed("down", bytes)) : directed("up", bytes)
  const events: Array<string> = []
  const result = Effect.runSync(Effect.either(Stream.runForEach(decodeHttp(input), (event) => Effect.sync(() => events.push(splitFree(event))))))
  return { events, error: Either.isLeft(result) ? errorKey(result.left) : undefined }
}

const replyText = (bytes: Uint8Array) => `Reply:${Buffer.from(bytes).toString("hex")}`
const requestText = ({ request }: { readonly request: { readonly host: string; readonly port: number } }) =>
  `Request:${request.host}:${request.port}`

/** SOCKS fed directly, as `decodeSocks` ends it: replies up to the request, or to the refusal and its error. */
const socksDirect = (pieces: ReadonlyArray<Uint8Array>) => {
  let state = initialSocksServer
  const steps: Array<string> = []
  for (const piece of pieces) {
    const [next, out] = feedSocksServer(state, piece)
    state = next
    for (const step of out) {
      if (step._tag === "Reply") steps.push(replyText(step.bytes))
      else if (step._tag === "Request") return { steps: [...steps, requestText(step)], error: undefined }
      else {
        if (step.reply !== undefined) steps.push(replyText(step.reply))
        return { steps, error: errorKey(step.error) }
      }
    }
  }
  return { steps, error: undefined }
}

const socksStream = (bytes: Uint8Array, n: number) => {
  const steps: Array<string> = []
  const result = Effect.runSync(Effect.either(Stream.runForEach(decodeSocks(rechunked(bytes, n)), (step) =>
    Effect.sync(() => steps.push(step._tag === "Reply" ? replyText(step.bytes) : requestText(step))))))
  return { steps, error: Either.isLeft(result) ? errorKey(result.left) : undefined }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

const started = process.hrtime.bigint()
let splitChecks = 0
let streamChecks = 0
for (let n = 1; n <= inputs; n++) {
  const base = valid[int(valid.length)]
  const choice = int(3)
  const bytes = choice === 0 ? randomBytes() : choice === 1 ? mutate(base.bytes) : base.bytes
  const pieces = splits(bytes)
  const kind = choice === 0 ? (["socks", "http-up", "http-down"] as const)[int(3)] : base.kind
  try {
    if (kind === "socks") {
      const whole = socksDirect([bytes])
      if (choice === 2 && !same(socksDirect(pieces), whole)) throw new Error(`split changed the SOCKS steps: ${JSON.stringify(whole)}`)
    } else {
      const direction = kind === "http-up" ? "up" : "down"
      const whole = httpDirect(direction, [bytes])
      const split = httpDirect(direction, pieces)
      if (choice === 2 && !same(split, whole)) throw new Error(`split changed the HTTP events:\n${JSON.stringify(whole)}\n${JSON.stringify(split)}`)
      if (choice === 2) splitChecks++
    }
    if (n % streamEvery === 0) {
      const size = 1 + int(64)
      if (kind === "socks") {
        const direct = socksDirect(pieces)
        const streamed = socksStream(bytes, size)
        if (!same(direct, streamed)) throw new Error(`decodeSocks after rechunk(${size}) differs:\n${JSON.stringify(direct)}\n${JSON.stringify(streamed)}`)
      } else {
        const direction = kind === "http-up" ? "up" : "down"
        const direct = httpDirect(direction, pieces)
        const streamed = httpStream(direction, bytes, size)
        if (!same(direct, streamed)) throw new Error(`decodeHttp after rechunk(${size}) differs:\n${JSON.stringify(direct)}\n${JSON.stringify(streamed)}`)
      }
      streamChecks++
    }
    sniffProtocol(bytes.subarray(0, 24))
    const observer = observe()
    for (const piece of pieces) observer.feed(int(4) === 0 ? "down" : "up", piece)
    observer.end("up")
    observer.end("down")
  } catch (error) {
    console.error(`fuzz: input ${n} (seed ${argument("--seed", 42)}, ${kind}) failed: ${error instanceof Error ? error.stack : error}`)
    console.error(`bytes: ${Buffer.from(bytes).toString("hex")}`)
    process.exit(1)
  }
  if (n % 200_000 === 0) console.log(`fuzz: ${n} inputs`)
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9
console.log(
  `fuzz: ${inputs} inputs (${splitChecks} split checks of valid HTTP, ${streamChecks} through the Stream forms) in ${seconds.toFixed(1)} s, ` +
    "no exception, no split-dependent result"
)
