/**
 * Telemetry export end to end (SPEC §10, issue 17): MITM sends each closed
 * connection as one trace to an in-test OTLP/HTTP receiver on loopback, which
 * decodes the bodies itself (protobuf and JSON). A real browser loads a page
 * (HTTP and HTTPS origins, SOCKS and HTTP delays on) and the receiver must hold
 * one trace per connection, with the span names, parent links, attributes and
 * recorded times of the connection's events. A collector that answers 503 or
 * never answers must not touch relaying, and what cannot be sent is counted and
 * stays bounded over 10,000 connections.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import type { Connection } from "../src/domain/Connection.js"
import type { EventOf, EventType } from "../src/domain/Event.js"
import { exchanges } from "../src/domain/Exchange.js"
import type { OtlpEncoding } from "../src/domain/Telemetry.js"
import type { TelemetryStatus } from "../src/services/Telemetry.js"
import { chromiumThrough } from "./support/Chromium.js"
import { churn, heapAfterGc } from "./support/Churn.js"
import { type Address, eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { loopbackSocksServer } from "./support/LoopbackSocksServer.js"
import { otlpReceiver, type ReceivedSpan, type ReceiverBehaviour } from "./support/OtlpReceiver.js"
import { httpsOrigin } from "./support/SelfSigned.js"

const status = (report: Address) =>
  Effect.promise(async () => {
    const response = await fetch(`http://${report.host}:${report.port}/api/status`)
    return ((await response.json()) as { readonly telemetry: TelemetryStatus }).telemetry
  })

/** Session seconds → wall-clock nanoseconds, as the spans must carry them. */
const wallNanos = (sessionStartMillis: number, seconds: number): number => sessionStartMillis * 1e6 + seconds * 1e9

/** Within 1 ms of the recorded time. */
const expectAt = (nanos: bigint, sessionStartMillis: number, seconds: number) =>
  expect(Math.abs(Number(nanos) - wallNanos(sessionStartMillis, seconds))).toBeLessThan(1e6)

const first = <T extends EventType>(connection: Connection, type: T) =>
  connection.events.find((event): event is EventOf<T> => event.type === type)

/** The spans of one connection's trace, checked against its recorded events. */
const expectTraceOf = (connection: Connection, trace: ReadonlyArray<ReceivedSpan>, sessionStartMillis: number, upstream: string) => {
  const roots = trace.filter((span) => span.parentSpanId === null)
  expect(roots).toHaveLength(1)
  const root = roots[0]
  expect(root.name).toBe(`SOCKS ${connection.host}:${connection.port}`)
  expect(root.kind).toBe(3)
  expect(root.attributes).toMatchObject({
    "server.address": connection.host,
    "server.port": connection.port,
    "mitm.connection.id": connection.id,
    "mitm.upstream": upstream
  })
  expectAt(root.startTimeUnixNano, sessionStartMillis, first(connection, "SocksRequestStart")!.time)
  expectAt(root.endTimeUnixNano, sessionStartMillis, first(connection, "ConnectionClose")!.time)
  const children = trace.filter((span) => span !== root)
  for (const child of children) {
    expect(child.traceId).toBe(root.traceId)
    expect(child.parentSpanId).toBe(root.spanId)
  }
  expect(new Set(trace.map((span) => span.spanId)).size).toBe(trace.length)

  const setup = children.filter((span) => span.name === "socks.setup")
  expect(setup).toHaveLength(1)
  expectAt(setup[0].startTimeUnixNano, sessionStartMillis, connection.openedAt)
  const reply = first(connection, "SocksResponseEnd")
  if (reply !== undefined) {
    expectAt(setup[0].endTimeUnixNano, sessionStartMillis, reply.time)
    expect(setup[0].attributes["mitm.socks.reply_name"]).toBe(reply.replyName)
  }

  const delays = connection.events.filter((event) => event.type === "DelayStart")
  const delaySpans = children.filter((span) => span.name === "mitm.delay")
  expect(delaySpans.map((span) => span.attributes["mitm.delay.kind"])).toEqual(delays.map((delay) => delay.delay))
  delaySpans.forEach((span, index) => expectAt(span.startTimeUnixNano, sessionStartMillis, delays[index].time))

  const hello = first(connection, "TlsClientHello")
  const tls = children.filter((span) => span.name === "tls.handshake")
  expect(tls).toHaveLength(hello === undefined ? 0 : 1)
  if (hello !== undefined) {
    expectAt(tls[0].startTimeUnixNano, sessionStartMillis, hello.time)
    expectAt(tls[0].endTimeUnixNano, sessionStartMillis, first(connection, "TlsServerHello")!.time)
  }

  const pairs = exchanges(connection)
  const exchangeSpans = children.filter((span) => !["socks.setup", "tls.handshake", "mitm.delay"].includes(span.name))
  expect(exchangeSpans).toHaveLength(pairs.length)
  pairs.forEach((exchange, index) => {
    const span = exchangeSpans.find((candidate) => candidate.attributes["mitm.exchange.index"] === exchange.index)!
    expect(span).toBeDefined()
    expectAt(span.startTimeUnixNano, sessionStartMillis, exchange.requestStart)
    if (exchange.responseEnd !== null) expectAt(span.endTimeUnixNano, sessionStartMillis, exchange.responseEnd)
    if (exchange.inferred) {
      expect(span.name).toBe("HTTP")
      return
    }
    expect(span.name).toBe(exchange.method)
    expect(span.kind).toBe(3)
    expect(span.attributes).toMatchObject({
      "http.request.method": exchange.method,
      "url.full": exchange.url,
      "http.response.status_code": exchange.status,
      "network.protocol.version": "1.1"
    })
    void index
  })
}

const pageLoad = (encoding: OtlpEncoding) =>
  Effect.gen(function*() {
    const receiver = yield* otlpReceiver("accept")
    const secure = yield* httpsOrigin((_request, response) => {
      response.writeHead(200, { "content-type": "text/javascript", "access-control-allow-origin": "*" }).end("window.secure = true")
    })
    const assets = yield* httpOrigin((request, response) => {
      if (request.url?.endsWith(".css")) response.writeHead(200, { "content-type": "text/css" }).end("body { margin: 1em }")
      else if (request.url?.endsWith(".svg")) {
        response.writeHead(200, { "content-type": "image/svg+xml" })
          .end(`<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20"/></svg>`)
      } else response.writeHead(404).end("not here")
    }, "127.0.0.3")
    const at = `http://${assets.host}:${assets.port}`
    const home = yield* httpOrigin((_request, response) => {
      response.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html><html><head><title>traced</title>
<link rel="stylesheet" href="${at}/a.css"></head><body>
<img src="${at}/1.svg"><img src="${at}/2.svg"><img src="${at}/gone.png">
<script src="https://127.0.0.1:${secure.port}/secure.js"></script></body></html>`)
    }, "127.0.0.2")
    const upstream = yield* loopbackSocksServer
    const upstreamName = `socks5://127.0.0.1:${upstream.port}`
    const mitm = yield* startMitm(
      {
        upstream: { _tag: "Socks5", host: "127.0.0.1", port: upstream.port },
        socksDelay: { _tag: "Fixed", millis: 15 },
        httpDelay: { _tag: "Fixed", millis: 5 },
        otlp: { url: receiver.url, endpoint: `${receiver.url}/v1/traces` },
        otlpEncoding: encoding,
        vantage: `lab-${encoding}`
      },
      undefined,
      undefined,
      undefined,
      { exportInterval: "100 millis" }
    )

    // The browser's connections close when it does.
    yield* Effect.scoped(Effect.gen(function*() {
      const browser = yield* chromiumThrough(mitm.proxy.port)
      const context = yield* Effect.promise(() => browser.newContext({ ignoreHTTPSErrors: true }))
      const page = yield* Effect.promise(() => context.newPage())
      yield* Effect.promise(() => page.goto(`http://${home.host}:${home.port}/`, { waitUntil: "load" }))
      expect(yield* Effect.promise(() => page.evaluate("window.secure"))).toBe(true)
    }))

    const connections = yield* eventually(Effect.map(mitm.connections, (all) => (all.every((c) => c.state !== "open") ? all : undefined)))
    const traces = yield* eventually(Effect.sync(() => {
      const byId = new Map<number, Array<ReceivedSpan>>()
      const roots = receiver.spans.filter((span) => span.parentSpanId === null)
      for (const root of roots) {
        byId.set(root.attributes["mitm.connection.id"] as number, receiver.spans.filter((span) => span.traceId === root.traceId))
      }
      return connections.every((connection) => byId.has(connection.id)) ? byId : undefined
    }))
    const sessionStartMillis = (yield* mitm.sessionStartMillis)!

    expect(receiver.undecodable).toEqual([])
    expect(receiver.requests.every((request) => request.path === "/v1/traces")).toBe(true)
    expect(new Set(receiver.requests.map((request) => request.contentType))).toEqual(
      new Set([encoding === "json" ? "application/json" : "application/x-protobuf"])
    )
    // One trace per connection, and no other.
    expect(traces.size).toBe(connections.length)
    expect(new Set(receiver.spans.map((span) => span.traceId)).size).toBe(connections.length)
    for (const span of receiver.spans) {
      expect(span.resource).toMatchObject({ "service.name": "mitm", "mitm.vantage": `lab-${encoding}` })
    }

    const measured = connections.filter((connection) => connection.host.startsWith("127."))
    const hosts = new Set(measured.map((connection) => `${connection.host}:${connection.port}`))
    expect(hosts).toEqual(new Set([`127.0.0.2:${home.port}`, `127.0.0.3:${assets.port}`, `127.0.0.1:${secure.port}`]))
    for (const connection of connections) expectTraceOf(connection, traces.get(connection.id)!, sessionStartMillis, upstreamName)

    const names = measured.flatMap((connection) => traces.get(connection.id)!.map((span) => span.name))
    for (const name of ["socks.setup", "mitm.delay", "tls.handshake", "GET"]) expect(names).toContain(name)
    const missing = receiver.spans.find((span) => span.attributes["url.full"] === `${at}/gone.png`)!
    expect(missing.attributes["http.response.status_code"]).toBe(404)
    expect(missing.status.code).toBe(2)

    const telemetry = yield* status(mitm.report)
    expect(telemetry).toMatchObject({
      otlp: `${receiver.url}/v1/traces`,
      encoding,
      vantage: `lab-${encoding}`,
      exported: connections.length,
      dropped: 0,
      failed: 0,
      queued: 0,
      lastError: null
    })
    // For the record: one page load's spans, as the receiver got them.
    const main = measured.find((connection) => connection.host === "127.0.0.2")!
    const tlsConnection = measured.find((connection) => connection.port === secure.port)!
    console.log(`${encoding}: ${connections.length} traces, ${receiver.spans.length} spans; the page's own connection and the HTTPS one:\n` +
      [...traces.get(main.id)!, ...traces.get(tlsConnection.id)!].map((span) =>
        `  ${span.parentSpanId === null ? "" : "  "}${span.name}  ${((Number(span.startTimeUnixNano) / 1e6) - sessionStartMillis).toFixed(3)}ms → ` +
        `${((Number(span.endTimeUnixNano) / 1e6) - sessionStartMillis).toFixed(3)}ms  ${JSON.stringify(span.attributes)}`
      ).join("\n"))
  })

/**
 * 10,000 connections through MITM while the collector fails in the given way: every
 * connection is relayed whole, each trace is accounted for (exported, failed, dropped
 * or still queued), the queue never passes its bound, one request at a time is open,
 * the heap after 10,000 connections is where it was after the warm-up, and the failure
 * is logged once (the run takes far less than a minute).
 */
const failingCollector = (behaviour: Exclude<ReceiverBehaviour, "accept">) => {
  const logged: Array<string> = []
  return Effect.gen(function*() {
    const receiver = yield* otlpReceiver(behaviour)
    const origin = yield* httpOrigin((_request, response) => response.end("churn"))
    const maxQueue = 200
    const mitm = yield* startMitm(
      {
        upstream: { _tag: "Direct" },
        maxConnections: 100,
        otlp: { url: receiver.url, endpoint: `${receiver.url}/v1/traces` }
      },
      undefined,
      undefined,
      undefined,
      { exportInterval: "20 millis", maxBatch: 50, maxQueue, requestTimeout: "200 millis", retries: 1, maxBackoff: "200 millis" }
    )
    let maxQueued = 0
    const sample = Effect.gen(function*() {
      for (;;) {
        maxQueued = Math.max(maxQueued, (yield* status(mitm.report)).queued)
        yield* Effect.sleep("50 millis")
      }
    })
    yield* Effect.forkScoped(sample)

    yield* churn(500, mitm.proxy.port, origin.port)
    const before = heapAfterGc()
    const started = Date.now()
    yield* churn(10_000, mitm.proxy.port, origin.port)
    const seconds = (Date.now() - started) / 1000
    const after = heapAfterGc()
    const grownMiB = (after - before) / 2 ** 20

    const telemetry = yield* eventually(Effect.map(status(mitm.report), (s) => (s.failed > 0 && s.exported + s.failed + s.dropped + s.queued === 10_500 ? s : undefined)))
    console.log(
      `collector ${behaviour}: 10,000 connections in ${seconds.toFixed(1)} s; heap ${grownMiB >= 0 ? "+" : ""}${grownMiB.toFixed(1)} MiB; ` +
        `telemetry ${JSON.stringify(telemetry)}; most queued ${maxQueued}; export requests ${receiver.requests.length}, most open at once ${receiver.maxPending()}`
    )
    expect(telemetry.exported).toBe(0)
    expect(telemetry.dropped).toBeGreaterThan(0)
    expect(telemetry.lastError).toBe(behaviour === "unavailable" ? "the collector answered HTTP 503" : "no answer within 200ms")
    expect(maxQueued).toBeLessThanOrEqual(maxQueue)
    expect(receiver.maxPending()).toBe(1)
    expect(grownMiB).toBeLessThan(16)
    const kept = yield* mitm.connections
    expect(kept).toHaveLength(100)
    expect(kept.every((connection) => connection.state === "closed" && connection.error === null)).toBe(true)
    const warnings = logged.filter((line) => line.includes("telemetry export"))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(`telemetry export to ${receiver.url}/v1/traces failed`)
  }).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => {
      logged.push(Array.isArray(message) ? message.join(" ") : String(message))
    })))
  )
}

describe("telemetry export", () => {
  it.scopedLive("after a page load, a protobuf receiver holds one trace per connection with the recorded spans, times and vantage", () => pageLoad("protobuf"), 60_000)

  it.scopedLive("after a page load, a JSON receiver holds the same", () => pageLoad("json"), 60_000)

  it.scopedLive("a collector that answers 503: relaying is unaffected, traces are counted as failed or dropped, memory stays bounded", () => failingCollector("unavailable"), 120_000)

  it.scopedLive("a collector that never answers: the same, one request at a time, each given up after its timeout", () => failingCollector("silent"), 120_000)
})
