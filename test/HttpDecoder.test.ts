import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type DecoderEvent, detailOf, type Direction, type EventType } from "../src/domain/Event.js"
import {
  endHttp,
  feedHttp,
  httpDecoderMode,
  type HttpDecoderState,
  initialHttpDecoder
} from "../src/domain/HttpDecoder.js"

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

type Step = readonly [Direction, string | Uint8Array] | readonly ["end", Direction]

/** An event as its log line shows it: the type, the display text made from its fields, the header lines. */
interface Seen {
  readonly type: EventType
  readonly detail: string
  readonly headers?: ReadonlyArray<string>
}

const seen = (event: DecoderEvent): Seen =>
  "headers" in event
    ? { type: event.type, detail: detailOf(event), headers: event.headers }
    : { type: event.type, detail: detailOf(event) }

const seenAll = (events: ReadonlyArray<DecoderEvent>): Array<Seen> => events.map(seen)

/** The typed events without where each request began in its chunk, which depends on the split. */
const splitFree = (events: ReadonlyArray<DecoderEvent>) =>
  events.map((event) => {
    if (event.type !== "HttpRequestStart") return event
    const { offset: _offset, ...rest } = event
    return rest
  })

/** Feeds the steps in order; returns every event as seen, the typed ones, and the final state. */
const run = (...steps: ReadonlyArray<Step>) => {
  let state: HttpDecoderState = initialHttpDecoder
  const typed: Array<DecoderEvent> = []
  for (const step of steps) {
    const [next, out] =
      step[0] === "end"
        ? endHttp(state, step[1] as Direction)
        : feedHttp(state, step[0], typeof step[1] === "string" ? latin1(step[1]) : step[1])
    state = next
    typed.push(...out)
  }
  return { events: seenAll(typed), typed, state, mode: httpDecoderMode(state) }
}

const requestStart = (detail: string, ...headers: Array<string>): Seen => ({
  type: "HttpRequestStart",
  detail,
  headers
})
const requestEnd = (n: number): Seen => ({ type: "HttpRequestEnd", detail: `${n} bytes` })
const responseStart = (detail: string, ...headers: Array<string>): Seen => ({
  type: "HttpResponseStart",
  detail,
  headers
})
const responseEnd = (n: number): Seen => ({ type: "HttpResponseEnd", detail: `${n} bytes` })
const decodeError = (detail: string): Seen => ({ type: "DecodeError", detail: `HttpParseError: ${detail}` })

const GET = "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"
const OK_HELLO = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

describe("HttpDecoder", () => {
  describe("messages and framing", () => {
    it("a GET and its 200 with Content-Length give start and end events with the body length", () => {
      const { events, mode } = run(["up", GET], ["down", OK_HELLO])
      expect(events).toEqual([
        requestStart("GET / HTTP/1.1", "Host: example.com", "Accept: */*"),
        requestEnd(0),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 5"),
        responseEnd(5)
      ])
      expect(mode).toBe("decoding")
    })

    it("keep-alive: request, response, request, response on one connection", () => {
      const { events } = run(
        ["up", "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"],
        ["down", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"],
        ["up", "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"],
        ["down", "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnot"]
      )
      expect(events).toEqual([
        requestStart("GET /a HTTP/1.1", "Host: h"),
        requestEnd(0),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 2"),
        responseEnd(2),
        requestStart("GET /b HTTP/1.1", "Host: h"),
        requestEnd(0),
        responseStart("HTTP/1.1 404 Not Found", "Content-Length: 3"),
        responseEnd(3)
      ])
    })

    it("pipelining: three requests in one chunk, then three responses in one chunk, matched in order", () => {
      const { events } = run(
        ["up", "GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"],
        [
          "down",
          "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na" +
          "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" +
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nccc"
        ]
      )
      expect(events).toEqual([
        requestStart("GET /1 HTTP/1.1"),
        requestEnd(0),
        requestStart("HEAD /2 HTTP/1.1"),
        requestEnd(0),
        requestStart("GET /3 HTTP/1.1"),
        requestEnd(0),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 1"),
        responseEnd(1),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 1000"),
        responseEnd(0),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 3"),
        responseEnd(3)
      ])
    })

    it("a POST body by Content-Length ends at its last byte, even split over chunks", () => {
      const { events } = run(
        ["up", "POST /form HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello"],
        ["up", " wor"],
        ["up", "ld"]
      )
      expect(events).toEqual([requestStart("POST /form HTTP/1.1", "Content-Length: 11"), requestEnd(11)])
    })

    it("the request end waits for the last body byte", () => {
      const { events } = run(["up", "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhell"])
      expect(events).toEqual([requestStart("PUT /x HTTP/1.1", "Content-Length: 5")])
    })

    it("a chunked request with extensions and trailers counts only the chunk data", () => {
      const { events } = run([
        "up",
        "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5;name=value\r\nhello\r\n" +
        "A ; quoted=\"a;b\"\r\n0123456789\r\n" +
        "0;last\r\nChecksum: abc\r\nOther: x\r\n\r\n"
      ])
      expect(events).toEqual([requestStart("POST /up HTTP/1.1", "Transfer-Encoding: chunked"), requestEnd(15)])
    })

    it("a chunked response decodes the same split byte by byte, and the next message follows", () => {
      const response = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
        "3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nTrailer-A: 1\r\n\r\n"
      const steps: Array<Step> = [["up", GET], ["up", GET]]
      for (const c of response + OK_HELLO) steps.push(["down", c])
      const { events } = run(...steps)
      expect(events.filter((e) => e.type.startsWith("HttpResponse"))).toEqual([
        responseStart("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"),
        responseEnd(19),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 5"),
        responseEnd(5)
      ])
    })

    it("Transfer-Encoding chunked wins over Content-Length", () => {
      const { events } = run([
        "up",
        "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
      ])
      expect(events.at(-1)).toEqual(requestEnd(2))
    })

    it("a response without Content-Length or chunked ends when the server closes", () => {
      const { events, state } = run(
        ["up", GET],
        ["down", "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nsome"],
        ["down", " body"]
      )
      expect(events.at(-1)).toEqual(responseStart("HTTP/1.0 200 OK", "Server: old"))
      const [, atClose] = endHttp(state, "down")
      expect(seenAll(atClose)).toEqual([responseEnd(9)])
    })

    it("a HEAD response has no body, so the next response on the connection is decoded", () => {
      const { events } = run(
        ["up", "HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"],
        ["down", "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"],
        ["down", OK_HELLO]
      )
      expect(events.slice(4)).toEqual([
        responseStart("HTTP/1.1 200 OK", "Content-Length: 5000"),
        responseEnd(0),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 5"),
        responseEnd(5)
      ])
    })

    it("100 Continue is informational; the real response for the same request follows", () => {
      const { events } = run(
        ["up", "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"],
        ["down", "HTTP/1.1 100 Continue\r\n\r\n"],
        ["up", "ok"],
        ["down", "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]
      )
      expect(events).toEqual([
        requestStart("POST / HTTP/1.1", "Expect: 100-continue", "Content-Length: 2"),
        { type: "HttpInformational", detail: "HTTP/1.1 100 Continue", headers: [] },
        requestEnd(2),
        responseStart("HTTP/1.1 201 Created", "Content-Length: 0"),
        responseEnd(0)
      ])
    })

    it("204 and 304 have no body even with a Content-Length", () => {
      const { events } = run(
        ["up", GET + GET + GET],
        [
          "down",
          "HTTP/1.1 204 No Content\r\n\r\n" +
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 77\r\n\r\n" +
          OK_HELLO
        ]
      )
      expect(events.slice(6)).toEqual([
        responseStart("HTTP/1.1 204 No Content"),
        responseEnd(0),
        responseStart("HTTP/1.1 304 Not Modified", "Content-Length: 77"),
        responseEnd(0),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 5"),
        responseEnd(5)
      ])
    })

    it("the end event's detail is the decoded body length", () => {
      const { events } = run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345"])
      expect(events.at(-1)).toEqual({ type: "HttpResponseEnd", detail: "5 bytes" })
    })

    it("bare LF line endings are accepted, in headers and chunk framing", () => {
      const { events } = run(
        ["up", "GET / HTTP/1.1\nHost: a\n\n"],
        ["down", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n2\nhi\n0\n\n"]
      )
      expect(events).toEqual([
        requestStart("GET / HTTP/1.1", "Host: a"),
        requestEnd(0),
        responseStart("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
        responseEnd(2)
      ])
    })

    it("empty lines before a request line are ignored", () => {
      const { events } = run(["up", "\r\n\r\n" + GET])
      expect(events[0]).toEqual(requestStart("GET / HTTP/1.1", "Host: example.com", "Accept: */*"))
    })

    it("a request line split byte by byte gives one start event once the headers are complete", () => {
      const steps: Array<Step> = Array.from(GET, (c) => ["up", c] as const)
      const { events } = run(...steps)
      expect(events).toEqual([requestStart("GET / HTTP/1.1", "Host: example.com", "Accept: */*"), requestEnd(0)])
    })

    it("feeding the same state twice gives the same result (the state is a value)", () => {
      const { state } = run(["up", "GET / HTTP/1.1\r\nHo"])
      const a = feedHttp(state, "up", latin1("st: x\r\n\r\n"))
      const b = feedHttp(state, "up", latin1("st: y\r\n\r\n"))
      expect(seen(a[1][0])).toEqual(requestStart("GET / HTTP/1.1", "Host: x"))
      expect(seen(b[1][0])).toEqual(requestStart("GET / HTTP/1.1", "Host: y"))
    })
  })

  describe("typed fields", () => {
    it("pipelined requests are numbered 0, 1, 2 and each response, 1xx included, names the request it answers", () => {
      const { typed } = run(
        ["up", "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcHEAD /c HTTP/1.1\r\n\r\n"],
        ["down", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"],
        ["down", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 \r\nContent-Length: 9\r\n\r\n"]
      )
      expect(typed.map((e) => ("exchange" in e ? [e.type, e.exchange] : [e.type]))).toEqual([
        ["HttpRequestStart", 0], ["HttpRequestEnd", 0],
        ["HttpRequestStart", 1], ["HttpRequestEnd", 1],
        ["HttpRequestStart", 2], ["HttpRequestEnd", 2],
        ["HttpResponseStart", 0], ["HttpResponseEnd", 0],
        ["HttpInformational", 1],
        ["HttpResponseStart", 1], ["HttpResponseEnd", 1],
        ["HttpResponseStart", 2], ["HttpResponseEnd", 2]
      ])
      const [get, , post] = typed
      expect(get).toMatchObject({ method: "GET", target: "/a", httpVersion: "HTTP/1.1", offset: 0 })
      expect(post).toMatchObject({ method: "POST", target: "/b", httpVersion: "HTTP/1.0", offset: 19 })
      expect(typed[4]).toMatchObject({ method: "HEAD", offset: 83 })
      expect(typed[3]).toMatchObject({ bodyBytes: 3 })
      expect(typed[8]).toMatchObject({ status: 100, reason: "Continue" })
      expect(typed[11]).toMatchObject({ status: 404, reason: "", httpVersion: "HTTP/1.1" })
      expect(typed[12]).toMatchObject({ bodyBytes: 0 })
    })

    it("a request that began in an earlier chunk is held at the start of the chunk that completes it", () => {
      const { typed } = run(["up", "GET /a HT"], ["up", "TP/1.1\r\n\r\n"])
      expect(typed[0]).toMatchObject({ type: "HttpRequestStart", offset: 0, target: "/a" })
    })

    it("a DecodeError carries the typed error: tag, reason, message and where in the stream it was found", () => {
      const { typed } = run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"])
      expect(typed.at(-1)).toEqual({
        type: "DecodeError",
        error: { _tag: "HttpParseError", reason: "HeaderLine", message: "invalid header line 2", offset: 17 }
      })
    })
  })

  describe("tunnels", () => {
    it("101 Switching Protocols makes a tunnel: no more events in either direction", () => {
      const { events, mode } = run(
        ["up", "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"],
        ["up", "\x81\x05early"],
        ["down", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"],
        ["up", "\x81\x05hello"],
        ["down", "HTTP/1.1 200 OK\r\n\r\n"],
        ["end", "down"]
      )
      expect(events).toEqual([
        requestStart("GET /chat HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade"),
        requestEnd(0),
        responseStart("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket"),
        responseEnd(0)
      ])
      expect(mode).toBe("tunnel")
    })

    it("CONNECT answered 200 makes a tunnel, even when the client sent TLS bytes early", () => {
      const { events, mode } = run(
        ["up", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x02\x00"],
        ["down", "HTTP/1.1 200 Connection established\r\n\r\n"],
        ["up", "\x16\x03\x01 more tls"],
        ["down", "\x16\x03\x03 server hello"]
      )
      expect(events).toEqual([
        requestStart("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"),
        requestEnd(0),
        responseStart("HTTP/1.1 200 Connection established"),
        responseEnd(0)
      ])
      expect(mode).toBe("tunnel")
    })

    it("CONNECT answered 407 keeps decoding, including a request sent before the answer", () => {
      const { events, mode } = run(
        ["up", "CONNECT example.com:443 HTTP/1.1\r\n\r\n"],
        ["up", "GET http://example.com/ HTTP/1.1\r\n\r\n"],
        ["down", "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\nnope"],
        ["down", OK_HELLO]
      )
      expect(events).toEqual([
        requestStart("CONNECT example.com:443 HTTP/1.1"),
        requestEnd(0),
        responseStart("HTTP/1.1 407 Proxy Authentication Required", "Content-Length: 4"),
        requestStart("GET http://example.com/ HTTP/1.1"),
        requestEnd(0),
        responseEnd(4),
        responseStart("HTTP/1.1 200 OK", "Content-Length: 5"),
        responseEnd(5)
      ])
      expect(mode).toBe("decoding")
    })

    it("an Upgrade request answered without 101 keeps decoding", () => {
      const { events, mode } = run(
        ["up", "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"],
        ["down", OK_HELLO],
        ["up", GET],
        ["down", OK_HELLO]
      )
      expect(events.map((e) => e.type)).toEqual([
        "HttpRequestStart",
        "HttpRequestEnd",
        "HttpResponseStart",
        "HttpResponseEnd",
        "HttpRequestStart",
        "HttpRequestEnd",
        "HttpResponseStart",
        "HttpResponseEnd"
      ])
      expect(mode).toBe("decoding")
    })
  })

  describe("decode errors", () => {
    it("a header section over 64 KiB is a DecodeError, and then the decoder is silent", () => {
      const huge = "GET / HTTP/1.1\r\n" + "X-Big: " + "a".repeat(70_000)
      const { events, mode } = run(
        ["up", huge.slice(0, 30_000)],
        ["up", huge.slice(30_000)],
        ["up", "\r\n\r\n" + GET],
        ["down", OK_HELLO],
        ["end", "up"]
      )
      expect(events).toEqual([decodeError("header section over 65536 bytes")])
      expect(mode).toBe("failed")
    })

    it("a header section of exactly 65536 bytes is accepted", () => {
      const start = "GET / HTTP/1.1\r\nX: "
      const head = start + "a".repeat(65536 - start.length - 4) + "\r\n\r\n"
      expect(head.length).toBe(65536)
      expect(run(["up", head]).events.map((e) => e.type)).toEqual(["HttpRequestStart", "HttpRequestEnd"])
      expect(run(["up", head.slice(0, -1) + "a\n"]).events).toEqual([decodeError("header section over 65536 bytes")])
    })

    it("a header line without a colon is an error naming its line (the start line is line 1)", () => {
      const { events } = run(["up", "GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n"])
      expect(events).toEqual([decodeError("invalid header line 3")])
    })

    it("an obs-fold continuation line is an invalid header line", () => {
      const { events } = run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n"])
      expect(events.at(-1)).toEqual(decodeError("invalid header line 3"))
    })

    it("whitespace between a field name and its colon is an invalid header line", () => {
      const { events } = run(["up", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"])
      expect(events).toEqual([decodeError("invalid header line 2")])
    })

    it("bytes that are not a request line fail at once, without waiting for a line end", () => {
      const { events, mode } = run(["up", "\x16\x03\x01\x02\x00\x01\x00"])
      expect(events).toEqual([decodeError("invalid request line")])
      expect(mode).toBe("failed")
    })

    it("a request line that is not METHOD SP TARGET SP HTTP/1.x is invalid", () => {
      for (const line of ["GET /\r\n\r\n", "GET / HTTP/2\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n"]) {
        expect(run(["up", line]).events).toEqual([decodeError("invalid request line")])
      }
    })

    it("a status line that is not HTTP/1.x SP 3DIGIT [SP reason] is invalid", () => {
      for (const line of ["HTTP/1.1 2000 OK\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 OK\r\n\r\n"]) {
        expect(run(["up", GET], ["down", line]).events.at(-1)).toEqual(decodeError("invalid status line"))
      }
      expect(run(["up", GET], ["down", "HTTP/1.1 200\r\n\r\n"]).events.at(-1)).toEqual(responseStart("HTTP/1.1 200"))
    })

    it("an invalid chunk size line is a DecodeError", () => {
      const { events } = run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n"])
      expect(events.at(-1)).toEqual(decodeError("invalid chunk size line"))
    })

    it("chunk data not followed by CRLF is a DecodeError", () => {
      const { events } = run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"])
      expect(events.at(-1)).toEqual(decodeError("missing CRLF after chunk data"))
    })

    it("a response with no outstanding request is a DecodeError", () => {
      const { events, mode } = run(["down", OK_HELLO])
      expect(events).toEqual([decodeError("response without a request")])
      expect(mode).toBe("failed")
    })

    it("conflicting Content-Length values are a DecodeError; equal duplicates are fine", () => {
      expect(run(["up", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"]).events.at(-1))
        .toEqual(decodeError("conflicting Content-Length"))
      expect(run(["up", "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab"]).events.at(-1)).toEqual(requestEnd(2))
    })

    it("a Content-Length that is not digits is a DecodeError", () => {
      expect(run(["up", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"]).events.at(-1))
        .toEqual(decodeError("invalid Content-Length"))
      expect(run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n"]).events.at(-1))
        .toEqual(decodeError("invalid Content-Length"))
    })

    it("a request whose Transfer-Encoding does not end in chunked is a DecodeError", () => {
      expect(run(["up", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"]).events.at(-1))
        .toEqual(decodeError("request Transfer-Encoding does not end in chunked"))
    })

    it("a stream that ends inside a message is a DecodeError; between messages it is not", () => {
      expect(run(["up", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"], ["end", "up"]).events.at(-1))
        .toEqual(decodeError("stream ended inside a request"))
      expect(run(["up", GET], ["down", "HTTP/1.1 200 OK\r\nContent-Le"], ["end", "down"]).events.at(-1))
        .toEqual(decodeError("stream ended inside a response"))
      const { events, mode } = run(["up", GET], ["end", "up"], ["down", OK_HELLO], ["end", "down"])
      expect(events.at(-1)).toEqual(responseEnd(5))
      expect(mode).toBe("decoding")
    })
  })

  describe("properties", () => {
    const METHODS = ["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "PROPFIND"] as const
    const FRAMING_HEADERS = new Set(["content-length", "transfer-encoding", "upgrade"])

    const headerArb = fc
      .tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/), fc.stringMatching(/^[\x21-\x7e]{0,20}$/))
      .filter(([name]) => !FRAMING_HEADERS.has(name.toLowerCase()))
      .map(([name, value]) => `${name}: ${value}`)

    const bodyArb = fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 3000 }) }
    )

    type Framing = "none" | "length" | "chunked" | "close"

    const messageArb = fc.record({
      headers: fc.array(headerArb, { maxLength: 4 }),
      body: bodyArb,
      framing: fc.constantFrom<Framing>("none", "length", "chunked", "close"),
      chunkSizes: fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
      extension: fc.constantFrom("", ";a=b", ' ;q="x;y"'),
      trailers: fc.array(headerArb, { maxLength: 2 }),
      upperHex: fc.boolean(),
      lf: fc.boolean()
    })

    const exchangeArb = fc.record({
      method: fc.constantFrom(...METHODS),
      target: fc.stringMatching(/^\/[\x21-\x7e]{0,15}$/),
      status: fc.constantFrom(200, 201, 204, 206, 304, 404, 500),
      continue100: fc.boolean(),
      request: messageArb,
      response: messageArb
    })

    type Exchange = typeof exchangeArb extends fc.Arbitrary<infer A> ? A : never
    type Message = Exchange["request"]

    const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
      let at = 0
      for (const p of parts) {
        out.set(p, at)
        at += p.length
      }
      return out
    }

    /** Encodes a message; returns its bytes, header-section length, decoded body length and header lines. */
    const encode = (startLine: string, m: Message, framing: Framing, bodyAllowed: boolean) => {
      const eol = m.lf ? "\n" : "\r\n"
      const headers = [...m.headers]
      if (framing === "length") headers.push(`Content-Length: ${bodyAllowed ? m.body.length : 1234}`)
      if (framing === "chunked") headers.push("Transfer-Encoding: chunked")
      const head = latin1(startLine + eol + headers.map((h) => h + eol).join("") + eol)
      const parts: Array<Uint8Array> = [head]
      let bodyLength = 0
      if (bodyAllowed && (framing === "length" || framing === "close")) {
        parts.push(m.body)
        bodyLength = m.body.length
      } else if (bodyAllowed && framing === "chunked") {
        let at = 0
        for (const size of m.chunkSizes) {
          if (at >= m.body.length) break
          const piece = m.body.subarray(at, at + size)
          const hex = piece.length.toString(16)
          parts.push(latin1((m.upperHex ? hex.toUpperCase() : hex) + m.extension + eol), piece, latin1(eol))
          at += piece.length
        }
        const rest = m.body.subarray(at)
        if (rest.length > 0) parts.push(latin1(rest.length.toString(16) + eol), rest, latin1(eol))
        parts.push(latin1("0" + m.extension + eol + m.trailers.map((t) => t + eol).join("") + eol))
        bodyLength = m.body.length
      }
      return { bytes: concat(parts), headLength: head.length, bodyLength, headers }
    }

    /** The byte streams of an exchange list and the events a decoder must report for them. */
    const build = (exchanges: ReadonlyArray<Exchange>) => {
      const up: Array<Uint8Array> = []
      const down: Array<Uint8Array> = []
      const responseParts: Array<Array<Uint8Array>> = []
      const requestEvents: Array<Seen> = []
      const responseEvents: Array<Seen> = []
      /** Per exchange: where its request's header section ends in the up stream, and its response starts down. */
      const requestHeadEnds: Array<number> = []
      const responseStarts: Array<number> = []
      let upAt = 0
      let downAt = 0
      exchanges.forEach((x, k) => {
        const last = k === exchanges.length - 1
        const requestLine = `${x.method} ${x.target} HTTP/1.1`
        const requestFraming = x.request.framing === "close" ? "none" : x.request.framing
        const request = encode(requestLine, x.request, requestFraming, true)
        up.push(request.bytes)
        requestHeadEnds.push(upAt + request.headLength)
        upAt += request.bytes.length
        requestEvents.push(
          { type: "HttpRequestStart", detail: requestLine, headers: request.headers },
          requestEnd(request.bodyLength)
        )

        const statusLine = `HTTP/1.1 ${x.status} Status`
        const bodyAllowed = x.method !== "HEAD" && x.status !== 204 && x.status !== 304
        // A body delimited by close can only be the last one; elsewhere use Content-Length.
        const framing: Framing = x.response.framing === "close" && !last
          ? "length"
          : x.response.framing === "none"
          ? "length"
          : x.response.framing
        responseStarts.push(downAt)
        const parts: Array<Uint8Array> = []
        if (x.continue100) {
          parts.push(latin1("HTTP/1.1 100 Continue\r\n\r\n"))
          responseEvents.push({ type: "HttpInformational", detail: "HTTP/1.1 100 Continue", headers: [] })
        }
        const response = encode(statusLine, x.response, framing, bodyAllowed)
        parts.push(response.bytes)
        for (const part of parts) {
          down.push(part)
          downAt += part.length
        }
        responseParts.push(parts)
        responseEvents.push(
          { type: "HttpResponseStart", detail: statusLine, headers: response.headers },
          responseEnd(response.bodyLength)
        )
      })
      return { up, down, responseParts, requestEvents, responseEvents, requestHeadEnds, responseStarts }
    }

    const isRequestEvent = (e: Seen) => e.type === "HttpRequestStart" || e.type === "HttpRequestEnd"

    const cutsArb = fc.array(fc.nat(), { maxLength: 40 })

    const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<[number, number]> => {
      const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length)))]
        .filter((p) => p > 0)
        .sort((a, b) => a - b)
      const bounds = [0, ...points, bytes.length]
      const out: Array<[number, number]> = []
      for (let k = 0; k + 1 < bounds.length; k++) if (bounds[k + 1] > bounds[k]) out.push([bounds[k], bounds[k + 1]])
      return out
    }

    it("any split and interleaving of the two streams gives the same events as whole messages", () => {
      fc.assert(
        fc.property(
          fc.array(exchangeArb, { minLength: 1, maxLength: 5 }),
          cutsArb,
          cutsArb,
          fc.array(fc.boolean(), { maxLength: 80 }),
          (exchanges, upCuts, downCuts, choices) => {
            const model = build(exchanges)

            // Whole messages, one exchange after the other.
            let whole = initialHttpDecoder
            const wholeEvents: Array<DecoderEvent> = []
            const feedWhole = (direction: Direction, bytes: Uint8Array) => {
              const [next, out] = feedHttp(whole, direction, bytes)
              whole = next
              wholeEvents.push(...out)
            }
            exchanges.forEach((_, k) => {
              feedWhole("up", model.up[k])
              for (const part of model.responseParts[k]) feedWhole("down", part)
            })
            for (const direction of ["up", "down"] as const) {
              const [next, out] = endHttp(whole, direction)
              whole = next
              wholeEvents.push(...out)
            }
            expect(seenAll(wholeEvents).filter(isRequestEvent)).toEqual(model.requestEvents)
            expect(seenAll(wholeEvents).filter((e) => !isRequestEvent(e))).toEqual(model.responseEvents)

            // Any split, any interleaving that feeds a response only after its request's headers.
            const up = concat(model.up)
            const down = concat(model.down)
            const upChunks = split(up, upCuts)
            const downChunks = split(down, downCuts)
            let state = initialHttpDecoder
            const events: Array<DecoderEvent> = []
            let u = 0
            let w = 0
            let c = 0
            const downAllowed = (end: number) => {
              let k = -1
              while (k + 1 < model.responseStarts.length && model.responseStarts[k + 1] < end) k++
              const fedUp = u === 0 ? 0 : upChunks[u - 1][1]
              return k < 0 || model.requestHeadEnds[k] <= fedUp
            }
            while (u < upChunks.length || w < downChunks.length) {
              const wantDown = choices[c++ % Math.max(choices.length, 1)] ?? false
              const canDown = w < downChunks.length && downAllowed(downChunks[w][1])
              const takeDown = canDown && (wantDown || u >= upChunks.length)
              const [from, to] = takeDown ? downChunks[w++] : upChunks[u++]
              const [next, out] = feedHttp(state, takeDown ? "down" : "up", (takeDown ? down : up).subarray(from, to))
              state = next
              events.push(...out)
            }
            for (const direction of ["up", "down"] as const) {
              const [next, out] = endHttp(state, direction)
              state = next
              events.push(...out)
            }
            expect(seenAll(events).filter(isRequestEvent)).toEqual(model.requestEvents)
            expect(seenAll(events).filter((e) => !isRequestEvent(e))).toEqual(model.responseEvents)
            // Every response names the exchange of the request it answers: the same as fed whole.
            const exchangeOf = (e: DecoderEvent) => ("exchange" in e ? `${e.type}:${e.exchange}` : e.type)
            expect(events.map(exchangeOf)).toEqual(expect.arrayContaining(wholeEvents.map(exchangeOf)))
            expect(httpDecoderMode(state)).toBe("decoding")
          }
        ),
        { numRuns: 300 }
      )
    })

    /** Pieces of HTTP and of garbage, so random streams reach deep into the decoder. */
    const fragmentArb = fc.oneof(
      fc.constantFrom(
        "GET / HTTP/1.1\r\n",
        "HEAD / HTTP/1.1\r\n",
        "CONNECT a:443 HTTP/1.1\r\n",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 100 Continue\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n",
        "HTTP/1.1 204 No Content\r\n",
        "Content-Length: 5\r\n",
        "Content-Length: 5, 6\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Upgrade: websocket\r\n",
        "Host: a\r\n",
        "\r\n",
        "\n",
        "\r",
        "5;x=y\r\n",
        "0\r\n",
        "hello",
        " folded\r\n"
      ).map(latin1),
      fc.uint8Array({ maxLength: 40 })
    )
    const streamArb = fc.array(fragmentArb, { maxLength: 30 }).map(concat)

    it("arbitrary bytes in arbitrary chunks, in either direction, never throw; after a DecodeError nothing follows", () => {
      const opArb = fc.oneof(
        { weight: 8, arbitrary: fc.tuple(fc.constantFrom<Direction>("up", "down"), fc.oneof(streamArb, fc.uint8Array())) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom<Direction>("up", "down"), fc.constant(undefined)) }
      )
      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
          let state = initialHttpDecoder
          const events: Array<DecoderEvent> = []
          for (const [direction, bytes] of ops) {
            const [next, out] = bytes === undefined ? endHttp(state, direction) : feedHttp(state, direction, bytes)
            state = next
            events.push(...out)
          }
          const error = events.findIndex((e) => e.type === "DecodeError")
          if (error >= 0) {
            expect(error).toBe(events.length - 1)
            expect(httpDecoderMode(state)).toBe("failed")
          }
          if (httpDecoderMode(state) === "failed") expect(error).toBeGreaterThanOrEqual(0)
        }),
        { numRuns: 1000 }
      )
    })

    it("for any request stream, how it is split into chunks does not change the events", () => {
      fc.assert(
        fc.property(streamArb, cutsArb, (stream, cuts) => {
          const feedAll = (chunks: ReadonlyArray<Uint8Array>) => {
            let state = initialHttpDecoder
            const events: Array<DecoderEvent> = []
            for (const chunk of chunks) {
              const [next, out] = feedHttp(state, "up", chunk)
              state = next
              events.push(...out)
            }
            const [last, out] = endHttp(state, "up")
            // Typed fields, a DecodeError's offset in the stream included, must not depend on the split.
            return { events: splitFree([...events, ...out]), mode: httpDecoderMode(last) }
          }
          const whole = feedAll([stream])
          const pieces = feedAll(split(stream, cuts).map(([a, b]) => stream.subarray(a, b)))
          expect(pieces).toEqual(whole)
        }),
        { numRuns: 1000 }
      )
    })
  })
})
