import { describe, expect, it } from "@effect/vitest"
import { Ajv } from "ajv"
import { createRequire } from "node:module"
import { isIPv4, isIPv6 } from "node:net"
import { type HarDocument, toHar } from "../src/http/Har.js"
import { connectionOf } from "./support/Connections.js"

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

const keepAlive = connectionOf(1, "example.com", [
  [0, "SocksRequestStart", "example.com:80"],
  [0.8, "SocksResponseEnd", "succeeded"],
  [1.0, "HttpRequestStart", "GET /search?q=tor+browser&lang=en&empty HTTP/1.1", ["Host: example.com", "Cookie: a=1; b=x=y", "Accept: */*"]],
  [1.0, "HttpRequestEnd", "0 bytes"],
  [2.5, "HttpResponseStart", "HTTP/1.1 302 Found", [
    "Location: http://x/y",
    "Content-Type: text/html; charset=utf-8",
    "Content-Length: 12",
    "Set-Cookie: sid=abc; Path=/; Max-Age=60; HttpOnly; Secure"
  ]],
  [3.0, "HttpResponseEnd", "12 bytes"],
  [3.1, "HttpRequestStart", "POST /form HTTP/1.1", ["Host: example.com", "Content-Length: 5"]],
  [3.1, "DelayStart", "HTTP request held 300ms"],
  [3.4, "DelayEnd", "HTTP request released"],
  [3.4, "HttpRequestEnd", "5 bytes"],
  [3.6, "HttpResponseStart", "HTTP/1.1 200 OK", ["Content-Length: 2"]],
  [3.7, "HttpResponseEnd", "2 bytes"],
  [4.0, "ConnectionClose", "closed by client"]
])

const unanswered = connectionOf(2, "slow.example", [
  [0.5, "SocksRequestStart", "slow.example:80"],
  [0.6, "SocksResponseEnd", "succeeded"],
  [0.7, "HttpRequestStart", "GET / HTTP/1.1", ["Host: slow.example"]]
])

const tls = connectionOf(3, "example.org", [
  [0.2, "SocksRequestStart", "example.org:443"],
  [0.3, "SocksResponseEnd", "succeeded"],
  [0.4, "TlsClientHello", "SNI example.org, ALPN h2,http/1.1"]
], { port: 443, protocol: "tls" })

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

  it("reads HTTP delays as the relay records them: each pipelined request held in turn, in order", () => {
    const held = connectionOf(4, "example.com", [
      [0, "SocksRequestStart"],
      [0.1, "SocksResponseEnd"],
      [0.2, "HttpRequestStart", "GET /a HTTP/1.1", ["Host: example.com"]],
      [0.2, "HttpRequestEnd", "0 bytes"],
      [0.2, "HttpRequestStart", "GET /b HTTP/1.1", ["Host: example.com"]],
      [0.2, "HttpRequestEnd", "0 bytes"],
      [0.2, "DelayStart", "HTTP request held 300ms"],
      [0.5, "DelayEnd", "HTTP request released"],
      [0.5, "DelayStart", "HTTP request held 300ms"],
      [0.8, "DelayEnd", "HTTP request released"],
      [0.9, "HttpResponseStart", "HTTP/1.1 200 OK", ["Content-Length: 0"]],
      [0.9, "HttpResponseEnd", "0 bytes"],
      [1.2, "HttpResponseStart", "HTTP/1.1 404 Not Found", ["Content-Length: 3"]],
      [1.3, "HttpResponseEnd", "3 bytes"],
      [1.4, "HttpRequestStart", "GET /c HTTP/1.1", ["Host: example.com"]],
      [1.4, "HttpRequestEnd", "0 bytes"],
      [1.4, "DelayStart", "HTTP request held 100ms"],
      [1.5, "DelayEnd", "HTTP request released"],
      [1.6, "HttpResponseStart", "HTTP/1.1 204 No Content"],
      [1.6, "HttpResponseEnd", "0 bytes"]
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
    const upload = connectionOf(5, "example.com", [
      [0, "SocksRequestStart"],
      [0, "SocksResponseEnd"],
      [1, "HttpRequestStart", "PUT /big HTTP/1.1", ["Host: example.com", "Content-Length: 100000"]],
      [1, "DelayStart", "HTTP request held 250ms"],
      [1.25, "DelayEnd", "HTTP request released"],
      [2.25, "HttpRequestEnd", "100000 bytes"],
      [2.5, "HttpResponseStart", "HTTP/1.1 201 Created"],
      [2.5, "HttpResponseEnd", "0 bytes"]
    ])
    const [entry] = toHar([upload], options).log.entries
    expect(entry.timings).toMatchObject({ blocked: 250, connect: 0, send: 1000, wait: 250, receive: 0 })
    expect(entry.time).toBe(1500)
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
    expect(first.request.headersSize).toBe(
      ["GET /search?q=tor+browser&lang=en&empty HTTP/1.1", "Host: example.com", "Cookie: a=1; b=x=y", "Accept: */*"]
        .reduce((size, line) => size + line.length + 2, 2)
    )
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

  it("takes absolute-form targets as they are, falls back to the SOCKS target without Host, and omits :80", () => {
    const entryOf = (host: string, port: number, requestLine: string, headers?: ReadonlyArray<string>) =>
      toHar([connectionOf(6, host, [[0, "SocksRequestStart"], [0, "SocksResponseEnd"], [0, "HttpRequestStart", requestLine, headers]], { port })], options)
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
    const result = validator()(toHar([connectionOf(6, "2001:db8::1", [[0, "SocksRequestStart"], [0, "SocksResponseEnd"], [0, "HttpRequestStart", "GET / HTTP/1.0"]], { port: 8080 })], options))
    expect(result.valid, result.errors).toBe(true)
  })

  it("keeps a request without a response as an entry with status 0, saying why", () => {
    const validate = validator()
    const [waiting] = toHar([unanswered], options).log.entries
    expect(waiting.response).toMatchObject({ status: 0, statusText: "", httpVersion: "", headers: [], headersSize: -1, bodySize: -1, comment: "no response yet" })
    expect(waiting.response._error).toBeUndefined()
    expect(waiting.timings).toEqual({ blocked: -1, dns: -1, connect: 100, ssl: -1, send: 0, wait: 0, receive: 0 })
    expect(waiting.request.bodySize).toBe(-1)

    const closed = connectionOf(7, "slow.example", [
      [0, "SocksRequestStart"],
      [0.1, "SocksResponseEnd"],
      [0.2, "HttpRequestStart", "GET /x HTTP/1.1", ["Host: slow.example"]],
      [0.2, "HttpRequestEnd", "0 bytes"],
      [9, "ConnectionClose", "closed by server"]
    ])
    const [failed] = toHar([closed], options).log.entries
    expect(failed.response.status).toBe(0)
    expect(failed.response._error).toBe("the connection was closed by server before a response")
    expect(failed.response.comment).toBe(failed.response._error)

    const undecoded = connectionOf(8, "odd.example", [
      [0, "SocksRequestStart"],
      [0, "SocksResponseEnd"],
      [0.1, "HttpRequestStart", "GET / HTTP/1.1", ["Host: odd.example"]],
      [0.1, "HttpRequestEnd", "0 bytes"],
      [0.3, "DecodeError", "HttpParseError: invalid status line"]
    ])
    expect(toHar([undecoded], options).log.entries[0].response.comment).toBe("the response was not decoded (HttpParseError: invalid status line)")
    const result = validate(toHar([unanswered, closed, undecoded], options))
    expect(result.valid, result.errors).toBe(true)
  })

  it("keeps hostile header values verbatim through JSON (HAR is data, not HTML)", () => {
    const hostile = `<script>alert("x")</script>'&amp;\\\u2028\"`
    const evil = connectionOf(9, "evil.example", [
      [0, "SocksRequestStart"],
      [0, "SocksResponseEnd"],
      [0.1, "HttpRequestStart", `GET /?q=${encodeURIComponent(hostile)} HTTP/1.1`, ["Host: evil.example", `X-Evil: ${hostile}`]],
      [0.1, "HttpRequestEnd", "0 bytes"],
      [0.2, "HttpResponseStart", "HTTP/1.1 200 <b>OK</b>", [`Content-Type: ${hostile}`]]
    ])
    const har: HarDocument = JSON.parse(JSON.stringify(toHar([evil], options)))
    const [entry] = har.log.entries
    expect(entry.request.headers[1]).toEqual({ name: "X-Evil", value: hostile })
    expect(entry.request.queryString).toEqual([{ name: "q", value: hostile }])
    expect(entry.response.statusText).toBe("<b>OK</b>")
    expect(entry.response.content.mimeType).toBe(hostile)
  })

  it("sorts entries by start across connections, and has none for TLS or unknown connections", () => {
    const early = connectionOf(10, "early.example", [
      [0.1, "SocksRequestStart"],
      [0.2, "SocksResponseEnd"],
      [0.25, "HttpRequestStart", "GET / HTTP/1.1", ["Host: early.example"]]
    ])
    const unknown = connectionOf(11, "odd.example", [[0, "SocksRequestStart"], [0.1, "SocksResponseEnd"]], { protocol: "unknown" })
    const entries = toHar([keepAlive, tls, unknown, early, unanswered], options).log.entries
    expect(entries.map((e) => [e.connection, e.startedDateTime])).toEqual([["10", at(0.15)], ["1", at(0.2)], ["2", at(0.6)], ["1", at(3.1)]])
  })

  it("says in a comment when connect includes a SOCKS delay injected by MITM", () => {
    const delayed = connectionOf(12, "d.example", [
      [0, "SocksRequestStart"],
      [0, "DelayStart", "SOCKS connect held 400ms"],
      [0.4, "DelayEnd", "SOCKS connect released"],
      [0.5, "SocksResponseEnd"],
      [0.6, "HttpRequestStart", "GET / HTTP/1.1"],
      [0.6, "HttpRequestEnd", "0 bytes"],
      [0.7, "HttpResponseStart", "HTTP/1.1 204 No Content"],
      [0.7, "HttpResponseEnd", "0 bytes"]
    ])
    const [entry] = toHar([delayed], options).log.entries
    expect(entry.timings).toMatchObject({ blocked: -1, connect: 500, wait: 100 })
    expect(entry.comment).toBe("connect includes 400 ms of SOCKS delay injected by MITM")
  })

  it("notes that a compressed body's size is the encoded size", () => {
    const gzip = connectionOf(13, "example.com", [
      [0, "SocksRequestStart"],
      [0, "SocksResponseEnd"],
      [0, "HttpRequestStart", "GET / HTTP/1.1", ["Host: example.com"]],
      [0, "HttpRequestEnd", "0 bytes"],
      [0.1, "HttpResponseStart", "HTTP/1.1 200 OK", ["Content-Encoding: gzip", "Transfer-Encoding: chunked"]],
      [0.2, "HttpResponseEnd", "300 bytes"]
    ])
    const [entry] = toHar([gzip], options).log.entries
    expect(entry.response.content).toEqual({ size: 300, mimeType: "", comment: "size is of the gzip-encoded body: MITM keeps no bodies and decompresses none" })
  })
})
