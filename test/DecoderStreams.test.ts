/**
 * The decoders as Stream transformations: the same events whatever `Stream.rechunk(n)`
 * does to the bytes, and each decoder's typed parse error in the error channel, where
 * `Effect.catchTag` finds it with its reason and offset.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { decodeHttp, decodeSocks, decodeTls, type DirectedBytes } from "../src/domain/DecoderStreams.js"
import type { DecoderEvent, Direction } from "../src/domain/Event.js"

const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))

/** One direction's bytes, cut into chunks of `n` by `Stream.rechunk`. */
const bytesIn = (direction: Direction, bytes: Uint8Array, n: number): Stream.Stream<DirectedBytes> =>
  Stream.fromIterable(bytes).pipe(
    Stream.rechunk(n),
    Stream.mapChunks((chunk) => Chunk.of([direction, Uint8Array.from(chunk)] as const))
  )

const plainBytes = (bytes: Uint8Array, n: number): Stream.Stream<Uint8Array> =>
  Stream.fromIterable(bytes).pipe(Stream.rechunk(n), Stream.mapChunks((chunk) => Chunk.of(Uint8Array.from(chunk))))

/** The events without where each request began in its chunk, which depends on the split. */
const splitFree = (events: Iterable<DecoderEvent>) =>
  Array.from(events, (event) => {
    if (event.type !== "HttpRequestStart") return event
    const { offset: _offset, ...rest } = event
    return rest
  })

const splits = [1, 2, 3, 5, 7, 13, 64, 4096]

describe("decoders as Stream transformations", () => {
  it.effect("HTTP: keep-alive request/response pairs decode to the same events for every rechunking", () =>
    Effect.gen(function*() {
      const up = latin1("GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
      const down = latin1("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.0 201 Created\r\n\r\nbody until close")
      const results = yield* Effect.forEach(splits, (n) =>
        Stream.runCollect(decodeHttp(Stream.concat(bytesIn("up", up, n), bytesIn("down", down, n)))).pipe(Effect.map(splitFree)))
      for (const result of results) expect(result).toEqual(results[0])
      expect(results[0].map((e) => ("exchange" in e ? `${e.type} ${e.exchange}` : e.type))).toEqual([
        "HttpRequestStart 0", "HttpRequestEnd 0", "HttpRequestStart 1", "HttpRequestEnd 1",
        "HttpResponseStart 0", "HttpResponseEnd 0", "HttpResponseStart 1", "HttpResponseEnd 1"
      ])
      // The body delimited by close ends with the stream.
      expect(results[0].at(-1)).toEqual({ type: "HttpResponseEnd", exchange: 1, bodyBytes: 16 })
    }))

  it.effect("HTTP: a parse error fails the stream with HttpParseError (reason, offset), the same for every rechunking", () =>
    Effect.gen(function*() {
      const up = latin1("GET / HTTP/1.1\r\n\r\n")
      const down = latin1("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")
      for (const n of splits) {
        const caught = yield* Stream.runCollect(decodeHttp(Stream.concat(bytesIn("up", up, n), bytesIn("down", down, n)))).pipe(
          Effect.map(() => undefined),
          Effect.catchTag("HttpParseError", (error) => Effect.succeed(error))
        )
        expect(caught).toMatchObject({ _tag: "HttpParseError", reason: "HeaderLine", offset: 17, message: "invalid header line 2" })
      }
    }))

  it.effect("TLS: the first application data each way, and a bad record fails with TlsParseError at its offset", () =>
    Effect.gen(function*() {
      const appData = Uint8Array.of(23, 3, 3, 0, 2, 0xaa, 0xbb)
      const events = yield* Stream.runCollect(decodeTls(Stream.concat(bytesIn("up", appData, 3), bytesIn("down", appData, 1))))
      expect(Chunk.toReadonlyArray(events)).toEqual([
        { type: "TlsApplicationData", direction: "up" },
        { type: "TlsApplicationData", direction: "down" }
      ])
      const ccs = Uint8Array.of(20, 3, 3, 0, 1, 1)
      for (const n of splits) {
        const bad = bytesIn("up", Uint8Array.from([...ccs, 99, 3, 3, 0, 1, 0]), n)
        const caught = yield* Stream.runDrain(decodeTls(bad)).pipe(
          Effect.map(() => undefined),
          Effect.catchTag("TlsParseError", (error) => Effect.succeed(error))
        )
        expect(caught).toMatchObject({ _tag: "TlsParseError", reason: "Record", offset: ccs.length })
      }
    }))

  it.effect("SOCKS: the replies, then the request; a refused request gives its reply, then fails with SocksParseError", () =>
    Effect.gen(function*() {
      const handshake = Uint8Array.from([0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 4, ...latin1("a.io"), 0x00, 0x50, ...latin1("GET")])
      for (const n of splits) {
        const steps = Chunk.toReadonlyArray(yield* Stream.runCollect(decodeSocks(plainBytes(handshake, n))))
        expect(steps.map((step) => step._tag)).toEqual(["Reply", "Request"])
        const request = steps[1]
        expect(request._tag === "Request" && [request.request.host, request.request.port]).toEqual(["a.io", 80])
      }
      const socks4BadCommand = Uint8Array.of(0x04, 0x09, 0x00, 0x50, 127, 0, 0, 1, 0x00)
      const replies: Array<Uint8Array> = []
      const caught = yield* Stream.runForEach(decodeSocks(plainBytes(socks4BadCommand, 2)), (step) =>
        Effect.sync(() => {
          if (step._tag === "Reply") replies.push(step.bytes)
        })).pipe(
          Effect.map(() => undefined),
          Effect.catchTag("SocksParseError", (error) => Effect.succeed(error))
        )
      expect(caught).toMatchObject({ _tag: "SocksParseError", reason: "BadRequest", offset: 0 })
      expect(replies.map((reply) => reply[1])).toEqual([0x5b])
    }))
})
