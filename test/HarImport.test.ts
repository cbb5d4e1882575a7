/**
 * Foreign HARs as measurements: a hand-checked Firefox-style export (connection = the
 * port, timezone offsets, -1 timings, a blocked request, `_` extensions, pages),
 * Chromium's connection ids and `_transferSize`, entries without connection or
 * timings, and MITM's own HAR read back without `_mitm`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fs from "node:fs"
import { sessionSummary } from "../src/domain/Comparison.js"
import { exchanges } from "../src/domain/Exchange.js"
import { toHar } from "../src/http/Har.js"
import { decodeHar, harTitle, measurementsOfHar } from "../src/http/HarImport.js"
import { openHar } from "../src/http/SessionFile.js"
import { phasesOf } from "../src/http/TimeGraphLayout.js"
import { closed, connectionWith, delayEnd, delayStart, httpExchange, socksReply, socksRequest } from "./support/Measurements.js"

const firefox = JSON.parse(fs.readFileSync(new URL("./fixtures/firefox.har", import.meta.url), "utf8"))

const decoded = (document: unknown) => Either.getOrThrow(decodeHar(document))

/** A connection's events as [time, type], to compare with the hand-checked ones. */
const timeline = (connection: { readonly events: ReadonlyArray<{ readonly time: number; readonly type: string }> }) =>
  connection.events.map((event) => [event.time, event.type])

const entry = (fields: Record<string, unknown>) => ({
  startedDateTime: "2026-12-01T09:00:00.000Z",
  request: { method: "GET", url: "http://example.com/", httpVersion: "HTTP/1.1", headers: [] },
  response: { status: 200, statusText: "OK", httpVersion: "HTTP/1.1", headers: [], content: { size: 100 } },
  timings: { send: 0, wait: 10, receive: 0 },
  ...fields
})

describe("importing a HAR", () => {
  it("a Firefox export (hand-checked): one connection per entry (Firefox's connection is the port), phases from its timings, -1 as absent", () => {
    const measurements = measurementsOfHar(decoded(firefox))
    expect(harTitle(decoded(firefox))).toBe("Example page")
    // The page began at 10:00:00.000+01:00.
    expect(measurements.sessionStartMillis).toBe(Date.UTC(2026, 11, 1, 9, 0, 0))
    const [page, style, script, pixel] = measurements.connections
    expect(measurements.connections.map((c) => [c.id, c.host, c.port, c.protocol, c.state])).toEqual([
      [1, "example.com", 443, "tls", "closed"],
      [2, "example.com", 443, "tls", "closed"],
      [3, "cdn.example.net", 80, "http", "closed"],
      [4, "tracker.example.org", 443, "tls", "failed"]
    ])
    // blocked 0, dns 12, connect 40 of which ssl 25, send 0, wait 80, receive 3.
    expect(timeline(page)).toEqual([
      [0, "SocksRequestStart"],
      [0.027, "SocksResponseEnd"],
      [0.027, "TlsClientHello"],
      [0.052, "TlsServerHello"],
      [0.052, "HttpRequestStart"],
      [0.052, "HttpRequestEnd"],
      [0.132, "HttpResponseStart"],
      [0.135, "HttpResponseEnd"]
    ])
    // Started at 0.140, blocked 1, no new connection (-1), wait 45, receive 2.
    expect(timeline(style)).toEqual([[0.141, "HttpRequestStart"], [0.141, "HttpRequestEnd"], [0.186, "HttpResponseStart"], [0.188, "HttpResponseEnd"]])
    // Started at 0.150, dns 5, connect 20, no ssl, send 1, wait 30, receive 4.
    expect(timeline(script)).toEqual([
      [0.15, "SocksRequestStart"],
      [0.175, "SocksResponseEnd"],
      [0.175, "HttpRequestStart"],
      [0.176, "HttpRequestEnd"],
      [0.206, "HttpResponseStart"],
      [0.21, "HttpResponseEnd"]
    ])
    expect(timeline(pixel)).toEqual([[0.16, "HttpRequestStart"], [0.16, "HttpRequestEnd"]])
    expect(pixel.error).toBe("no response (status 0)")
    expect([page.bytesUp, page.bytesDown, style.bytesDown, script.bytesDown, pixel.bytesDown]).toEqual([410, 1576, 250, 5300, 0])

    expect(exchanges(style).map((e) => [e.method, e.url, e.status, e.wait])).toEqual([["GET", "https://example.com/style.css?v=2", 304, 0.045]])
    expect(page.events.find((e) => e.type === "HttpRequestStart")).toMatchObject({
      method: "GET",
      target: "https://example.com/",
      httpVersion: "HTTP/2",
      headers: ["Host: example.com", "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"]
    })
    expect(phasesOf(page, 1).map((p) => [p.kind, p.start, p.end])).toEqual([
      ["socks", 0, 0.027],
      ["tls", 0.027, 0.052],
      ["waiting", 0.052, 0.132],
      ["transfer", 0.132, 0.135]
    ])
    expect(sessionSummary(measurements.connections)).toEqual({
      connections: 4,
      requests: 4,
      responses: 3,
      bytesDown: 7126,
      firstRequestToLastByte: 0.158,
      // (0.027 + 0.025) / 2; a wait is request start → response start, send included: (0.080 + 0.045 + 0.031) / 3
      meanSocksSetup: 0.026,
      meanWait: 0.052
    })
  })

  it("Chromium's connection ids group entries (per host), its _transferSize counts the bytes; no connection id or no timings: an entry of its own, its time its wait", () => {
    const measurements = measurementsOfHar(decoded({
      log: {
        creator: { name: "WebInspector", version: "537.36" },
        entries: [
          entry({ connection: "12", timings: { blocked: 2, dns: -1, connect: 30, ssl: -1, send: 1, wait: 20, receive: 5 }, response: { status: 200, content: { size: 100 }, _transferSize: 400 } }),
          entry({ startedDateTime: "2026-12-01T09:00:00.100Z", connection: "12", request: { method: "GET", url: "http://example.com/b" } }),
          entry({ startedDateTime: "2026-12-01T09:00:00.100Z", connection: "12", request: { method: "GET", url: "http://other.example/" } }),
          entry({ startedDateTime: "2026-12-01T09:00:00.200Z" }),
          entry({ startedDateTime: "2026-12-01T09:00:00.300Z", timings: undefined, time: 75 })
        ]
      }
    }))
    expect(measurements.connections.map((c) => [c.host, exchanges(c).length])).toEqual([["example.com", 2], ["other.example", 1], ["example.com", 1], ["example.com", 1]])
    const [shared] = measurements.connections
    expect(shared.bytesDown).toBe(400 + 100)
    expect(timeline(shared).slice(0, 3)).toEqual([[0.002, "SocksRequestStart"], [0.032, "SocksResponseEnd"], [0.032, "HttpRequestStart"]])
    expect(exchanges(measurements.connections[3])[0]).toMatchObject({ requestStart: 0.3, wait: 0.075 })
  })

  it("a plain http entry has no TLS handshake, whatever its ssl time says (Playwright writes one); an https one has it inside connect", () => {
    const [http, https] = measurementsOfHar(decoded({
      log: {
        creator: { name: "Playwright", version: "1.65.1" },
        entries: [
          entry({ timings: { dns: -1, connect: 16.5, ssl: 17.5, send: 0, wait: 4, receive: 30 } }),
          entry({ request: { method: "GET", url: "https://example.com/" }, timings: { dns: -1, connect: 30, ssl: 20, send: 0, wait: 4, receive: 30 } })
        ]
      }
    })).connections
    expect(timeline(http).slice(0, 3)).toEqual([[0, "SocksRequestStart"], [0.0165, "SocksResponseEnd"], [0.0165, "HttpRequestStart"]])
    expect(timeline(https).slice(0, 5)).toEqual([[0, "SocksRequestStart"], [0.01, "SocksResponseEnd"], [0.01, "TlsClientHello"], [0.03, "TlsServerHello"], [0.03, "HttpRequestStart"]])
  })

  it("MITM's own HAR without _mitm reads back as the same exchanges: blocked is the injected HTTP delay inside the wait", () => {
    const a = httpExchange("GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", [0.5, 1.1, 1.2])
    const b = httpExchange("GET /b HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", [1.3, 1.45, 1.45], a.state)
    const original = connectionWith(1, "example.com", [
      [0.1, socksRequest("example.com")],
      [0.4, socksReply()],
      ...a.events.slice(0, 2),
      [0.5, delayStart("http", 300, 0)],
      [0.8, delayEnd("http", 300, 0)],
      ...a.events.slice(2),
      ...b.events,
      [1.5, closed(80, 120)]
    ])
    const har = JSON.parse(JSON.stringify(toHar([original], { sessionStartMillis: Date.UTC(2026, 11, 1), creatorVersion: "test" })))
    const opened = Either.getOrThrow(openHar(har))
    expect(opened.head).toBeUndefined()
    const [imported] = opened.measurements.connections
    const fields = (connection: typeof original) =>
      exchanges(connection).map((e) => ({ url: e.url, method: e.method, status: e.status, wait: e.wait, blocked: e.blocked, requestStart: e.requestStart }))
    expect(fields(imported)).toEqual(fields(original))
    expect(imported.events.find((e) => e.type === "SocksResponseEnd")!.time - imported.openedAt).toBeCloseTo(0.3, 6)
  })
})
