import { describe, expect, it } from "@effect/vitest"
import type { Connection } from "../src/domain/Connection.js"
import { phasesOf, renderTimeGraph } from "../src/http/TimeGraph.js"
import { connectionOf, type EventSpec } from "./support/Connections.js"

const hostile = `<script>alert(1)</script>"'></svg>`
const hostileEscaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;/svg&gt;"

/** SOCKS setup 0 → 0.8 with 0.3 s of injected delay inside, one request answered, closed at 3.2. */
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

/** A connection with `exchanges` requests, each answered 0.2 s later and received 0.1 s after that. */
const simple = (id: number, host: string, at: number, exchanges = 1, port = 80): Connection => {
  const events: Array<EventSpec> = [[at, "SocksRequestStart", `${host}:${port}`], [at + 0.2, "SocksResponseEnd", "succeeded"]]
  for (let k = 0; k < exchanges; k++) {
    const t = at + 0.3 + k * 0.4
    events.push([t, "HttpRequestStart", `GET /${k} HTTP/1.1`], [t + 0.2, "HttpResponseStart", "HTTP/1.1 200 OK"], [t + 0.3, "HttpResponseEnd", "10 bytes"])
  }
  events.push([at + 0.4 + exchanges * 0.4, "ConnectionClose", "closed by server"])
  return connectionOf(id, host, events, { port })
}

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length
const rowIds = (svg: string) => Array.from(svg.matchAll(/<g class="row [a-z]+" data-id="(\d+)">/g), (m) => Number(m[1]))
const rowOf = (svg: string, id: number) => {
  const start = svg.indexOf(`data-id="${id}">`)
  return svg.slice(start, svg.indexOf("</g>", start))
}
const axisLabels = (svg: string) => {
  const axis = svg.slice(svg.indexOf(`<g class="axis">`), svg.indexOf("</g>", svg.indexOf(`<g class="axis">`)))
  return Array.from(axis.matchAll(/>([^<]+ s)<\/text>/g), (m) => m[1])
}
const numberAttribute = (element: string, name: string) => Number(new RegExp(` ${name}="([-\\d.]+)"`).exec(element)![1])

describe("the phases of a connection", () => {
  it("tell SOCKS setup, injected delay, waiting, transfer and idle apart, covering the bar once", () => {
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

  it("run to now on an open connection: a TLS handshake, then idle", () => {
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
  })

  it("keep an unanswered request waiting until now, and SOCKS setup without a reply until the close", () => {
    const waiting = connectionOf(3, "slow.example", [[0, "SocksRequestStart"], [0.2, "SocksResponseEnd"], [0.3, "HttpRequestStart", "GET /slow HTTP/1.1"]])
    expect(phasesOf(waiting, 4).at(-1)).toEqual({ kind: "waiting", start: 0.3, end: 4 })
    const refused = connectionOf(4, "gone.example", [[0, "SocksRequestStart"], [2, "ConnectionClose"]], { state: "failed", error: "timed out" })
    expect(phasesOf(refused, 9)).toEqual([{ kind: "socks", start: 0, end: 2 }])
  })

  it("show an HTTP delay apart from the server's time, and a transfer over the next pipelined request's wait", () => {
    const held = connectionOf(5, "a.example", [
      [0, "SocksRequestStart"],
      [0.5, "SocksResponseEnd"],
      [1, "HttpRequestStart", "GET /a HTTP/1.1"],
      [1, "DelayStart", "HTTP request held 500ms"],
      [1.5, "DelayEnd", "HTTP request released"],
      [2, "HttpRequestStart", "GET /b HTTP/1.1"],
      [2.5, "HttpResponseStart", "HTTP/1.1 200 OK"],
      [3, "HttpResponseEnd", "10 bytes"],
      [3.5, "HttpResponseStart", "HTTP/1.1 404 Not Found"],
      [4, "HttpResponseEnd", "0 bytes"],
      [4, "ConnectionClose"]
    ])
    expect(phasesOf(held, 9)).toEqual([
      { kind: "socks", start: 0, end: 0.5 },
      { kind: "idle", start: 0.5, end: 1 },
      { kind: "delay", start: 1, end: 1.5 },
      { kind: "waiting", start: 1.5, end: 2.5 },
      { kind: "transfer", start: 2.5, end: 3 },
      { kind: "waiting", start: 3, end: 3.5 },
      { kind: "transfer", start: 3.5, end: 4 }
    ])
  })
})

describe("the time graph", () => {
  it("is one inline SVG, scaled to its container, labelled for screen readers", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    expect(svg).toMatch(/^<svg id="timegraph" class="tg" xmlns="http:\/\/www\.w3\.org\/2000\/svg" role="img" aria-label="Time graph of 1 connection to 1 server, 0 s to 3\.2 s" viewBox="0 0 1100 \d+" width="100%"/)
    expect(svg.endsWith("</svg>")).toBe(true)
    expect(svg).not.toMatch(/<script|<image|<foreignObject|https?:\/\/(?!www\.w3\.org\/2000\/svg)/)
    // Coordinates are rounded to a tenth of a pixel.
    expect(svg).not.toMatch(/ (x|y|x1|x2|y1|y2|cx|cy|width|height)="-?\d+\.\d{2,}"/)
  })

  it("has one row per connection, grouped by server in order of each server's first connection", () => {
    const connections = [
      simple(4, "a.example", 0.5),
      simple(1, "b.example", 0),
      simple(2, "c.example", 0.7),
      simple(3, "b.example", 0.9),
      simple(5, "a.example", 1.5, 1, 443)
    ]
    const svg = renderTimeGraph(connections, { now: 3 }).text
    expect(rowIds(svg)).toEqual([1, 3, 4, 5, 2])
    const groups = Array.from(svg.matchAll(/<text class="h"[^>]*><a href="\/\?host=([^"]+)">([^<]+)<\/a> <tspan>([^<]*)<\/tspan>/g), (m) => [m[1], m[2], m[3]])
    expect(groups.map(([, host]) => host)).toEqual(["b.example", "a.example", "c.example"])
    expect(groups[0][2]).toBe("2 connections · slowest SOCKS setup 0.200 s · slowest wait for a response 0.200 s")
    expect(groups[2][2]).toMatch(/^1 connection ·/)
    expect(rowOf(svg, 5)).toContain(`>#5 :443</text>`)
    expect(rowOf(svg, 4)).toContain(`>#4 :80</text>`)
  })

  it("wraps every row, bar, phase and circle in a link to its connection, each with a tooltip", () => {
    const connections = [pageLoad, simple(2, "b.example", 0.5, 3), simple(3, "b.example", 1)]
    const svg = renderTimeGraph(connections, { now: 4 }).text
    const rows = Array.from(svg.matchAll(/<g class="row [a-z]+" data-id="(\d+)"><a href="\/connections\/(\d+)"><title>([^<]+)<\/title>([\s\S]*?)<\/a><\/g>/g))
    expect(rows.map((m) => [Number(m[1]), Number(m[2])])).toEqual([[1, 1], [2, 2], [3, 3]])
    for (const [, id, , tip, inside] of rows) {
      expect(tip.startsWith(`#${id} `)).toBe(true)
      expect(count(inside, /<rect class="bar"/g)).toBe(1)
      // Every phase and circle carries its own tooltip.
      expect(count(inside, /<(rect|circle) class="(socks|delay|tls|waiting|transfer|idle|req|res)"[^>]*><title>#\d+ [^<]+<\/title><\/(rect|circle)>/g))
        .toBe(count(inside, /<(rect|circle) class="(socks|delay|tls|waiting|transfer|idle|req|res)"/g))
    }
    // Outside the rows there is nothing to click but the legend's samples and the server links.
    const rest = svg.replace(/<g class="row[\s\S]*?<\/a><\/g>/g, "").replace(/<g class="legend">[\s\S]*?<\/g>\n/, "")
    expect(rest).not.toMatch(/<rect class=|<circle/)
  })

  it("puts the times, the line and the sizes in the tooltips", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    expect(svg).toContain(`<title>#1 example.com:80 · closed\nopened 0.000 s · closed 3.200 s · 3.200 s\nSOCKS reply 0.800 s: succeeded\n1 request, 1 response · 100 bytes up, 1000 bytes down</title>`)
    expect(svg).toContain(`<title>#1 SOCKS setup (Tor stream setup) 0.400 s → 0.800 s (0.400 s)\nexample.com:80 → succeeded</title>`)
    expect(svg).toContain(`<title>#1 delay injected by MITM 0.100 s → 0.400 s (0.300 s)\nSOCKS connect held 300ms</title>`)
    expect(svg).toContain(`<title>#1 waiting for the server 1.000 s → 2.500 s (1.500 s)\nGET / HTTP/1.1, body 0 bytes\n→ HTTP/1.1 200 OK</title>`)
    expect(svg).toContain(`<title>#1 response transfer 2.500 s → 3.000 s (0.500 s)\nHTTP/1.1 200 OK, body 4900 bytes\nfor GET / HTTP/1.1</title>`)
    expect(svg).toContain(`<circle class="req" cx="`)
    expect(svg).toMatch(/<circle class="req"[^>]*><title>#1 request 1\.000 s: GET \/ HTTP\/1\.1\nresponse after 1\.500 s: HTTP\/1\.1 200 OK<\/title>/)
    expect(svg).toMatch(/<circle class="res"[^>]*><title>#1 response 2\.500 s: HTTP\/1\.1 200 OK\nbody 4900 bytes by 3\.000 s\nfor GET \/ HTTP\/1\.1<\/title>/)
  })

  it("draws one circle per request and per response start, told apart by class", () => {
    const connections = [pageLoad, simple(2, "b.example", 0.5, 3), simple(3, "b.example", 1, 2)]
    const svg = renderTimeGraph(connections, { now: 4 }).text
    const events = connections.flatMap((c) => c.events)
    const rows = svg.slice(svg.indexOf(`<g class="row`))
    expect(count(rows, /<circle class="req"/g)).toBe(events.filter((e) => e.type === "HttpRequestStart").length)
    expect(count(rows, /<circle class="res"/g)).toBe(events.filter((e) => e.type === "HttpResponseStart").length)
    expect(count(rows, /<circle/g)).toBe(1 + 1 + 3 + 3 + 2 + 2)
    expect(count(rowOf(svg, 1), /<rect class="(socks|delay|tls|waiting|transfer|idle)"/g)).toBe(phasesOf(pageLoad, 4).length)
  })

  it("draws an open connection to now, with an arrow, a dashed outline and 'open' in its tooltip", () => {
    const open = connectionOf(2, "tls.example", [[1, "SocksRequestStart"], [1.5, "SocksResponseEnd", "succeeded"], [1.6, "TlsClientHello", "SNI tls.example"]])
    const svg = renderTimeGraph([pageLoad, open], { now: 5 }).text
    const row = rowOf(svg, 2)
    expect(svg).toContain(`<g class="row open" data-id="2">`)
    expect(row).toContain(`<title>#2 tls.example:80 · open (drawn to now)\nopened 1.000 s · still open at 5.000 s · 4.000 s\n`)
    expect(row).toContain(`<path class="arrow"`)
    expect(svg).toContain(".tg .open .bar{stroke-dasharray:")
    const bar = /<rect class="bar"[^>]*>/.exec(row)![0]
    const nowLine = /<line class="now"[^>]*>/.exec(svg)![0]
    expect(numberAttribute(bar, "x") + numberAttribute(bar, "width")).toBeCloseTo(numberAttribute(nowLine, "x1") + 0.5, 0)
    expect(row).toContain("\nServerHello not yet</title>")
    expect(rowOf(svg, 1)).not.toContain(`class="arrow"`)
  })

  it("marks a failed connection and shows its error in its tooltip", () => {
    const failed = connectionOf(4, "gone.example", [[0, "SocksRequestStart"], [0.3, "SocksResponseEnd", "host unreachable"], [0.3, "ConnectionClose"]], {
      state: "failed",
      error: "Rejected: SOCKS upstream replied 0x04"
    })
    const svg = renderTimeGraph([failed], { now: 1 }).text
    expect(svg).toContain(`<g class="row failed" data-id="4">`)
    expect(svg).toContain(".tg .failed .bar{stroke:#c62828")
    expect(rowOf(svg, 4)).toContain("\nerror: Rejected: SOCKS upstream replied 0x04</title>")
  })

  it("labels the axis in 1-2-5 steps of seconds, top and bottom", () => {
    expect(axisLabels(renderTimeGraph([pageLoad], { now: 4 }).text))
      .toEqual(["0 s", "0.5 s", "1 s", "1.5 s", "2 s", "2.5 s", "3 s"].flatMap((label) => [label, label]))
    const long = renderTimeGraph([simple(1, "a.example", 3), connectionOf(2, "a.example", [[10, "SocksRequestStart"], [118, "ConnectionClose"]])], { now: 120 }).text
    expect(axisLabels(long).filter((_, i) => i % 2 === 0)).toEqual(["0 s", "20 s", "40 s", "60 s", "80 s", "100 s"])
    const short = renderTimeGraph([connectionOf(1, "a.example", [[2, "SocksRequestStart"], [2.3, "ConnectionClose"]])], { now: 3 }).text
    expect(axisLabels(short).filter((_, i) => i % 2 === 0)).toEqual(["2 s", "2.05 s", "2.1 s", "2.15 s", "2.2 s", "2.25 s", "2.3 s"])
  })

  it("has a legend for every colour and mark", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    const legend = svg.slice(svg.indexOf(`<g class="legend">`), svg.indexOf(`<g class="axis">`))
    for (const kind of ["socks", "delay", "tls", "waiting", "transfer", "idle", "req", "res"]) expect(legend).toMatch(new RegExp(`class="${kind}"`))
    for (const name of ["SOCKS setup (Tor stream setup)", "delay injected by MITM", "TLS handshake", "waiting for the server", "response transfer", "connected, idle", "request sent", "response started", "still open (drawn to now)", "failed"]) {
      expect(legend).toContain(`>${name}</text>`)
    }
  })

  it("shows hostile captured text escaped, never as markup", () => {
    const evil = connectionOf(5, hostile, [
      [0, "SocksRequestStart", `${hostile}:80`],
      [0.05, "DelayStart", hostile],
      [0.06, "DelayEnd"],
      [0.1, "SocksResponseEnd", hostile],
      [0.1, "TlsClientHello", hostile],
      [0.2, "HttpRequestStart", `GET /${hostile} HTTP/1.1`],
      [0.3, "HttpResponseStart", `HTTP/1.1 200 ${hostile}`],
      [0.4, "HttpResponseEnd", hostile]
    ], { error: hostile, state: "failed" })
    const svg = renderTimeGraph([evil], { now: 1 }).text
    expect(svg).not.toContain("<script")
    expect(svg).not.toContain(`"'>`)
    expect(count(svg, /<\/svg>/g)).toBe(1)
    expect(svg.endsWith("</svg>")).toBe(true)
    expect(count(svg, new RegExp(hostileEscaped.replace(/[()]/g, "\\$&"), "g"))).toBeGreaterThanOrEqual(10)
    expect(svg).toContain(`<a href="/?host=${encodeURIComponent(hostile).replace(/'/g, "&#39;")}">${hostileEscaped}</a>`)
    expect(svg).toContain(`\nerror: ${hostileEscaped}</title>`)
  })

  it("draws only the connections in the time window, on an axis spanning the window", () => {
    const connections = [
      simple(1, "a.example", 0),
      connectionOf(2, "b.example", [[3, "SocksRequestStart"], [5, "ConnectionClose"]]),
      simple(3, "b.example", 5.5),
      connectionOf(4, "a.example", [[8, "SocksRequestStart"]])
    ]
    const windowed = renderTimeGraph(connections, { now: 10, from: 4, to: 7 }).text
    expect(rowIds(windowed)).toEqual([2, 3])
    expect(axisLabels(windowed)[0]).toBe("4 s")
    expect(axisLabels(windowed).at(-1)).toBe("7 s")
    // Connection 2 began before the window: its bar starts at the window's edge.
    expect(numberAttribute(/<rect class="bar"[^>]*>/.exec(rowOf(windowed, 2))![0], "x")).toBeCloseTo(112 - 0.5, 1)
    expect(rowIds(renderTimeGraph(connections, { now: 10, from: 7 }).text)).toEqual([4])
    expect(rowIds(renderTimeGraph(connections, { now: 10, to: 2 }).text)).toEqual([1])
  })

  it("draws only the chosen server's connections", () => {
    const connections = [simple(1, "a.example", 0), simple(2, "b.example", 1), simple(3, "a.example", 2)]
    const svg = renderTimeGraph(connections, { now: 10, host: "a.example" }).text
    expect(rowIds(svg)).toEqual([1, 3])
    expect(svg).not.toContain("b.example")
  })

  it("says so when there is nothing to draw, in valid markup", () => {
    const empty = renderTimeGraph([], { now: 0 }).text
    expect(empty).toMatch(/^<svg id="timegraph"[^>]* role="img" aria-label="Time graph: No connections yet"[^>]*>.*No connections yet<\/text><\/svg>$/)
    const filtered = renderTimeGraph([simple(1, "a.example", 0)], { now: 10, host: "none.example" }).text
    expect(filtered).toContain(">No connections match this filter</text>")
  })

  it("stays linear and compact at 10,000 connections: under 2 KB per simple row", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => simple(i + 1, `host${i % 50}.example`, i / 100))
    const svg = renderTimeGraph(many, { now: 200 }).text
    expect(count(svg, /<g class="row/g)).toBe(10_000)
    expect(count(svg.slice(svg.indexOf(`<g class="row`)), /<circle class="re[qs]"/g)).toBe(20_000)
    expect(count(svg, /<defs>/g)).toBe(1)
    expect(svg.length / 10_000).toBeLessThan(2048)
  })
})
