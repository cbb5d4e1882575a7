import { describe, expect, it } from "@effect/vitest"
import { Ajv } from "ajv"
import { createRequire } from "node:module"
import { toHar } from "../src/http/Har.js"
import { connectionOf } from "./support/Connections.js"

const require = createRequire(import.meta.url)
const harSchemas = require("har-schema") as Record<string, object>

/** A validator for the HAR 1.2 JSON schema (draft-06, as published in har-schema). */
const validator = () => {
  const ajv = new Ajv({ allErrors: true, strict: false })
  ajv.addMetaSchema(require("ajv/dist/refs/json-schema-draft-06.json"))
  for (const [name, schema] of Object.entries(harSchemas)) if (name !== "har") ajv.addSchema(schema)
  return ajv.compile(harSchemas.har)
}

const start = Date.UTC(2026, 10, 26, 12, 0, 0)
const options = { sessionStartMillis: start, creatorVersion: "0.1.0" }

const keepAlive = connectionOf(1, "example.com", [
  [0, "SocksRequestStart", "example.com:80"],
  [0.8, "SocksResponseEnd", "succeeded"],
  [1.0, "HttpRequestStart", "GET /search?q=tor&lang=en HTTP/1.1", ["Host: example.com", "Cookie: a=1; b=2", "Accept: */*"]],
  [1.0, "HttpRequestEnd", "0 bytes"],
  [2.5, "HttpResponseStart", "HTTP/1.1 302 Found", ["Location: http://example.com/next", "Content-Type: text/html; charset=utf-8", "Content-Length: 12"]],
  [3.0, "HttpResponseEnd", "12 bytes"],
  [3.1, "HttpRequestStart", "POST /form HTTP/1.1", ["Host: example.com", "Content-Length: 5"]],
  [3.1, "DelayStart", "HTTP request held 300ms"],
  [3.4, "DelayEnd", "HTTP request released"],
  [3.4, "HttpRequestEnd", "5 bytes"],
  [3.6, "HttpResponseStart", "HTTP/1.1 200 OK", ["Content-Length: 2"]],
  [3.7, "HttpResponseEnd", "2 bytes"],
  [4.0, "ConnectionClose", "closed by client"]
])

describe("the HAR export", () => {
  it("validates against the HAR 1.2 schema, and the validator does reject a broken document", () => {
    const validate = validator()
    const unanswered = connectionOf(2, "slow.example", [[0.5, "SocksRequestStart"], [0.6, "SocksResponseEnd"], [0.7, "HttpRequestStart", "GET / HTTP/1.1", ["Host: slow.example"]]])
    const har = toHar([keepAlive, unanswered], options)
    expect(validate(har), JSON.stringify(validate.errors)).toBe(true)
    const broken = { log: { ...har.log, entries: [{ ...har.log.entries[0], request: undefined }] } }
    expect(validate(JSON.parse(JSON.stringify(broken)))).toBe(false)
  })

  it("times the first request with the SOCKS setup as connect, and later ones on the connection without", () => {
    const [first, second] = toHar([keepAlive], options).log.entries
    expect(first.timings).toEqual({ blocked: -1, dns: -1, connect: 800, send: 0, wait: 1500, receive: 500, ssl: -1 })
    expect(first.time).toBe(2800)
    expect(first.startedDateTime).toBe("2026-11-26T12:00:00.000Z")
    expect(first.connection).toBe("1")
    expect(second.timings).toEqual({ blocked: 300, dns: -1, connect: -1, send: 0, wait: 200, receive: 100, ssl: -1 })
    expect(second.startedDateTime).toBe("2026-11-26T12:00:03.100Z")
  })

  it("builds the URL from Host and target, and parses query, headers, cookies, status and redirect", () => {
    const [first] = toHar([keepAlive], options).log.entries
    expect(first.request).toMatchObject({
      method: "GET",
      url: "http://example.com/search?q=tor&lang=en",
      httpVersion: "HTTP/1.1",
      queryString: [{ name: "q", value: "tor" }, { name: "lang", value: "en" }],
      cookies: [{ name: "a", value: "1" }, { name: "b", value: "2" }],
      bodySize: 0
    })
    expect(first.request.headers[0]).toEqual({ name: "Host", value: "example.com" })
    expect(first.request.headersSize).toBe("GET /search?q=tor&lang=en HTTP/1.1".length + 2 + "Host: example.com".length + 2 + "Cookie: a=1; b=2".length + 2 + "Accept: */*".length + 2 + 2)
    expect(first.response).toMatchObject({
      status: 302,
      statusText: "Found",
      redirectURL: "http://example.com/next",
      content: { size: 12, mimeType: "text/html; charset=utf-8" },
      bodySize: 12
    })
  })

  it("keeps a request without a response as an entry with status 0", () => {
    const open = connectionOf(3, "slow.example", [[0, "SocksRequestStart"], [0.1, "SocksResponseEnd"], [0.2, "HttpRequestStart", "GET /x HTTP/1.1"]], { port: 8080 })
    const [entry] = toHar([open], options).log.entries
    expect(entry.request.url).toBe("http://slow.example:8080/x")
    expect(entry.response.status).toBe(0)
    expect(entry.timings.wait).toBe(-1)
    expect(entry.response.comment).toBe("no response yet")
  })

  it("keeps hostile header values verbatim (HAR is data), and sorts entries by start across connections", () => {
    const hostile = `<script>alert(1)</script>"'`
    const early = connectionOf(4, "early.example", [[0.1, "SocksRequestStart"], [0.2, "SocksResponseEnd"], [0.3, "HttpRequestStart", "GET / HTTP/1.1", [`X-Evil: ${hostile}`]]])
    const entries = toHar([keepAlive, early], options).log.entries
    expect(entries.map((e) => e.connection)).toEqual(["1", "4", "1"])
    expect(entries[1].request.headers).toEqual([{ name: "X-Evil", value: hostile }])
  })

  it("says in a comment when connect includes a SOCKS delay injected by MITM", () => {
    const delayed = connectionOf(5, "d.example", [[0, "SocksRequestStart"], [0, "DelayStart", "SOCKS connect held 400ms"], [0.4, "DelayEnd", "SOCKS connect released"], [0.5, "SocksResponseEnd"], [0.6, "HttpRequestStart", "GET / HTTP/1.1"], [0.6, "HttpRequestEnd", "0 bytes"], [0.7, "HttpResponseStart", "HTTP/1.1 204 No Content"], [0.7, "HttpResponseEnd", "0 bytes"]])
    const [entry] = toHar([delayed], options).log.entries
    expect(entry.timings.connect).toBe(500)
    expect(entry.comment).toBe("connect includes 400 ms of SOCKS delay injected by MITM")
  })
})
