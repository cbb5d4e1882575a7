import { describe, expect, it } from "@effect/vitest"
import { Ajv } from "ajv"
import { createRequire } from "node:module"
import { isIPv4, isIPv6 } from "node:net"
import type { Connection } from "../src/domain/Connection.js"
import { type ConnectionEvent, type EventFacts, type EventOf, stamp } from "../src/domain/Event.js"
import { feedHttp, initialHttpDecoder } from "../src/domain/HttpDecoder.js"
import { type HarDocument, harIndex, harWith, toHar } from "../src/http/Har.js"
import { connectionOfEvents } from "./support/Measurements.js"

const require = createRequire(import.meta.url)
/** har-schema's index: one draft-06 schema per HAR object, `$id`s like "log.json#". */
const harSchemas = require("har-schema") as Record<string, object>

/**
 * The HAR 1.2 JSON schema from har-schema, with its formats checked (ajv has none built in)
 * and the timing rules of the HAR spec that the schema spells as the non-keyword `min`.
 */
const validator = () => {
  const ajv = new Ajv({ allErrors: true, strict: false })
  ajv.addMetaSchema(require("ajv/dist/refs/json-schema-draft-06.json"))
  ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/)
  ajv.addFormat("ipv4", isIPv4)
  ajv.addFormat("ipv6", isIPv6)
  ajv.addFormat("uri", (url: string) => URL.canParse(url))
  for (const [name, schema] of Object.entries(harSchemas)) if (name !== "har") ajv.addSchema(schema)
  const schema = ajv.compile(harSchemas.har)
  const timings = ajv.compile({
    type: "object",
    properties: {
      log: {
        type: "object",
        properties: {
          entries: {
            type: "array",
            items: {
              type: "object",
              required: ["timings"],
              properties: {
                time: { type: "number", minimum: 0 },
                timings: {
                  type: "object",
                  required: ["blocked", "dns", "connect", "ssl", "send", "wait", "receive"],
                  properties: {
                    blocked: { type: "number", minimum: -1 },
                    dns: { type: "number", minimum: -1 },
                    connect: { type: "number", minimum: -1 },
                    ssl: { type: "number", minimum: -1 },
                    send: { type: "number", minimum: 0 },
                    wait: { type: "number", minimum: 0 },
                    receive: { type: "number", minimum: 0 }
                  }
                }
              }
            }
          }
        }
      }
    }
  })
  return (har: unknown) => {
    const json = JSON.parse(JSON.stringify(har))
    const valid = schema(json) && timings(json)
    return { valid, errors: JSON.stringify([schema.errors, timings.errors]) }
  }
}

const start = Date.UTC(2026, 10, 26, 12, 0, 0)
const options = { sessionStartMillis: start, creatorVersion: "0.1.0" }
const at = (seconds: number) => new Date(start + seconds * 1000).toISOString()

/** Bytes relayed in one direction at one moment: the real HTTP decoder reads them. */
interface Relayed {
  readonly type: "up" | "down"
  readonly bytes: string
}

const isRelayed = (step: EventFacts | Relayed): step is Relayed => step.type === "up" || step.type === "down"
const up = (bytes: string): Relayed => ({ type: "up", bytes })
const down = (bytes: string): Relayed => ({ type: "down", bytes })

/** An HTTP message as it goes over the wire: start line, header lines, blank line, body. */
const message = (startLine: string, headers: ReadonlyArray<string> = [], body = ""): string =>
  [startLine, ...headers, "", body].join("\r\n")

const socksRequest = (host: string, port = 80): EventFacts => ({ type: "SocksRequestStart", host, port, command: "connect", version: 5 })
const socksReply: EventFacts = { type: "SocksResponseEnd", reply: 0, replyName: "succeeded", address: null }
const delayStart = (delay: "socks" | "http", ms: number, exchange: number | null = null): EventFacts => ({ type: "DelayStart", delay, ms, exchange })
const delayEnd = (delay: "socks" | "http", ms: number, exchange: number | null = null): EventFacts => ({ type: "DelayEnd", delay, ms, exchange })
const closedBy = (who: "client" | "server"): EventFacts => ({ type: "ConnectionClose", closedBy: who, bytesUp: 100, bytesDown: 1000 })

/**
 * A connection as MITM records it: what the proxy knows by itself (SOCKS, delays, the close)
 * as typed facts, and HTTP as the real decoder reads the relayed bytes, each stamped with
 * the time it happened.
 */
const connectionOf = (
  id: number,
  steps: ReadonlyArray<readonly [number, EventFacts | Relayed]>,
  overrides: Partial<Connection> = {}
): Connection => {
  let http = initialHttpDecoder
  const events: Array<ConnectionEvent> = []
  for (const [time, step] of steps) {
    if (!isRelayed(step)) {
      events.push(stamp(time, step))
      continue
    }
    const [next, decoded] = feedHttp(http, step.type, Buffer.from(step.bytes, "latin1"))
    http = next
    for (const facts of decoded) events.push(stamp(time, facts))
  }
  return connectionOfEvents(id, events, overrides)
}

const firstLine = "GET /search?q=tor+browser&lang=en&empty HTTP/1.1"
const firstHeaders = ["Host: example.com", "Cookie: a=1; b=x=y", "Accept: */*"]

const keepAlive = connectionOf(1, [
  [0, socksRequest("example.com")],
  [0.8, socksReply],
  [1.0, up(message(firstLine, firstHeaders))],
  [2.5, down(message("HTTP/1.1 302 Found", [
    "Location: http://x/y",
    "Content-Type: text/html; charset=utf-8",
    "Content-Length: 12",
    "Set-Cookie: sid=abc; Path=/; Max-Age=60; HttpOnly; Secure"
  ]))],
  [3.0, down("<a href=y/>.")],
  // The relay holds the request after the decoder has read it.
  [3.1, up(message("POST /form HTTP/1.1", ["Host: example.com", "Content-Length: 5"], "a=b&c"))],
  [3.1, delayStart("http", 300, 1)],
  [3.4, delayEnd("http", 300, 1)],
  [3.6, down(message("HTTP/1.1 200 OK", ["Content-Length: 2"]))],
  [3.7, down("ok")],
  [4.0, closedBy("client")]
])

/** An upload still under way: its request has no end yet, and nothing answered it. */
const unanswered = connectionOf(2, [
  [0.5, socksRequest("slow.example")],
  [0.6, socksReply],
  [0.7, up(message("POST /upload HTTP/1.1", ["Host: slow.example", "Content-Length: 10"], "abc"))]
])

/** Encrypted: its exchanges are inferred from the direction of bytes, and are no HAR entries. */
const tls = connectionOf(3, [
  [0.2, socksRequest("example.org", 443)],
  [0.3, socksReply],
  [0.4, { type: "TlsClientHello", sni: "example.org", alpn: ["h2", "http/1.1"], versions: ["TLS 1.3"] }],
  [0.5, { type: "InferredRequest", exchange: 0, afterBytes: null }],
  [0.9, { type: "InferredResponse", exchange: 0, afterBytes: 517 }]
], { protocol: "tls" })

describe("the HAR export", () => {
  it("validates against the HAR 1.2 schema, and the validator does reject broken documents", () => {
    const validate = validator()
    const har = toHar([keepAlive, unanswered, tls], options)
    const result = validate(har)
    expect(result.valid, result.errors).toBe(true)
    expect(validate(toHar([], options)).valid).toBe(true)

    const withEntries = (entries: ReadonlyArray<unknown>) => ({ log: { ...har.log, entries } })
    const [entry] = har.log.entries
    const { request: _request, ...withoutRequest } = entry
    expect(validate(withEntries([withoutRequest])).valid).toBe(false)
    expect(validate(withEntries([{ ...entry, startedDateTime: "yesterday" }])).valid).toBe(false)
    expect(validate(withEntries([{ ...entry, serverIPAddress: "example.com" }])).valid).toBe(false)
    expect(validate(withEntries([{ ...entry, request: { ...entry.request, url: "/no/scheme" } }])).valid).toBe(false)
    expect(validate(withEntries([{ ...entry, timings: { ...entry.timings, wait: -1 } }])).valid).toBe(false)
    expect(validate({ log: { ...har.log, creator: { name: "MITM" } } }).valid).toBe(false)
  })

  it("has one page, the creator, and a log comment saying where times are measured", () => {
    const { log } = toHar([keepAlive], options)
    expect(log.version).toBe("1.2")
    expect(log.creator).toEqual({ name: "MITM", version: "0.1.0" })
    expect(log.pages).toEqual([{ id: "mitm", title: "MITM session", startedDateTime: at(0), pageTimings: { onContentLoad: -1, onLoad: -1 } }])
    expect(log.entries.every((entry) => entry.pageref === "mitm")).toBe(true)
    expect(log.comment).toMatch(/measured at MITM, the SOCKS proxy between the browser and Tor/)
  })

  it("times the first request with the SOCKS setup as connect, and no injected delay as blocked -1", () => {
    const [first] = toHar([keepAlive], options).log.entries
    expect(first.timings).toEqual({ blocked: -1, dns: -1, connect: 800, ssl: -1, send: 0, wait: 1500, receive: 500 })
    expect(first.time).toBe(2800)
    // The entry starts connect before its request, so it ends when the response did (3.0 s).
    expect(first.startedDateTime).toBe(at(0.2))
    expect(Date.parse(first.startedDateTime) + first.time).toBe(start + 3000)
    expect(first.connection).toBe("1")
    expect(first).toMatchObject({ _socksHost: "example.com:80", _upstream: "socks5://127.0.0.1:9050", _protocol: "http" })
    expect(first.serverIPAddress).toBeUndefined()
    expect(first.comment).toBeUndefined()
  })

  it("gives a later request on the same connection connect -1, and its injected HTTP delay as blocked", () => {
    const [, second] = toHar([keepAlive], options).log.entries
    expect(second.timings).toEqual({ blocked: 300, dns: -1, connect: -1, ssl: -1, send: 0, wait: 200, receive: 100 })
    expect(second.time).toBe(600)
    expect(second.startedDateTime).toBe(at(3.1))
    expect(second.request.bodySize).toBe(5)
    expect(second.comment).toBe("blocked is the HTTP delay injected by MITM")
  })

  it("takes each HTTP delay as the exchange it names: pipelined requests held in turn", () => {
    const held = connectionOf(4, [
      [0, socksRequest("example.com")],
      [0.1, socksReply],
      [0.2, up(message("GET /a HTTP/1.1", ["Host: example.com"]) + message("GET /b HTTP/1.1", ["Host: example.com"]))],
      [0.2, delayStart("http", 300, 0)],
      [0.5, delayEnd("http", 300, 0)],
      [0.5, delayStart("http", 300, 1)],
      [0.8, delayEnd("http", 300, 1)],
      [0.9, down(message("HTTP/1.1 200 OK", ["Content-Length: 0"]))],
      [1.2, down(message("HTTP/1.1 404 Not Found", ["Content-Length: 3"]))],
      [1.3, down("no!")],
      [1.4, up(message("GET /c HTTP/1.1", ["Host: example.com"]))],
      [1.4, delayStart("http", 100, 2)],
      [1.5, delayEnd("http", 100, 2)],
      [1.6, down(message("HTTP/1.1 204 No Content"))]
    ])
    const [a, b, c] = toHar([held], options).log.entries
    // Both pipelined requests came in one chunk and were held one after the other.
    expect([a.request.url, a.response.status, a.timings]).toEqual([
      "http://example.com/a", 200, { blocked: 300, dns: -1, connect: 100, ssl: -1, send: 0, wait: 400, receive: 0 }
    ])
    expect([b.request.url, b.response.status, b.timings]).toEqual([
      "http://example.com/b", 404, { blocked: 300, dns: -1, connect: -1, ssl: -1, send: 0, wait: 400, receive: 100 }
    ])
    expect([c.request.url, c.timings.blocked, c.timings.wait]).toEqual(["http://example.com/c", 100, 100])
  })

  it("counts a slow upload after the delay as send, not blocked", () => {
    const upload = connectionOf(5, [
      [0, socksRequest("example.com")],
      [0, socksReply],
      [1, up(message("PUT /big HTTP/1.1", ["Host: example.com", "Content-Length: 100000"]))],
      [1, delayStart("http", 250, 0)],
      [1.25, delayEnd("http", 250, 0)],
      [2.25, up("x".repeat(100000))],
      [2.5, down(message("HTTP/1.1 201 Created", ["Content-Length: 0"]))]
    ])
    const [entry] = toHar([upload], options).log.entries
    expect(entry.timings).toMatchObject({ blocked: 250, connect: 0, send: 1000, wait: 250, receive: 0 })
    expect(entry.time).toBe(1500)
    expect(entry.request.bodySize).toBe(100000)
  })

  it("counts a delay that still held when the connection closed as blocked until the close", () => {
    const cut = connectionOf(14, [
      [0, socksRequest("example.com")],
      [0.1, socksReply],
      [0.2, up(message("GET / HTTP/1.1", ["Host: example.com"]))],
      [0.2, delayStart("http", 5000, 0)],
      [0.7, closedBy("client")]
    ])
    const [entry] = toHar([cut], options).log.entries
    expect(entry.timings).toMatchObject({ blocked: 500, connect: 100, send: 0, wait: 0, receive: 0 })
    expect(entry.response._error).toBe("the connection was closed by client before a response")
  })

  it("builds the URL from Host and target, and parses the query, headers, cookies, status and redirect", () => {
    const [first] = toHar([keepAlive], options).log.entries
    expect(first.request).toMatchObject({
      method: "GET",
      url: "http://example.com/search?q=tor+browser&lang=en&empty",
      httpVersion: "HTTP/1.1",
      queryString: [{ name: "q", value: "tor browser" }, { name: "lang", value: "en" }, { name: "empty", value: "" }],
      cookies: [{ name: "a", value: "1" }, { name: "b", value: "x=y" }],
      bodySize: 0
    })
    expect(first.request.headers).toEqual([
      { name: "Host", value: "example.com" },
      { name: "Cookie", value: "a=1; b=x=y" },
      { name: "Accept", value: "*/*" }
    ])
    // The head as it went over the wire: each line and its CRLF, then the blank line.
    expect(first.request.headersSize).toBe(Buffer.byteLength(message(firstLine, firstHeaders), "latin1"))
    expect(first.response).toMatchObject({
      status: 302,
      statusText: "Found",
      httpVersion: "HTTP/1.1",
      redirectURL: "http://x/y",
      content: { size: 12, mimeType: "text/html; charset=utf-8" },
      bodySize: 12
    })
    expect(first.response.headers[0]).toEqual({ name: "Location", value: "http://x/y" })
    expect(first.response.cookies).toEqual([
      { name: "sid", value: "abc", path: "/", expires: at(2.5 + 60), httpOnly: true, secure: true }
    ])
    expect(first.response.content.comment).toBeUndefined()
  })

  it("parses queries that need decoding as a browser does, and a cookie's Expires", () => {
    const odd = connectionOf(15, [
      [0, socksRequest("example.com")],
      [0, socksReply],
      [0.1, up(message("GET /p?%41=%zz+x&&=v&a==b#x=y HTTP/1.1", ["Host: example.com", "Cookie: k=v;;  s = t ", "cookie: last"]))],
      [0.2, down(message("HTTP/1.1 200 OK", ["Set-Cookie: id=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Domain=.example.com", "Content-Length: 0"]))]
    ])
    const [entry] = toHar([odd], options).log.entries
    expect(entry.request.queryString).toEqual([{ name: "A", value: "%zz x" }, { name: "", value: "v" }, { name: "a", value: "=b" }])
    expect(entry.request.cookies).toEqual([{ name: "k", value: "v" }, { name: "s ", value: " t" }, { name: "last", value: "" }])
    expect(entry.response.cookies).toEqual([{ name: "id", value: "1", expires: "2026-10-21T07:28:00.000Z", domain: ".example.com" }])
  })

  it("takes absolute-form targets as they are, falls back to the SOCKS target without Host, and omits :80", () => {
    const entryOf = (host: string, port: number, requestLine: string, headers?: ReadonlyArray<string>) =>
      toHar([connectionOf(6, [[0, socksRequest(host, port)], [0, socksReply], [0, up(message(requestLine, headers))]])], options)
        .log.entries[0]
    expect(entryOf("proxy.example", 3128, "GET http://other.example/p?x=1 HTTP/1.1", ["Host: other.example"]).request).toMatchObject({
      url: "http://other.example/p?x=1",
      queryString: [{ name: "x", value: "1" }]
    })
    expect(entryOf("example.com", 80, "GET /x HTTP/1.0").request.url).toBe("http://example.com/x")
    expect(entryOf("example.com", 8080, "GET /x HTTP/1.0").request.url).toBe("http://example.com:8080/x")
    expect(entryOf("example.com", 8080, "GET /x HTTP/1.1", ["Host: example.com:8080"]).request.url).toBe("http://example.com:8080/x")
    const v6 = entryOf("2001:db8::1", 8080, "GET / HTTP/1.0")
    expect([v6.request.url, v6.serverIPAddress, v6._socksHost]).toEqual(["http://[2001:db8::1]:8080/", "2001:db8::1", "[2001:db8::1]:8080"])
    expect(entryOf("192.0.2.7", 80, "GET / HTTP/1.0").serverIPAddress).toBe("192.0.2.7")
    expect(entryOf("proxy.example", 3128, "CONNECT example.com:443 HTTP/1.1", ["Host: example.com:443"]).request.url)
      .toBe("http://example.com:443")
    const result = validator()(toHar([connectionOf(6, [[0, socksRequest("2001:db8::1", 8080)], [0, socksReply], [0, up(message("GET / HTTP/1.0"))]])], options))
    expect(result.valid, result.errors).toBe(true)
  })

  it("keeps a request without a response as an entry with status 0, saying why", () => {
    const validate = validator()
    const [waiting] = toHar([unanswered], options).log.entries
    expect(waiting.response).toMatchObject({ status: 0, statusText: "", httpVersion: "", headers: [], headersSize: -1, bodySize: -1, comment: "no response yet" })
    expect(waiting.response._error).toBeUndefined()
    expect(waiting.timings).toEqual({ blocked: -1, dns: -1, connect: 100, ssl: -1, send: 0, wait: 0, receive: 0 })
    expect(waiting.request.bodySize).toBe(-1)

    const closed = connectionOf(7, [
      [0, socksRequest("slow.example")],
      [0.1, socksReply],
      [0.2, up(message("GET /x HTTP/1.1", ["Host: slow.example"]))],
      [9, closedBy("server")]
    ])
    const [failed] = toHar([closed], options).log.entries
    expect(failed.response.status).toBe(0)
    expect(failed.response._error).toBe("the connection was closed by server before a response")
    expect(failed.response.comment).toBe(failed.response._error)
    const [broken] = toHar([connectionOf(7, closed.events.map((event) => [event.time, event]), { error: "upstream reset" })], options).log.entries
    expect(broken.response._error).toBe("upstream reset")

    const undecoded = connectionOf(8, [
      [0, socksRequest("odd.example")],
      [0, socksReply],
      [0.1, up(message("GET / HTTP/1.1", ["Host: odd.example"]))],
      [0.3, down("garbage\r\n\r\n")]
    ])
    const failure = undecoded.events.find((event): event is EventOf<"DecodeError"> => event.type === "DecodeError")?.error
    expect(failure?._tag).toBe("HttpParseError")
    expect(toHar([undecoded], options).log.entries[0].response.comment)
      .toBe(`the response was not decoded (HttpParseError: ${failure?.message})`)
    const result = validate(toHar([unanswered, closed, undecoded], options))
    expect(result.valid, result.errors).toBe(true)
  })

  it("keeps hostile header values verbatim through JSON (HAR is data, not HTML)", () => {
    const hostile = `<script>alert("x")</script>'&amp;\\\u00ff"`
    const evil = connectionOf(9, [
      [0, socksRequest("evil.example")],
      [0, socksReply],
      [0.1, up(message(`GET /?q=${encodeURIComponent(`${hostile}\u2028`)} HTTP/1.1`, ["Host: evil.example", `X-Evil: ${hostile}`]))],
      [0.2, down(message("HTTP/1.1 200 <b>OK</b>", [`Content-Type: ${hostile}`]))]
    ])
    const har: HarDocument = JSON.parse(JSON.stringify(toHar([evil], options)))
    const [entry] = har.log.entries
    expect(entry.request.headers[1]).toEqual({ name: "X-Evil", value: hostile })
    expect(entry.request.queryString).toEqual([{ name: "q", value: `${hostile}\u2028` }])
    expect(entry.response.statusText).toBe("<b>OK</b>")
    expect(entry.response.content.mimeType).toBe(hostile)
  })

  it("sorts entries by start across connections, and has none for TLS or unknown connections", () => {
    const early = connectionOf(10, [
      [0.1, socksRequest("early.example")],
      [0.2, socksReply],
      [0.25, up(message("GET / HTTP/1.1", ["Host: early.example"]))]
    ])
    const unknown = connectionOf(11, [[0, socksRequest("odd.example")], [0.1, socksReply]], { protocol: "unknown" })
    const entries = toHar([keepAlive, tls, unknown, early, unanswered], options).log.entries
    expect(entries.map((e) => [e.connection, e.startedDateTime])).toEqual([["10", at(0.15)], ["1", at(0.2)], ["2", at(0.6)], ["1", at(3.1)]])
  })

  it("merges the entries of overlapping connections in start order, the lower connection id first at equal starts", () => {
    const requests = (id: number, times: ReadonlyArray<number>) =>
      connectionOf(id, [
        [0, socksRequest("example.com")],
        [0, socksReply],
        ...times.map((time, i) => [time, up(message(`GET /${id}/${i} HTTP/1.1`, ["Host: example.com"]))] as const)
      ])
    const connections = [requests(23, [0.5, 0.6, 2]), requests(21, [0.1, 1, 1.5]), requests(22, [0.5, 0.7]), requests(20, [3])]
    const order = toHar(connections, options).log.entries.map((entry) => entry.request.url.slice("http://example.com/".length))
    expect(order).toEqual(["21/0", "22/0", "23/0", "23/1", "22/1", "21/1", "21/2", "23/2", "20/0"])
  })

  it("streams the same entries: harIndex builds one at a time what toHar builds at once", () => {
    const connections = [keepAlive, tls, unanswered]
    const whole = toHar(connections, options)
    const index = harIndex(connections, options)
    expect(harWith(index.log, index.entries.map(index.entry))).toEqual(whole)
    expect(Object.keys(harWith(index.log, []).log)).toEqual(["version", "creator", "pages", "entries", "comment"])
  })

  it("carries each entry's Tor circuit and path as _tor when the control port knows them (SPEC §7)", () => {
    const path = [{ fingerprint: "A".repeat(40), nickname: "guard" }, { fingerprint: "B".repeat(40), nickname: "middle" }, { fingerprint: "C".repeat(40), nickname: "exit" }]
    const har = toHar([keepAlive, tls], {
      ...options,
      torOf: (id) => (id === keepAlive.id ? { stream: "42", circuit: "7", path, circuitBuildTime: 0.8 } : null)
    })
    const byConnection = (id: number) => har.log.entries.filter((entry) => entry.connection === String(id))
    expect(byConnection(keepAlive.id).map((entry) => entry._tor)).toEqual(byConnection(keepAlive.id).map(() => ({ circuit: "7", path })))
    expect(byConnection(tls.id).every((entry) => entry._tor === null)).toBe(true)
  })

  it("says in a comment when connect includes a SOCKS delay injected by MITM", () => {
    const delayed = connectionOf(12, [
      [0, socksRequest("d.example")],
      [0, delayStart("socks", 400)],
      [0.4, delayEnd("socks", 400)],
      [0.5, socksReply],
      [0.6, up(message("GET / HTTP/1.1"))],
      [0.7, down(message("HTTP/1.1 204 No Content"))]
    ])
    const [entry] = toHar([delayed], options).log.entries
    expect(entry.timings).toMatchObject({ blocked: -1, connect: 500, wait: 100 })
    expect(entry.comment).toBe("connect includes 400 ms of SOCKS delay injected by MITM")
  })

  it("notes that a compressed body's size is the encoded size", () => {
    const gzip = connectionOf(13, [
      [0, socksRequest("example.com")],
      [0, socksReply],
      [0, up(message("GET / HTTP/1.1", ["Host: example.com"]))],
      [0.1, down(message("HTTP/1.1 200 OK", ["Content-Encoding: gzip", "Transfer-Encoding: chunked"]))],
      [0.2, down(`12c\r\n${"z".repeat(300)}\r\n0\r\n\r\n`)]
    ])
    const [entry] = toHar([gzip], options).log.entries
    expect(entry.response.content).toEqual({ size: 300, mimeType: "", comment: "size is of the gzip-encoded body: MITM keeps no bodies and decompresses none" })
  })
})
