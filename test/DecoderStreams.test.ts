/**
 * The decoders as Stream transformations: the same events whatever `Stream.rechunk(n)`
 * does to the bytes, and each decoder's typed parse error in the error channel, where
 * `Effect.catchTag` finds it with its reason and offset.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Stream } from "effect"
import * as fc from "fast-check"
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

  describe("on any bytes, cut anywhere (property)", () => {
    /** Bytes cut at the given points (taken modulo the length), as a stream of chunks. */
    const cutStream = <A>(bytes: Uint8Array, cuts: ReadonlyArray<number>, wrap: (chunk: Uint8Array) => A): Stream.Stream<A> => {
      const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
      const chunks: Array<A> = []
      let from = 0
      for (const point of [...points, bytes.length]) {
        if (point > from) chunks.push(wrap(bytes.subarray(from, point)))
        from = Math.max(from, point)
      }
      return Stream.fromIterable(chunks)
    }

    /** What a decoder stream ends with: its output, or its typed error; a defect (a throw) fails the test. */
    const outcome = <A, E>(stream: Stream.Stream<A, E>) =>
      Effect.runSyncExit(Stream.runCollect(stream).pipe(Effect.either)).pipe((exit) => {
        if (Exit.isFailure(exit)) throw new Error(`the decoder stream died: ${String(exit.cause)}`)
        return Either.map(exit.value, (items) => Chunk.toReadonlyArray(items))
      })

    /** Valid messages of each protocol, mutated, or plain random bytes. */
    const seeds = {
      http: [latin1("GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")],
      tls: [Uint8Array.of(22, 3, 1, 0, 9, 1, 0, 0, 5, 3, 3, 0, 0, 0, 20, 3, 3, 0, 1, 1, 23, 3, 3, 0, 2, 0xaa, 0xbb)],
      socks: [Uint8Array.from([5, 1, 0, 5, 1, 0, 3, 4, ...latin1("a.io"), 0, 80]), Uint8Array.of(4, 1, 0, 80, 127, 0, 0, 1, 0)]
    }
    const bytesOf = (kind: keyof typeof seeds) =>
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.tuple(fc.constantFrom(...seeds[kind]), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
          .map(([seed, edits]) => {
            const bytes = Uint8Array.from(seed)
            for (const [at, value] of edits) bytes[at % bytes.length] = value
            return bytes
          })
      )
    const cuts = fc.array(fc.nat(), { maxLength: 12 })

    it("HTTP (the same bytes as both directions): never dies, and the outcome does not depend on the cuts", () => {
      fc.assert(fc.property(bytesOf("http"), cuts, cuts, (bytes, a, b) => {
        const run = (points: ReadonlyArray<number>) =>
          Either.map(
            outcome(decodeHttp(Stream.concat(
              cutStream(bytes, points, (chunk): DirectedBytes => ["up", chunk]),
              cutStream(bytes, points, (chunk): DirectedBytes => ["down", chunk])
            ))),
            splitFree
          )
        expect(run(a)).toEqual(run(b))
      }), { numRuns: 300 })
    })

    it("TLS: never dies, and the outcome does not depend on the cuts", () => {
      fc.assert(fc.property(bytesOf("tls"), cuts, cuts, (bytes, a, b) => {
        const run = (points: ReadonlyArray<number>) => outcome(decodeTls(cutStream(bytes, points, (chunk): DirectedBytes => ["up", chunk])))
        expect(run(a)).toEqual(run(b))
      }), { numRuns: 300 })
    })

    it("SOCKS: never dies; a request or a typed refusal, the same whatever the cuts", () => {
      fc.assert(fc.property(bytesOf("socks"), cuts, cuts, (bytes, a, b) => {
        const run = (points: ReadonlyArray<number>) =>
          Either.map(outcome(decodeSocks(cutStream(bytes, points, (chunk) => chunk))), (steps) =>
            // The request's bytes after the handshake are split-dependent only in how they were cut.
            steps.map((step) => (step._tag === "Request" ? { _tag: step._tag, request: step.request } : step)))
        expect(run(a)).toEqual(run(b))
      }), { numRuns: 300 })
    })
  })
})
