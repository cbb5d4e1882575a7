/**
 * The pages rendered from connections built by hand: the event log layout,
 * the settings form, and captured text that must show as text everywhere.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { Connection } from "../src/domain/Connection.js"
import { defaultSettings } from "../src/domain/Settings.js"
import { exchanges } from "../src/domain/Exchange.js"
import { summarize } from "../src/domain/Summary.js"
import type { TorAttribution, TorCircuit } from "../src/domain/TorCircuits.js"
import type { TorStatus } from "../src/services/TorControl.js"
import { connectionBody, eventLog, formatEvent } from "../src/http/ConnectionPage.js"
import { reportBody, type ReportView, type TorView } from "../src/http/ReportPage.js"
import { settingsBody, settingsDocumentFromForm } from "../src/http/SettingsPage.js"
import { type ConnectionEvent, stamp } from "../src/domain/Event.js"
import { closed, connectionWith, decodeError, httpExchange, socksReply, socksRequest, type Timed, tlsClientHello, torCircuit, torRelay } from "./support/Measurements.js"

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

  it("lists the five slowest SOCKS setups and responses as sorting them all would, the first seen first at equal times", () => {
    // Times on a coarse grid, so that many are equal.
    const tenths = fc.integer({ min: 0, max: 30 }).map((n) => n / 10)
    fc.assert(fc.property(fc.array(fc.tuple(tenths, fc.array(tenths, { maxLength: 4 })), { maxLength: 40 }), (shapes) => {
      const connections = shapes.map(([setup, waits], i) => {
        let state = undefined as ReturnType<typeof httpExchange>["state"] | undefined
        const timed: Array<Timed> = [[10 * i, socksRequest(`host${i % 3}.example`)], [10 * i + setup, socksReply()]]
        waits.forEach((wait, k) => {
          const at = 10 * i + 4 + k
          const exchange = httpExchange(`GET /${k} HTTP/1.1\r\nHost: h\r\n\r\n`, "HTTP/1.1 204 No Content\r\n\r\n", [at, at + wait, at + wait], state)
          state = exchange.state
          timed.push(...exchange.events)
        })
        return connectionWith(i + 1, `host${i % 3}.example`, timed)
      })
      const summary = summarize(connections)
      const sorted = <A extends { readonly seconds: number }>(items: Array<A>) => items.sort((a, b) => b.seconds - a.seconds).slice(0, 5)
      const setups = sorted(connections.map((c) => ({ id: c.id, seconds: c.events[1].time - c.openedAt })))
      const responses = sorted(connections.flatMap((c) => exchanges(c).map((e, k) => ({ id: c.id, k, seconds: e.wait! }))))
      expect(summary.slowestSocksSetups.map((s) => [s.id, s.seconds])).toEqual(setups.map((s) => [s.id, s.seconds]))
      expect(summary.slowestResponses.map((r) => [r.id, r.requestLine, r.seconds])).toEqual(responses.map((r) => [r.id, `GET /${r.k} HTTP/1.1`, r.seconds]))
      // Asked for none (the session comparison's totals): none, and the totals all the same.
      const none = summarize(connections, 0)
      expect([none.slowestSocksSetups, none.slowestResponses]).toEqual([[], []])
      expect({ ...none, slowestSocksSetups: summary.slowestSocksSetups, slowestResponses: summary.slowestResponses }).toEqual(summary)
    }), { numRuns: 300 })
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

// --- Tor's control port, as the Reporter gives it ---

const connected: TorStatus = { control: "connected", address: "127.0.0.1:9051", version: "0.4.8.13", error: null }

const relay = torRelay
/** A built circuit: launched at 0.1 s, built at 0.94 s (0.84 s). */
const circuit = (id: string, overrides: Partial<TorCircuit> = {}): TorCircuit => torCircuit(id, 0.1, 0.94, overrides)

/** The Reporter's Tor reads over these circuits: a connection is on the circuit that lists it. */
const torView = (circuits: ReadonlyArray<TorCircuit>, status: TorStatus = connected): TorView => {
  const carried = new Map<number, TorCircuit>()
  for (const known of circuits) for (const id of known.connections) carried.set(id, known)
  return {
    status,
    circuits,
    torOf: (id): TorAttribution | null => {
      const known = carried.get(id)
      return known === undefined ? null : { stream: String(40 + id), circuit: known.id, path: known.path, circuitBuildTime: known.buildTime }
    }
  }
}

const report = (connections: ReadonlyArray<Connection>, tor: TorView | undefined, filter: ReportView["filter"] = { live: true }) =>
  reportBody({ connections, counts: { total: connections.length, evicted: 0, eventsCut: 0 }, now: 9, version: 1, filter, tor }).text

/** The circuits table's rows, each as its cells' text. */
const circuitRows = (page: string) => {
  const table = page.slice(page.indexOf(`<table class="sortable" id="circuits">`), page.indexOf("</table>", page.indexOf(`id="circuits"`)))
  return Array.from(table.matchAll(/<tr id="circuit-[^"]*">([\s\S]*?)<\/tr>/g), (row) =>
    Array.from(row[1].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g), (cell) => cell[1].replace(/<[^>]+>/g, "").trim()))
}

describe("the report's Tor circuits", () => {
  const circuits = [
    circuit("9", { launchedAt: 2.5, builtAt: null, buildTime: null, state: "launched", purpose: "CONFLUX_LINKED", conflux: ["12"] }),
    circuit("7", { connections: [7, 8], rttMs: 312 }),
    circuit("3", { launchedAt: null, builtAt: null, buildTime: null, connections: [] }),
    circuit("12", { launchedAt: 2.5, builtAt: 3.1, buildTime: 0.6, purpose: "CONFLUX_LINKED", conflux: ["9"], state: "failed", reason: "TIMEOUT", closedAt: 3.4 })
  ]

  it("lists every circuit by launch: purpose, state, path, build time, RTT, the connections on it and its conflux legs", () => {
    const page = report([connection(), connection({ id: 8 })], torView(circuits))
    expect(page).toContain(`<h2>Tor circuits <span class="muted">Tor 0.4.8.13 at 127.0.0.1:9051</span></h2>`)
    expect(circuitRows(page)).toEqual([
      ["3", "GENERAL", "built", "guard1 → middle1 → exit1", "–", "built before MITM was watching", "–", "", ""],
      ["7", "GENERAL", "built", "guard1 → middle1 → exit1", "0.100 s", "0.840 s", "312 ms", "#7 #8", ""],
      ["9", "CONFLUX_LINKED", "launched", "guard1 → middle1 → exit1", "2.500 s", "building", "–", "", "12"],
      ["12", "CONFLUX_LINKED", "failed (TIMEOUT)", "guard1 → middle1 → exit1", "2.500 s", "0.600 s", "–", "", "9"]
    ])
    const seven = page.slice(page.indexOf(`<tr id="circuit-7">`), page.indexOf("</tr>", page.indexOf(`<tr id="circuit-7">`)))
    expect(seven).toContain(`<span title="${"A".repeat(40)}">guard1</span> → <span title="${"B".repeat(40)}">middle1</span> → <span title="${"C".repeat(40)}">exit1</span>`)
    expect(seven).toContain(`<a href="/connections/7">#7</a> <a href="/connections/8">#8</a>`)
    expect(page).toContain(`<a href="#circuit-12">12</a>`)
    expect(page).toContain(`<span class="error">failed</span>`)
  })

  it("shows each connection's circuit in the connection list, in the circuit's colour", () => {
    const page = report([connection(), connection({ id: 9 })], torView(circuits))
    const list = page.slice(page.indexOf(`id="connections"`))
    expect(list).toContain(`<th data-sort="n" class="n">Circuit</th>`)
    expect(list).toMatch(/<td class="n" data-value="7"><a href="#circuit-7"><span class="swatch" style="background:hsl\(\d+,70%,42%\)"><\/span>7<\/a><\/td>/)
    expect(list).toContain(`<td class="n" data-value="-1"></td>`)
    expect(report([connection()], undefined)).not.toContain(">Circuit</th>")
  })

  it("names the connections on a busy circuit up to a limit, and counts the rest", () => {
    const busy = circuit("7", { connections: Array.from({ length: 80 }, (_, i) => i + 1) })
    const row = circuitRows(report([connection()], torView([busy])))[0]
    expect(row[7]).toMatch(/^#1 #2 .* #50 and 30 more$/)
  })

  it("keeps the circuits of the chosen server and time window", () => {
    const page = report([connection(), connection({ id: 8, host: "other.example" })], torView([
      circuit("7", { connections: [7] }),
      circuit("8", { connections: [8] }),
      circuit("5", { connections: [7], state: "closed", closedAt: 0.5, reason: "FINISHED" })
    ]), { live: true, host: "example.com", from: 1 })
    expect(circuitRows(page).map((row) => row[0])).toEqual(["7"])
    expect(page).toContain("(filtered: 1 of 3)")
  })

  it("says in one line why circuits are missing, for each state of the control port", () => {
    const line = (status: TorStatus) => /<p class="muted" id="tor-missing">([^<]*)<\/p>/.exec(report([connection()], torView([], status)))?.[1]
    expect(line({ control: "off", address: null, version: null, error: null }))
      .toBe("Tor&#39;s control port is off (--tor-control off, or the upstream is direct), so circuits are not known.")
    expect(line({ control: "unreachable", address: "127.0.0.1:9151", version: null, error: "connect ECONNREFUSED 127.0.0.1:9151" }))
      .toBe("Tor&#39;s control port is unreachable at 127.0.0.1:9151 (connect ECONNREFUSED 127.0.0.1:9151): circuits are not known until it answers. Measuring goes on without it.")
    expect(line({ control: "auth-failed", address: "127.0.0.1:9051", version: null, error: "Authentication failed: Password did not match" }))
      .toBe("Tor&#39;s control port at 127.0.0.1:9051 refused authentication (Authentication failed: Password did not match): set --tor-control-password (or MITM_TOR_CONTROL_PASSWORD), or let MITM read Tor&#39;s cookie file.")
    expect(line(connected)).toBeUndefined()
    expect(report([connection()], torView([]))).toContain("Tor has reported no circuits yet.")
  })

  it("shows hostile nicknames, purposes, reasons and control-port errors as text", () => {
    const evil = circuit(hostile, { purpose: hostile, reason: hostile, state: "failed", path: [relay(hostile, "D")], connections: [7], conflux: [hostile] })
    for (const page of [
      report([connection()], torView([evil])),
      report([connection()], torView([], { control: "unreachable", address: hostile, version: null, error: hostile })),
      report([connection()], torView([], { control: "auth-failed", address: hostile, version: null, error: hostile }))
    ]) {
      expect(page).not.toContain("<script>alert(1)")
      expect(page).not.toContain(`"'>`)
      expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;/svg&gt;")
    }
  })

  it("renders the report of 10,000 connections and 2,000 circuits well within 300 ms", () => {
    const many = Array.from({ length: 10_000 }, (_, i) => connection({ id: i + 1, host: `host${i % 50}.example` }))
    const lots = Array.from({ length: 2_000 }, (_, k) =>
      circuit(String(k + 1), { launchedAt: k / 100, builtAt: k / 100 + 0.5, connections: [5 * k + 1, 5 * k + 2, 5 * k + 3, 5 * k + 4, 5 * k + 5] }))
    const tor = torView(lots)
    report(many, tor)
    let best = Infinity
    let page = ""
    for (let run = 0; run < 3; run++) {
      const started = performance.now()
      page = report(many.map((c) => ({ ...c })), tor)
      best = Math.min(best, performance.now() - started)
    }
    expect(best, `${best.toFixed(1)} ms`).toBeLessThan(300)
    expect(circuitRows(page)).toHaveLength(500)
    expect(page).toContain("Showing the latest 500 of 2000 circuits")
  })
})

describe("the connection page's Tor circuit", () => {
  const onSeven = circuit("7", { connections: [7], rttMs: 280, conflux: ["8"] })

  it("shows the stream, the circuit and each hop guard → middle → exit with nickname and fingerprint, and the build time", () => {
    const page = connectionBody({ connection: connection(), headers: "first", now: 6, version: 1, tor: torView([onSeven]) }).text
    const tor = page.slice(page.indexOf(`<table id="tor">`), page.indexOf("</table>", page.indexOf(`<table id="tor">`)))
    expect(tor).toContain(`<tr><th>Stream</th><td>47</td></tr>`)
    expect(tor).toMatch(/<tr><th>Circuit<\/th><td><a href="\/#circuit-7"><span class="swatch"[^>]*><\/span>7<\/a> <span class="muted">GENERAL · built · RTT 280 ms · conflux legs 8<\/span><\/td><\/tr>/)
    expect(tor).toContain(`<ol class="path"><li><span class="muted">guard</span> <b>guard1</b> <code>${"A".repeat(40)}</code></li><li><span class="muted">middle</span> <b>middle1</b> <code>${"B".repeat(40)}</code></li><li><span class="muted">exit</span> <b>exit1</b> <code>${"C".repeat(40)}</code></li></ol>`)
    expect(tor).toContain(`<tr><th>Circuit build</th><td>0.840 s <span class="muted">(launched 0.100 s, built 0.940 s)</span></td></tr>`)
    // Its graph row carries the circuit too.
    expect(page).toContain(`<rect class="circ"`)
  })

  it("says when the circuit was built before MITM was watching, and when Tor no longer lists it", () => {
    const old = circuit("7", { connections: [7], launchedAt: null, builtAt: null, buildTime: null })
    const page = connectionBody({ connection: connection(), headers: "first", now: 6, version: 1, tor: torView([old]) }).text
    expect(page).toContain(`<tr><th>Circuit build</th><td><span class="muted">not known: built before MITM was watching</span></td></tr>`)
    const gone = torView([onSeven])
    const evicted = connectionBody({ connection: connection(), headers: "first", now: 6, version: 1, tor: { ...gone, circuits: [] } }).text
    expect(evicted).toContain("(no longer listed by Tor)")
    expect(evicted).toContain("<b>exit1</b>")
  })

  it("says no Tor circuit is known, and why", () => {
    const reason = (c: Connection, tor: TorView) =>
      /<p class="muted" id="tor-none">([^<]*)<\/p>/.exec(connectionBody({ connection: c, headers: "first", now: 6, version: 1, tor }).text)?.[1]
    expect(reason(connection(), torView([], { control: "off", address: null, version: null, error: null })))
      .toBe("No Tor circuit known: Tor&#39;s control port is off (--tor-control off, or the upstream is direct), so circuits are not known.")
    expect(reason(connection(), torView([], { control: "unreachable", address: "127.0.0.1:9051", version: null, error: "not connected yet" })))
      .toMatch(/^No Tor circuit known: Tor&#39;s control port is unreachable at 127\.0\.0\.1:9051 \(not connected yet\)/)
    expect(reason(connection(), torView([], { control: "auth-failed", address: "127.0.0.1:9051", version: null, error: "wrong password" })))
      .toMatch(/^No Tor circuit known: Tor&#39;s control port at 127\.0\.0\.1:9051 refused authentication \(wrong password\)/)
    const failed = connection({ events: [...connection().events, stamp(1, { type: "TorStreamFailed", stream: "47", reason: "TIMEOUT", remoteReason: "EXITPOLICY" })] })
    expect(reason(failed, torView([]))).toBe("No Tor circuit known: Tor&#39;s stream failed: stream 47: TIMEOUT (remote EXITPOLICY).")
    expect(reason(connection({ upstream: "direct" }), torView([]))).toBe("No Tor circuit known: this connection went direct, not through Tor.")
    expect(reason(connection(), torView([]))).toBe("No Tor circuit known: Tor reported no stream for this connection.")
    expect(connectionBody({ connection: connection(), headers: "first", now: 6, version: 1 }).text).not.toContain("Tor circuit")
  })

  it("shows hostile nicknames and reasons as text", () => {
    const evil = circuit("7", { connections: [7], purpose: hostile, reason: hostile, path: [relay(hostile, "E")] })
    const failed = connection({ events: [...connection().events, stamp(1, { type: "TorStreamFailed", stream: hostile, reason: hostile, remoteReason: hostile })] })
    for (const page of [
      connectionBody({ connection: connection(), headers: "first", now: 6, version: 1, tor: torView([evil]) }).text,
      connectionBody({ connection: failed, headers: "first", now: 6, version: 1, tor: torView([]) }).text
    ]) {
      expect(page).not.toContain("<script>alert(1)")
      expect(page).not.toContain(`"'>`)
      expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;&lt;/svg&gt;")
    }
  })
})
