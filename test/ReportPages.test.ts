/**
 * The pages rendered from connections built by hand: the event log layout,
 * the settings form, and captured text that must show as text everywhere.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Connection } from "../src/domain/Connection.js"
import { defaultSettings } from "../src/domain/Settings.js"
import { summarize } from "../src/domain/Summary.js"
import { connectionBody, eventLog, formatEvent } from "../src/http/ConnectionPage.js"
import { reportBody } from "../src/http/ReportPage.js"
import { settingsBody, settingsDocumentFromForm } from "../src/http/SettingsPage.js"
import { type ConnectionEvent, stamp } from "../src/domain/Event.js"
import { closed, connectionWith, decodeError, httpExchange, socksReply, socksRequest, type Timed, tlsClientHello } from "./support/Measurements.js"

const hostile = `<script>alert(1)</script>"'></svg>`

/** A GET and its 200 as the real decoder reports them. */
const getAndOk = httpExchange(
  "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n",
  `HTTP/1.1 200 OK\r\nContent-Length: 4900\r\n\r\n${"x".repeat(4900)}`,
  [1.2, 3.4, 5.0]
).events

const events = (timed: ReadonlyArray<Timed>): ReadonlyArray<ConnectionEvent> => timed.map(([time, facts]) => stamp(time, facts))

const connection = (overrides: Partial<Connection> = {}): Connection =>
  connectionWith(7, "example.com", [
    [0.249, socksRequest("example.com", 80)],
    [1.1, socksReply()],
    ...getAndOk,
    [5.402, closed(120, 5000)]
  ], { client: "127.0.0.1:50312", bytesUp: 120, bytesDown: 5000, ...overrides })

describe("the connection page", () => {
  it("lays the event log out as `000.249  HttpRequestStart  GET / HTTP/1.1`", () => {
    expect(formatEvent(stamp(0.249, { type: "HttpRequestStart", exchange: 0, method: "GET", target: "/", httpVersion: "HTTP/1.1", headers: [] }), "first"))
      .toBe("000.249  HttpRequestStart    GET / HTTP/1.1")
    expect(formatEvent(stamp(12.5, socksReply()), "first"))
      .toBe("012.500  SocksResponseEnd    succeeded")
  })

  it("shows only first lines, or every header line indented below its request/response, per the setting", () => {
    const first = eventLog(connection(), "first")
    expect(first.split("\n")).toHaveLength(7)
    expect(first).not.toContain("Accept: */*")
    const all = eventLog(connection(), "all").split("\n")
    expect(all).toHaveLength(10)
    expect(all[3]).toBe(`${" ".repeat(29)}Host: example.com`)
  })

  it("shows ID, server, port, client, upstream, state, bytes and the decode error plainly", () => {
    const page = connectionBody({
      connection: connection({ events: [...connection().events, stamp(5.1, decodeError("HttpParseError", "invalid header line 3"))] }),
      headers: "first",
      now: 6,
      version: 1
    }).text
    for (const text of ["example.com", "127.0.0.1:50312", "socks5://127.0.0.1:9050", "120 up, 5000 down", "HttpParseError: invalid header line 3"]) {
      expect(page).toContain(text)
    }
  })

  it("escapes captured text: host, request line, headers and error", () => {
    const page = connectionBody({
      connection: connection({
        host: hostile,
        error: hostile,
        isolation: hostile,
        events: events(httpExchange(`GET /${hostile} HTTP/1.1\r\nX-Evil: ${hostile}\r\n\r\n`, "", [1, 1, 1]).events)
      }),
      headers: "all",
      now: 6,
      version: 1
    }).text
    expect(page).not.toContain("<script>alert(1)")
    expect(page).not.toContain(`"'></svg>`)
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;/svg&gt;")
  })
})

describe("hostile TLS and decode-error text", () => {
  it("shows a hostile SNI and decode error as text in the connection page, its graph and the report", () => {
    const evil = connection({
      protocol: "tls",
      events: events([
        [0, socksRequest("example.com", 443)],
        [0.1, tlsClientHello(hostile)],
        [0.2, decodeError("TlsParseError", hostile, "Hello")]
      ])
    })
    for (const page of [
      connectionBody({ connection: evil, headers: "all", now: 1, version: 1 }).text,
      reportBody({ connections: [evil], counts: { total: 1, evicted: 0, eventsCut: 0 }, now: 1, version: 1, filter: { live: true } }).text
    ]) {
      expect(page).not.toContain("<script>alert(1)")
      expect(page).not.toContain(`"'></svg>`)
    }
    expect(connectionBody({ connection: evil, headers: "all", now: 1, version: 1 }).text).toContain("SNI &lt;script&gt;alert(1)&lt;/script&gt;")
  })
})

describe("the report page", () => {
  it("has the summary, the graph, the server table and the connection list, all escaped", () => {
    const page = reportBody({
      connections: [connection(), connection({ id: 8, host: hostile, state: "open", closedAt: null })],
      counts: { total: 8, evicted: 6, eventsCut: 0 },
      now: 9,
      version: 3,
      filter: { live: true }
    }).text
    expect(page).toContain(`id="timegraph"`)
    expect(page).toContain(`id="servers"`)
    expect(page).toContain("there are still open connections")
    expect(page).toContain("6 oldest closed connections evicted")
    expect(page).not.toContain("<script>alert(1)")
  })

  it("summarizes the page load: totals, first request to last byte, slowest SOCKS setups and responses", () => {
    const summary = summarize([connection(), connection({ id: 8, host: "slow.example", openedAt: 1, events: events([[1, socksRequest("slow.example")], [4, socksReply()]]) })])
    expect(summary).toMatchObject({ servers: 2, connections: 2, requests: 1, responses: 1, firstRequestToLastByte: { from: 1.2, to: 5 } })
    expect(summary.slowestSocksSetups[0]).toMatchObject({ id: 8, host: "slow.example", seconds: 3 })
    expect(summary.slowestResponses[0]).toMatchObject({ id: 7, requestLine: "GET / HTTP/1.1" })
    expect(summary.slowestResponses[0].seconds).toBeCloseTo(2.2)
  })
})

describe("the settings page", () => {
  it("carries the page's token and shows an invalid field next to the field with what it accepts", () => {
    const page = settingsBody({
      settings: defaultSettings,
      token: "tok-123",
      submitted: { socksDelay: hostile },
      error: { field: "socksDelay", message: `socksDelay: expected 0, a duration like 250ms or 1.5s, or a range like 200ms..800ms, got "x"` }
    }).text
    expect(page).toContain(`name="token" value="tok-123"`)
    expect(page).toMatch(/id="error-socksDelay">socksDelay: expected 0/)
    expect(page).not.toContain("<script>alert(1)")
  })

  it("warns plainly when traffic does not go through Tor", () => {
    const page = settingsBody({ settings: { ...defaultSettings, upstream: { _tag: "Direct" } }, token: "t", notice: "switchedToDirect" }).text
    expect(page).toContain("Traffic no longer goes through Tor")
    expect(page).toContain("Traffic does not go through Tor")
  })

  it("turns a posted form into a settings document for the one schema", () => {
    expect(settingsDocumentFromForm({ headers: "all", maxConnections: " 50 ", socksDelay: " 1s ", token: "x" }))
      .toEqual({ headers: "all", maxConnections: 50, socksDelay: "1s" })
    expect(settingsDocumentFromForm({ maxConnections: "many" })).toEqual({ maxConnections: "many" })
  })
})
