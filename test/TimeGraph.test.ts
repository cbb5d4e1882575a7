import { describe, expect, it } from "@effect/vitest"
import { phasesOf, renderTimeGraph } from "../src/http/TimeGraph.js"
import { connectionOf } from "./support/Connections.js"

const hostile = `<script>alert(1)</script>"'></svg>`

const pageLoad = connectionOf(1, "example.com", [
  [0, "SocksRequestStart", "example.com:80"],
  [0.1, "DelayStart", "SOCKS connect held 300ms"],
  [0.4, "DelayEnd", "SOCKS connect released"],
  [0.8, "SocksResponseEnd", "succeeded"],
  [1.0, "HttpRequestStart", "GET / HTTP/1.1"],
  [1.0, "HttpRequestEnd", "0 bytes"],
  [2.5, "HttpResponseStart", "HTTP/1.1 200 OK"],
  [3.0, "HttpResponseEnd", "4900 bytes"],
  [3.2, "ConnectionClose", "closed by server"]
])

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length

describe("the time graph", () => {
  it("tells SOCKS setup, injected delay, waiting, transfer and idle apart", () => {
    expect(phasesOf(pageLoad, 10)).toEqual([
      { kind: "socks", start: 0, end: 0.1 },
      { kind: "delay", start: 0.1, end: 0.4 },
      { kind: "socks", start: 0.4, end: 0.8 },
      { kind: "idle", start: 0.8, end: 1.0 },
      { kind: "waiting", start: 1.0, end: 2.5 },
      { kind: "transfer", start: 2.5, end: 3.0 },
      { kind: "idle", start: 3.0, end: 3.2 }
    ])
  })

  it("draws an open connection to now, a TLS handshake, and an unanswered request waiting until now", () => {
    const open = connectionOf(2, "tls.example", [
      [1, "SocksRequestStart"],
      [1.5, "SocksResponseEnd", "succeeded"],
      [1.6, "TlsClientHello", "SNI tls.example"],
      [2.0, "TlsServerHello", "TLS 1.3"]
    ])
    expect(phasesOf(open, 5)).toEqual([
      { kind: "socks", start: 1, end: 1.5 },
      { kind: "idle", start: 1.5, end: 1.6 },
      { kind: "tls", start: 1.6, end: 2.0 },
      { kind: "idle", start: 2.0, end: 5 }
    ])
    const waiting = connectionOf(3, "slow.example", [[0, "SocksRequestStart"], [0.2, "SocksResponseEnd"], [0.3, "HttpRequestStart", "GET /slow HTTP/1.1"]])
    expect(phasesOf(waiting, 4).at(-1)).toEqual({ kind: "waiting", start: 0.3, end: 4 })
    const svg = renderTimeGraph([open], { now: 5 }).text
    expect(svg).toContain("open (drawn to now)")
    expect(svg).toMatch(/<g class="row open" data-id="2">/)
  })

  it("has one row per connection, grouped by server in order of first appearance, each linked with a tooltip", () => {
    const connections = [
      connectionOf(1, "b.example", [[0, "SocksRequestStart"], [1, "ConnectionClose"]]),
      connectionOf(2, "a.example", [[0.5, "SocksRequestStart"], [2, "ConnectionClose"]]),
      connectionOf(3, "b.example", [[0.7, "SocksRequestStart"], [2.5, "ConnectionClose"]])
    ]
    const svg = renderTimeGraph(connections, { now: 3 }).text
    const rows = Array.from(svg.matchAll(/<g class="row [a-z]+" data-id="(\d+)">/g), (m) => Number(m[1]))
    expect(rows).toEqual([1, 3, 2])
    expect(svg.indexOf(">b.example</a>")).toBeLessThan(svg.indexOf(">a.example</a>"))
    for (const id of [1, 2, 3]) expect(svg).toContain(`<a href="/connections/${id}"><title>#${id} `)
  })

  it("draws a circle for every request and response start, each in a link with its line in the tooltip", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    expect(count(svg, /<a href="\/connections\/1"><circle class="req"/g)).toBe(1)
    expect(count(svg, /<a href="\/connections\/1"><circle class="res"/g)).toBe(1)
    expect(svg).toMatch(/<a href="\/connections\/1"><circle class="req"[^>]*><title>request 1\.000 s: GET \/ HTTP\/1\.1\nresponse after 1\.500 s/)
    expect(svg).toMatch(/<title>response 2\.500 s: HTTP\/1\.1 200 OK\nfor GET \/ HTTP\/1\.1\nbody 4900 bytes/)
    const phases = count(svg, /<a href="\/connections\/1"><rect class="(socks|delay|tls|waiting|transfer|idle)"/g)
    expect(phases).toBe(7)
  })

  it("labels the axis with 1-2-5 steps in seconds, and has a legend", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    for (const label of ["0.0 s", "0.5 s", "1.0 s", "3.0 s"]) expect(svg).toContain(`>${label}</text>`)
    for (const name of ["SOCKS setup (Tor stream setup)", "delay injected by MITM", "waiting for the server", "response transfer", "request", "response"]) {
      expect(svg).toContain(`>${name}</text>`)
    }
  })

  it("shows a failed connection's error in its tooltip", () => {
    const failed = connectionOf(4, "gone.example", [[0, "SocksRequestStart"], [0.3, "SocksResponseEnd", "host unreachable"], [0.3, "ConnectionClose"]], {
      state: "failed",
      error: "Rejected: SOCKS upstream replied 0x04"
    })
    const svg = renderTimeGraph([failed], { now: 1 }).text
    expect(svg).toContain(`<g class="row failed" data-id="4">`)
    expect(svg).toContain("error: Rejected: SOCKS upstream replied 0x04")
  })

  it("escapes captured text in hosts, request lines and errors", () => {
    const evil = connectionOf(5, hostile, [[0, "SocksRequestStart"], [0.1, "HttpRequestStart", `GET /${hostile} HTTP/1.1`], [0.2, "HttpResponseStart", `HTTP/1.1 200 ${hostile}`]], { error: hostile })
    const svg = renderTimeGraph([evil], { now: 1 }).text
    expect(svg).not.toContain("<script>")
    expect(svg.match(/<\/svg>/g)).toHaveLength(1)
    expect(svg).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;/svg&gt;")
  })

  it("filters by time window and by server", () => {
    const connections = [
      connectionOf(1, "a.example", [[0, "SocksRequestStart"], [1, "ConnectionClose"]]),
      connectionOf(2, "b.example", [[5, "SocksRequestStart"], [6, "ConnectionClose"]]),
      connectionOf(3, "a.example", [[8, "SocksRequestStart"]])
    ]
    const ids = (svg: string) => Array.from(svg.matchAll(/data-id="(\d+)"/g), (m) => Number(m[1]))
    expect(ids(renderTimeGraph(connections, { now: 10, from: 4, to: 7 }).text)).toEqual([2])
    expect(ids(renderTimeGraph(connections, { now: 10, host: "a.example" }).text)).toEqual([1, 3])
    expect(renderTimeGraph(connections, { now: 10, host: "none.example" }).text).toContain("No connections yet")
  })

  it("stays compact at 10,000 connections", () => {
    const many = Array.from({ length: 10_000 }, (_, i) =>
      connectionOf(i + 1, `host${i % 50}.example`, [[i / 100, "SocksRequestStart"], [i / 100 + 0.2, "SocksResponseEnd"], [i / 100 + 0.3, "HttpRequestStart", "GET / HTTP/1.1"], [i / 100 + 0.5, "HttpResponseStart", "HTTP/1.1 200 OK"], [i / 100 + 0.6, "HttpResponseEnd", "10 bytes"], [i / 100 + 0.7, "ConnectionClose"]]))
    const svg = renderTimeGraph(many, { now: 200 }).text
    expect(count(svg, /<g class="row/g)).toBe(10_000)
    expect(svg.length / 10_000).toBeLessThan(3000)
  })
})
