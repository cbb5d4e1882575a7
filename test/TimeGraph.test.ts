import { describe, expect, it } from "@effect/vitest"
import { feedBurst, initialBursts } from "../src/domain/BurstTracker.js"
import type { Connection } from "../src/domain/Connection.js"
import { type ConnectionEvent, type Direction, type EventFacts, stamp } from "../src/domain/Event.js"
import { exchanges } from "../src/domain/Exchange.js"
import { feedHttp, initialHttpDecoder } from "../src/domain/HttpDecoder.js"
import { socksReplyName } from "../src/domain/SocksProtocol.js"
import type { TorAttribution, TorCircuit } from "../src/domain/TorCircuits.js"
import { renderTimeGraph } from "../src/http/TimeGraph.js"
import { circuitHue, layoutTimeGraph, type Phase, phasesOf, type TimeGraphLayout } from "../src/http/TimeGraphLayout.js"
import { connectionOfEvents, torCircuit, torRelay } from "./support/Measurements.js"

// --- connections made of typed events, HTTP ones by the real decoder ---

const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0))

/** HTTP traffic through the real decoder: each chunk's events stamped with its time. */
const http = (...chunks: ReadonlyArray<readonly [time: number, direction: Direction, bytes: string]>): Array<ConnectionEvent> => {
  let state = initialHttpDecoder
  const events: Array<ConnectionEvent> = []
  for (const [time, direction, bytes] of chunks) {
    const [next, out] = feedHttp(state, direction, latin1(bytes))
    state = next
    for (const facts of out) events.push(stamp(time, facts))
  }
  return events
}

/** Encrypted traffic through the real burst tracker: inferred requests and responses. */
const bursts = (...chunks: ReadonlyArray<readonly [time: number, direction: Direction, length: number]>): Array<ConnectionEvent> => {
  let state = initialBursts
  const events: Array<ConnectionEvent> = []
  for (const [time, direction, length] of chunks) {
    const [next, facts] = feedBurst(state, direction, length)
    state = next
    if (facts !== undefined) events.push(stamp(time, facts))
  }
  return events
}

const socksRequest = (time: number, host: string, port = 80) =>
  stamp(time, { type: "SocksRequestStart", host, port, command: "connect", version: 5 })
const socksReply = (time: number, reply = 0) => stamp(time, { type: "SocksResponseEnd", reply, replyName: socksReplyName(5, reply), address: null })
const socksDelay = (from: number, to: number, ms: number) => [
  stamp(from, { type: "DelayStart", delay: "socks", ms, exchange: null }),
  stamp(to, { type: "DelayEnd", delay: "socks", ms, exchange: null })
]
const httpDelay = (from: number, to: number, exchange: number, ms: number) => [
  stamp(from, { type: "DelayStart", delay: "http", ms, exchange }),
  stamp(to, { type: "DelayEnd", delay: "http", ms, exchange })
]
const clientHello = (time: number, sni: string) =>
  stamp(time, { type: "TlsClientHello", sni, alpn: ["h2", "http/1.1"], versions: ["TLS 1.3", "TLS 1.2"] })
const serverHello = (time: number) =>
  stamp(time, { type: "TlsServerHello", tlsVersion: "TLS 1.3", cipher: "TLS_AES_128_GCM_SHA256", alpn: null, helloRetryRequest: false })
const close = (time: number, bytesUp = 100, bytesDown = 1000) =>
  stamp(time, { type: "ConnectionClose", closedBy: "server", bytesUp, bytesDown })

/** A connection from its events (in time order; equal times keep their order), as the store would show it. */
const connectionOf = (id: number, events: ReadonlyArray<ConnectionEvent>, overrides: Partial<Connection> = {}): Connection =>
  connectionOfEvents(id, events.slice().sort((a, b) => a.time - b.time), overrides)

const get = (path: string, host = "example.com") => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`
const ok = (bodyBytes: number, status = "200 OK") => `HTTP/1.1 ${status}\r\nContent-Length: ${bodyBytes}\r\n\r\n`
const body = (bytes: number) => "x".repeat(bytes)

/** SOCKS setup 0 → 0.8 with 0.3 s of injected delay inside, one request answered, closed at 3.2. */
const pageLoad = connectionOf(1, [
  socksRequest(0, "example.com"),
  ...socksDelay(0.1, 0.4, 300),
  socksReply(0.8),
  ...http([1.0, "up", get("/")], [2.5, "down", ok(4900)], [3.0, "down", body(4900)]),
  close(3.2)
])

/** A connection with `count` requests, each answered 0.2 s later and received 0.1 s after that. */
const simple = (id: number, host: string, at: number, count = 1, port = 80): Connection => {
  const chunks: Array<readonly [number, Direction, string]> = []
  for (let k = 0; k < count; k++) {
    const t = at + 0.3 + k * 0.4
    chunks.push([t, "up", get(`/${k}`, host)], [t + 0.2, "down", ok(10)], [t + 0.3, "down", body(10)])
  }
  return connectionOf(id, [socksRequest(at, host, port), socksReply(at + 0.2), ...http(...chunks), close(at + 0.4 + count * 0.4)])
}

/** A TLS connection: SOCKS 1 → 1.5, handshake 1.6 → 2.0, then one inferred exchange, still open. */
const tlsOpen = connectionOf(2, [
  socksRequest(1, "tls.example", 443),
  socksReply(1.5),
  clientHello(1.6, "tls.example"),
  serverHello(2.0),
  ...bursts([2.1, "up", 500], [2.4, "down", 3000], [2.6, "down", 2000], [3.0, "up", 200])
])

const times = (phases: ReadonlyArray<Phase>) => phases.map(({ end, kind, start }) => ({ kind, start, end }))

const graphOf = (layout: TimeGraphLayout) => {
  if (layout._tag !== "Graph") throw new Error(`expected a graph, got ${layout.reason}`)
  return layout
}

// --- reading the SVG ---

const hostile = `<script>alert(1)</script>"'></svg>`
const hostileEscaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;/svg&gt;"

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

describe("the time graph's layout", () => {
  it("cuts a bar into SOCKS setup, injected delay, waiting, transfer and idle, covering it once", () => {
    expect(times(phasesOf(pageLoad, 10))).toEqual([
      { kind: "socks", start: 0, end: 0.1 },
      { kind: "delay", start: 0.1, end: 0.4 },
      { kind: "socks", start: 0.4, end: 0.8 },
      { kind: "idle", start: 0.8, end: 1.0 },
      { kind: "waiting", start: 1.0, end: 2.5 },
      { kind: "transfer", start: 2.5, end: 3.0 },
      { kind: "idle", start: 3.0, end: 3.2 }
    ])
  })

  it("runs an open connection's bar to now: a TLS handshake, then idle", () => {
    expect(times(phasesOf(tlsOpen, 5))).toEqual([
      { kind: "socks", start: 1, end: 1.5 },
      { kind: "idle", start: 1.5, end: 1.6 },
      { kind: "tls", start: 1.6, end: 2.0 },
      { kind: "idle", start: 2.0, end: 5 }
    ])
    const [row] = graphOf(layoutTimeGraph([tlsOpen], { now: 5 })).groups[0].rows
    expect([row.start, row.end, row.open]).toEqual([1, 5, true])
  })

  it("keeps an unanswered request waiting until now, and SOCKS setup without a reply until the close", () => {
    const waiting = connectionOf(3, [socksRequest(0, "slow.example"), socksReply(0.2), ...http([0.3, "up", get("/slow")])])
    expect(times(phasesOf(waiting, 4)).at(-1)).toEqual({ kind: "waiting", start: 0.3, end: 4 })
    const refused = connectionOf(4, [socksRequest(0, "gone.example"), close(2, 0, 0)], { state: "failed", error: "timed out" })
    expect(times(phasesOf(refused, 9))).toEqual([{ kind: "socks", start: 0, end: 2 }])
  })

  it("shows an HTTP delay apart from the server's time, and a transfer over the next pipelined request's wait", () => {
    const held = connectionOf(5, [
      socksRequest(0, "a.example"),
      socksReply(0.5),
      ...http(
        [1, "up", get("/a")],
        [2, "up", get("/b")],
        [2.5, "down", ok(10) + body(4)],
        [3, "down", body(6)],
        [3.5, "down", ok(3, "404 Not Found")],
        [4, "down", body(3)]
      ),
      ...httpDelay(1, 1.5, 0, 500),
      close(4)
    ])
    const phases = phasesOf(held, 9)
    expect(times(phases)).toEqual([
      { kind: "socks", start: 0, end: 0.5 },
      { kind: "idle", start: 0.5, end: 1 },
      { kind: "delay", start: 1, end: 1.5 },
      { kind: "waiting", start: 1.5, end: 2.5 },
      { kind: "transfer", start: 2.5, end: 3 },
      { kind: "waiting", start: 3, end: 3.5 },
      { kind: "transfer", start: 3.5, end: 4 }
    ])
    // Each phase names the exchange it belongs to: the delay and the first wait are /a's, the second wait /b's.
    const [a, b] = exchanges(held)
    expect(phases.map((p) => (p.kind === "waiting" || p.kind === "transfer" ? p.exchange : p.kind === "delay" && p.hold.delay === "http" ? p.hold.exchange : null)))
      .toEqual([null, null, a, a, a, b, b])
  })

  it("marks each exchange's request and response start, read ones filled and inferred ones hollow, from the same exchanges", () => {
    const layout = graphOf(layoutTimeGraph([simple(1, "a.example", 0, 2), tlsOpen], { now: 5 }))
    const [plain, encrypted] = layout.groups.map((group) => group.rows[0])
    expect(plain.marks.map(({ kind, time }) => [kind, Math.round(time * 1000) / 1000])).toEqual([
      ["request", 0.3],
      ["request", 0.7],
      ["response", 0.5],
      ["response", 0.9]
    ])
    expect(plain.marks.map((mark) => mark.exchange)).toEqual([...exchanges(plain.connection), ...exchanges(plain.connection)])
    expect([plain.requests, plain.responses]).toEqual([2, 2])
    expect(encrypted.marks.map(({ exchange, kind, time }) => [kind, time, exchange.index])).toEqual([
      ["inferredRequest", 2.1, 0],
      ["inferredResponse", 2.4, 0],
      ["inferredRequest", 3, 1]
    ])
    expect([encrypted.requests, encrypted.responses]).toEqual([0, 0])
  })

  it("groups rows by server in order of each server's first connection, each group with its slowest setup and wait", () => {
    const layout = graphOf(layoutTimeGraph([
      simple(4, "a.example", 0.5),
      simple(1, "b.example", 0),
      simple(2, "c.example", 0.7),
      connectionOf(3, [socksRequest(0.9, "b.example"), socksReply(1.4), ...http([1.5, "up", get("/")], [2.5, "down", ok(0)]), close(3)]),
      simple(5, "a.example", 1.5, 1, 443)
    ], { now: 3 }))
    expect(layout.groups.map((group) => [group.host, group.rows.map((row) => row.connection.id)])).toEqual([
      ["b.example", [1, 3]],
      ["a.example", [4, 5]],
      ["c.example", [2]]
    ])
    expect(layout.groups[0].slowestSetup).toBeCloseTo(0.5, 9)
    expect(layout.groups[0].slowestWait).toBeCloseTo(1, 9)
    expect(layout.rows).toBe(5)
  })

  it("spans the axis from a whole tick before the first opening to the last close, in 1-2-5 steps", () => {
    const { axis } = graphOf(layoutTimeGraph([pageLoad], { now: 4 }))
    expect({ start: axis.start, end: axis.end, step: axis.step, ticks: axis.ticks }).toEqual({ start: 0, end: 3.2, step: 0.5, ticks: [0, 0.5, 1, 1.5, 2, 2.5, 3] })
    expect([axis.left, axis.width, axis.scale]).toEqual([112, 964, 964 / 3.2])
    const long = graphOf(layoutTimeGraph([simple(1, "a.example", 3), connectionOf(2, [socksRequest(10, "a.example"), close(118)])], { now: 120 })).axis
    expect([long.start, long.end, long.step, long.ticks]).toEqual([0, 118, 20, [0, 20, 40, 60, 80, 100]])
    const short = graphOf(layoutTimeGraph([connectionOf(1, [socksRequest(2, "a.example"), close(2.3)])], { now: 3 })).axis
    expect(short.step).toBe(0.05)
    expect(short.ticks.map((t) => Math.round(t * 100) / 100)).toEqual([2, 2.05, 2.1, 2.15, 2.2, 2.25, 2.3])
  })

  it("keeps only the connections, phases and marks in the time window, on an axis spanning the window", () => {
    const connections = [
      simple(1, "a.example", 0),
      connectionOf(2, [socksRequest(3, "b.example"), socksReply(3.5), ...http([4, "up", get("/")], [6, "down", ok(0)]), close(8)]),
      simple(3, "b.example", 5.5),
      connectionOf(4, [socksRequest(8, "a.example")])
    ]
    const layout = graphOf(layoutTimeGraph(connections, { now: 10, from: 4.5, to: 7 }))
    expect([layout.axis.start, layout.axis.end, layout.axis.ticks]).toEqual([4.5, 7, [4.5, 5, 5.5, 6, 6.5, 7]])
    const [two, three] = layout.groups.flatMap((group) => group.rows)
    expect([two.connection.id, three.connection.id]).toEqual([2, 3])
    // Connection 2's setup and request are before the window: its wait still shows, its request circle not.
    expect(times(two.phases)).toEqual([{ kind: "waiting", start: 4, end: 6 }, { kind: "idle", start: 6, end: 8 }])
    expect(two.marks.map(({ kind, time }) => [kind, time])).toEqual([["response", 6]])
    expect(layout.now).toBeNull()
    const later = graphOf(layoutTimeGraph(connections, { now: 10, from: 7 }))
    expect(later.groups.flatMap((group) => group.rows.map((row) => row.connection.id))).toEqual([2, 4])
    expect(later.now).toBe(10)
  })

  it("says why there is nothing to draw", () => {
    expect(layoutTimeGraph([], { now: 0 })).toEqual({ _tag: "Empty", reason: "NoConnections" })
    expect(layoutTimeGraph([pageLoad], { now: 4, host: "none.example" })).toEqual({ _tag: "Empty", reason: "NoMatch" })
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
    const connections = [pageLoad, simple(2, "b.example", 0.5, 3), simple(3, "b.example", 1), tlsOpen]
    const svg = renderTimeGraph(connections, { now: 4 }).text
    const rows = Array.from(svg.matchAll(/<g class="row [a-z]+" data-id="(\d+)"><a href="\/connections\/(\d+)"><title>([^<]+)<\/title>([\s\S]*?)<\/a><\/g>/g))
    expect(rows.map((m) => [Number(m[1]), Number(m[2])])).toEqual([[1, 1], [2, 2], [3, 3], [2, 2]])
    for (const [, id, , tip, inside] of rows) {
      expect(tip.startsWith(`#${id} `)).toBe(true)
      expect(count(inside, /<rect class="bar"/g)).toBe(1)
      // Every phase and circle carries its own tooltip.
      expect(count(inside, /<(rect|circle) class="(socks|delay|tls|waiting|transfer|idle|req|res|ireq|ires)"[^>]*><title>#\d+ [^<]+<\/title><\/(rect|circle)>/g))
        .toBe(count(inside, /<(rect|circle) class="(socks|delay|tls|waiting|transfer|idle|req|res|ireq|ires)"/g))
    }
    // Outside the rows there is nothing to click but the legend's samples and the server links.
    const rest = svg.replace(/<g class="row[\s\S]*?<\/a><\/g>/g, "").replace(/<g class="legend">[\s\S]*?<\/g>\n/, "")
    expect(rest).not.toMatch(/<rect class=|<circle/)
  })

  it("puts the times, the lines and the sizes in the tooltips", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    expect(svg).toContain(`<title>#1 example.com:80 · closed\nopened 0.000 s · closed 3.200 s · 3.200 s\nSOCKS reply 0.800 s: succeeded\n1 request, 1 response · 100 bytes up, 1000 bytes down</title>`)
    expect(svg).toContain(`<title>#1 SOCKS setup (Tor stream setup) 0.400 s → 0.800 s (0.400 s)\nexample.com:80 → succeeded</title>`)
    expect(svg).toContain(`<title>#1 delay injected by MITM 0.100 s → 0.400 s (0.300 s)\nSOCKS connect held 300ms</title>`)
    expect(svg).toContain(`<title>#1 waiting for the server 1.000 s → 2.500 s (1.500 s)\nGET / HTTP/1.1, body 0 bytes\n→ HTTP/1.1 200 OK</title>`)
    expect(svg).toContain(`<title>#1 response transfer 2.500 s → 3.000 s (0.500 s)\nHTTP/1.1 200 OK, body 4900 bytes\nfor GET / HTTP/1.1</title>`)
    expect(svg).toMatch(/<circle class="req"[^>]*><title>#1 request 1\.000 s: GET \/ HTTP\/1\.1\nresponse after 1\.500 s: HTTP\/1\.1 200 OK<\/title>/)
    expect(svg).toMatch(/<circle class="res"[^>]*><title>#1 response 2\.500 s: HTTP\/1\.1 200 OK\nbody 4900 bytes by 3\.000 s\nfor GET \/ HTTP\/1\.1<\/title>/)
  })

  it("names the held request in an HTTP delay's tooltip, and the bursts in an inferred exchange's", () => {
    const held = connectionOf(6, [socksRequest(0, "a.example"), socksReply(0.5), ...http([1, "up", get("/held")]), ...httpDelay(1, 1.5, 0, 500)])
    expect(renderTimeGraph([held], { now: 2 }).text).toContain(`<title>#6 delay injected by MITM 1.000 s → 1.500 s (0.500 s)\nHTTP request held: GET /held HTTP/1.1</title>`)
    const stillHeld = connectionOf(7, [socksRequest(0, "a.example"), socksReply(0.5), ...http([1, "up", get("/held")]), httpDelay(1, 1.5, 0, 500)[0]])
    expect(renderTimeGraph([stillHeld], { now: 2 }).text).toContain(`(1.000 s)\nHTTP request held: GET /held HTTP/1.1 (still held)</title>`)
    const svg = renderTimeGraph([tlsOpen], { now: 4 }).text
    expect(svg).toMatch(/<circle class="ireq"[^>]*><title>#2 inferred request 2\.100 s: exchange 1: client burst, 500 bytes up<\/title>/)
    expect(svg).toMatch(/<circle class="ires"[^>]*><title>#2 inferred response 2\.400 s: exchange 1: server burst, 5000 bytes down\n0\.300 s after the client burst<\/title>/)
    expect(svg).toContain(`<title>#2 TLS handshake 1.600 s → 2.000 s (0.400 s)\nClientHello SNI tls.example, ALPN h2,http/1.1, versions TLS 1.3,TLS 1.2\nServerHello TLS 1.3, cipher TLS_AES_128_GCM_SHA256</title>`)
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
    const open = connectionOf(2, [socksRequest(1, "tls.example"), socksReply(1.5), clientHello(1.6, "tls.example")])
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
    const failed = connectionOf(4, [socksRequest(0, "gone.example"), socksReply(0.3, 4), close(0.3, 0, 0)], {
      state: "failed",
      error: "Rejected: SOCKS upstream replied 0x04"
    })
    const svg = renderTimeGraph([failed], { now: 1 }).text
    expect(svg).toContain(`<g class="row failed" data-id="4">`)
    expect(svg).toContain(".tg .failed .bar{stroke:#c62828")
    expect(rowOf(svg, 4)).toContain("\nSOCKS reply 0.300 s: host unreachable\n")
    expect(rowOf(svg, 4)).toContain("\nerror: Rejected: SOCKS upstream replied 0x04</title>")
  })

  it("labels the axis in 1-2-5 steps of seconds, top and bottom", () => {
    expect(axisLabels(renderTimeGraph([pageLoad], { now: 4 }).text))
      .toEqual(["0 s", "0.5 s", "1 s", "1.5 s", "2 s", "2.5 s", "3 s"].flatMap((label) => [label, label]))
    const long = renderTimeGraph([simple(1, "a.example", 3), connectionOf(2, [socksRequest(10, "a.example"), close(118)])], { now: 120 }).text
    expect(axisLabels(long).filter((_, i) => i % 2 === 0)).toEqual(["0 s", "20 s", "40 s", "60 s", "80 s", "100 s"])
    const short = renderTimeGraph([connectionOf(1, [socksRequest(2, "a.example"), close(2.3)])], { now: 3 }).text
    expect(axisLabels(short).filter((_, i) => i % 2 === 0)).toEqual(["2 s", "2.05 s", "2.1 s", "2.15 s", "2.2 s", "2.25 s", "2.3 s"])
  })

  it("has a legend for every colour and mark", () => {
    const svg = renderTimeGraph([pageLoad], { now: 4 }).text
    const legend = svg.slice(svg.indexOf(`<g class="legend">`), svg.indexOf(`<g class="axis">`))
    for (const kind of ["socks", "delay", "tls", "waiting", "transfer", "idle", "req", "res", "ireq", "ires"]) expect(legend).toMatch(new RegExp(`class="${kind}"`))
    for (const name of ["SOCKS setup (Tor stream setup)", "delay injected by MITM", "TLS handshake", "waiting for the server", "response transfer", "connected, idle", "request sent", "response started", "inferred request (encrypted)", "inferred response (encrypted)", "still open (drawn to now)", "failed"]) {
      expect(legend).toContain(`>${name}</text>`)
    }
  })

  it("shows hostile captured text escaped, never as markup", () => {
    const evil = connectionOf(5, [
      socksRequest(0, hostile),
      ...socksDelay(0.05, 0.06, 10),
      stamp(0.1, { type: "SocksResponseEnd", reply: 0, replyName: hostile, address: null }),
      clientHello(0.1, hostile),
      ...http([0.2, "up", get(`/${hostile}`, hostile)], [0.3, "down", ok(3, `200 ${hostile}`)], [0.4, "down", body(3)])
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
      connectionOf(2, [socksRequest(3, "b.example"), close(5)]),
      simple(3, "b.example", 5.5),
      connectionOf(4, [socksRequest(8, "a.example")])
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

  it("stays linear and compact: 10,000 connections take under 8× the time of 2,000, and under 2 KB per simple row", () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => simple(i + 1, `host${i % 50}.example`, i / 100))
    const small = many(2_000)
    const large = many(10_000)
    /** One render on fresh connection objects, so that no exchanges are remembered from the run before. */
    const timed = (connections: ReadonlyArray<Connection>) => {
      const fresh = connections.map((c) => ({ ...c }))
      const started = performance.now()
      const svg = renderTimeGraph(fresh, { now: 200 }).text
      return { ms: performance.now() - started, svg }
    }
    timed(small)
    timed(large)
    // Best of 3 each, the sizes taking turns so that both see the same load on the machine.
    let smallTime = Infinity
    let largeTime = Infinity
    let svg = ""
    for (let run = 0; run < 3; run++) {
      smallTime = Math.min(smallTime, timed(small).ms)
      const largeRun = timed(large)
      largeTime = Math.min(largeTime, largeRun.ms)
      svg = largeRun.svg
    }
    expect(largeTime, `${largeTime.toFixed(1)} ms for 10,000 against ${smallTime.toFixed(1)} ms for 2,000`).toBeLessThan(8 * smallTime)
    expect(count(svg, /<g class="row/g)).toBe(10_000)
    expect(count(svg.slice(svg.indexOf(`<g class="row`)), /<circle class="re[qs]"/g)).toBe(20_000)
    expect(count(svg, /<defs>/g)).toBe(1)
    expect(svg.length / 10_000).toBeLessThan(2048)
  })
})

// --- Tor's circuits, as the control port reports them ---

const relay = torRelay
const circuit = torCircuit

/** The control port's `torOf` over these attributions: connection id → circuit, with that circuit's path. */
const torOfCircuits = (circuits: ReadonlyArray<TorCircuit>, carried: Record<number, string>) => (id: number): TorAttribution | null => {
  const circuitId = carried[id]
  if (circuitId === undefined) return null
  const known = circuits.find((c) => c.id === circuitId)
  return { stream: String(100 + id), circuit: circuitId, path: known?.path ?? [], circuitBuildTime: known?.buildTime ?? null }
}

/** SOCKS 0 → 1.2, a request at 1.5 answered at 2, closed at 2.5. */
const throughTor = (id: number, at = 0) =>
  connectionOf(id, [
    socksRequest(at, "tor.example"),
    socksReply(at + 1.2),
    ...http([at + 1.5, "up", get("/", "tor.example")], [at + 2, "down", ok(4) + body(4)]),
    close(at + 2.5)
  ])

describe("circuits in the time graph's layout", () => {
  it("draws the build of a circuit launched for the connection's stream inside its SOCKS setup", () => {
    const seven = circuit("7", 0.2, 1.04)
    expect(times(phasesOf(throughTor(1), 3, seven))).toEqual([
      { kind: "socks", start: 0, end: 0.2 },
      { kind: "circuit", start: 0.2, end: 1.04 },
      { kind: "socks", start: 1.04, end: 1.2 },
      { kind: "idle", start: 1.2, end: 1.5 },
      { kind: "waiting", start: 1.5, end: 2 },
      { kind: "idle", start: 2, end: 2.5 }
    ])
    const phase = phasesOf(throughTor(1), 3, seven)[1]
    expect(phase.kind === "circuit" ? phase.circuit : null).toBe(seven)
  })

  it("draws no build for a circuit launched before the SOCKS request, after the reply, or before MITM watched", () => {
    for (const shared of [circuit("7", 0.5, 0.9), circuit("7", 2.3, 2.6), circuit("7", null, null, { state: "built" })]) {
      expect(times(phasesOf(throughTor(1, 1), 4, shared)).map((p) => p.kind)).toEqual(["socks", "idle", "waiting", "idle"])
    }
  })

  it("lets injected delay win over the circuit build, and runs an unbuilt circuit to now while the SOCKS reply is missing", () => {
    const held = connectionOf(2, [socksRequest(0, "tor.example"), ...socksDelay(0.1, 0.4, 300), socksReply(1)])
    expect(times(phasesOf(held, 2, circuit("8", 0.3, 0.7)))).toEqual([
      { kind: "socks", start: 0, end: 0.1 },
      { kind: "delay", start: 0.1, end: 0.4 },
      { kind: "circuit", start: 0.4, end: 0.7 },
      { kind: "socks", start: 0.7, end: 1 },
      { kind: "idle", start: 1, end: 2 }
    ])
    const waiting = connectionOf(3, [socksRequest(0, "tor.example")])
    expect(times(phasesOf(waiting, 3, circuit("9", 0.5, null)))).toEqual([
      { kind: "socks", start: 0, end: 0.5 },
      { kind: "circuit", start: 0.5, end: 3 }
    ])
  })

  it("gives each row its circuit, with a hue from the circuit id shared by rows on one circuit", () => {
    const circuits = [circuit("7", 0.2, 1.04), circuit("8", null, null, { state: "built" })]
    const torOf = torOfCircuits(circuits, { 1: "7", 2: "7", 3: "8" })
    const layout = graphOf(layoutTimeGraph([throughTor(1), throughTor(2, 0.5), throughTor(3, 1), simple(4, "tor.example", 2)], { now: 5, torOf, circuits }))
    const rows = layout.groups[0].rows
    expect(layout.tor).toBe(true)
    expect(rows.map((row) => row.circuit === null ? null : [row.circuit.id, row.circuit.hue, row.circuit.attribution.stream])).toEqual([
      ["7", circuitHue("7"), "101"],
      ["7", circuitHue("7"), "102"],
      ["8", circuitHue("8"), "103"],
      null
    ])
    expect(rows[0].circuit?.circuit).toBe(circuits[0])
    // Only connection 1's SOCKS setup (0 → 1.2) holds the launch at 0.2; 2 opened at 0.5, after it.
    expect(rows.map((row) => times(row.phases).filter((p) => p.kind === "circuit"))).toEqual([[{ kind: "circuit", start: 0.2, end: 1.04 }], [], [], []])
    // The build is Tor's setup time: 0.2 + 0.84 + 0.16 s.
    expect(layout.groups[0].slowestSetup).toBeCloseTo(1.2, 9)
  })

  it("takes the circuit from torOf alone (no build without the circuits), and has none without torOf or before the stream is attached", () => {
    const torOf = torOfCircuits([circuit("7", 0.2, 1.04)], { 1: "7" })
    const markedOnly = graphOf(layoutTimeGraph([throughTor(1)], { now: 3, torOf })).groups[0].rows[0]
    expect([markedOnly.circuit?.id, markedOnly.circuit?.circuit, markedOnly.phases.some((p) => p.kind === "circuit")]).toEqual(["7", null, false])
    const plain = graphOf(layoutTimeGraph([throughTor(1)], { now: 3 }))
    expect([plain.tor, plain.groups[0].rows[0].circuit]).toEqual([false, null])
    const unattached = graphOf(layoutTimeGraph([throughTor(1)], { now: 3, torOf: () => ({ stream: "5", circuit: null, path: [], circuitBuildTime: null }) }))
    expect([unattached.tor, unattached.groups[0].rows[0].circuit]).toEqual([false, null])
  })

  it("spreads the hues of consecutive circuits by the golden angle, and hashes other ids", () => {
    expect(["1", "2", "3", "4"].map(circuitHue)).toEqual([138, 275, 53, 190])
    expect(circuitHue("x7")).toBe(circuitHue("x7"))
    for (const id of ["0", "99", "123456789", "x7", ""]) {
      expect(circuitHue(id)).toBeGreaterThanOrEqual(0)
      expect(circuitHue(id)).toBeLessThan(360)
    }
  })
})

describe("circuits in the time graph", () => {
  const circuits = [circuit("7", 0.2, 1.04)]
  const torOf = torOfCircuits(circuits, { 1: "7" })

  it("marks a row with its circuit's colour and path, and names the circuit in the row's tooltip", () => {
    const svg = renderTimeGraph([throughTor(1), throughTor(2, 0.5)], { now: 3, torOf, circuits }).text
    expect(rowOf(svg, 1)).toContain(`<rect class="circ" x="106" y="`)
    expect(rowOf(svg, 1)).toContain(`fill="hsl(${circuitHue("7")},70%,42%)"><title>circuit 7: guard1 → middle1 → exit1</title></rect>`)
    expect(rowOf(svg, 1)).toMatch(/<title>#1 tor\.example:80 · closed\n[^<]*\nSOCKS reply 1\.200 s: succeeded\ncircuit 7: guard1 → middle1 → exit1\n/)
    expect(rowOf(svg, 2)).not.toContain(`class="circ"`)
  })

  it("draws the circuit build as its own phase with its build time, and explains it in the legend", () => {
    const svg = renderTimeGraph([throughTor(1)], { now: 3, torOf, circuits }).text
    expect(rowOf(svg, 1)).toContain(`<rect class="circuit" x="`)
    expect(svg).toContain(`<title>#1 Tor circuit build 0.200 s → 1.040 s (0.840 s)\ncircuit 7 built in 0.84 s\ncircuit 7: guard1 → middle1 → exit1</title>`)
    const legend = svg.slice(svg.indexOf(`<g class="legend">`), svg.indexOf(`<g class="axis">`))
    expect(legend).toContain(`<rect class="circuit"`)
    expect(legend).toContain(">Tor circuit build</text>")
    expect(legend).toContain(">Tor circuit (a colour each)</text>")
    const plain = renderTimeGraph([throughTor(1)], { now: 3 }).text
    expect(plain).not.toContain("Tor circuit")
    expect(plain).not.toContain(`class="circ`)
  })

  it("shows hostile relay names and reasons as text", () => {
    const evil = [circuit("7", 0.2, null, { state: "failed", reason: hostile, closedAt: 0.9, path: [relay(hostile, "D")] })]
    const svg = renderTimeGraph([throughTor(1)], { now: 3, torOf: torOfCircuits(evil, { 1: "7" }), circuits: evil }).text
    expect(svg).not.toContain("<script")
    expect(svg).not.toContain(`"'>`)
    expect(svg).toContain(`circuit 7: ${hostileEscaped}</title>`)
    expect(svg).toContain(`(0.700 s)\ncircuit 7 failed before it was built (${hostileEscaped})\n`)
  })
})
