/**
 * Telemetry export (SPEC §10) piece by piece: a connection's recorded events as
 * one trace, the OTLP bodies (the protobuf bytes are the same as
 * @effect/opentelemetry's encoder writes, and read back by the test's own reader),
 * and the exporter under TestClock with an in-memory collector: batching, the
 * bounded queue, retries, the once-a-minute log, and export switched on at run time.
 */
import { layerProtobuf, OtlpSerialization } from "@effect/opentelemetry/OtlpSerialization"
import { describe, expect, it } from "@effect/vitest"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { Effect, Layer, Logger, TestClock } from "effect"
import { traceOf } from "../src/domain/ConnectionTrace.js"
import { type EventFacts, stamp } from "../src/domain/Event.js"
import { attributesOf, encodeTracesJson, encodeTracesProtobuf, type TracesDocument } from "../src/domain/OtlpTraces.js"
import { defaultSettings, type Settings } from "../src/domain/Settings.js"
import { parseOtlpCollector } from "../src/domain/Telemetry.js"
import * as InMemoryStore from "../src/layers/InMemoryStore.js"
import * as OtlpTelemetry from "../src/layers/OtlpTelemetry.js"
import * as SessionClockLive from "../src/layers/SessionClockLive.js"
import * as SettingsLive from "../src/layers/SettingsLive.js"
import * as TorControlPort from "../src/layers/TorControlPort.js"
import { SessionClock } from "../src/services/SessionClock.js"
import { SettingsStore } from "../src/services/Settings.js"
import { Store } from "../src/services/Store.js"
import { Telemetry } from "../src/services/Telemetry.js"
import {
  closed,
  connectionWith,
  delayEnd,
  delayStart,
  httpExchange,
  socksReply,
  socksRequest,
  tlsClientHello
} from "./support/Measurements.js"
import { decodeJsonTraces, decodeProtobufTraces, type ReceivedSpan } from "./support/OtlpReceiver.js"

let counter = 0
const ids = (bytes: 8 | 16): string => (++counter).toString(16).padStart(bytes * 2, "0")

const start = 1_780_000_000_000_000_000n
const at = (seconds: number): string => String(start + BigInt(Math.round(seconds * 1e6)) * 1000n)

const serverHello: EventFacts = { type: "TlsServerHello", tlsVersion: "TLS 1.3", cipher: "TLS_AES_128_GCM_SHA256", alpn: null, helloRetryRequest: false }

describe("a connection as a trace", () => {
  it("an HTTP connection: the root span, socks.setup, the delays and one span per exchange, at the recorded times", () => {
    const get = httpExchange("GET /a.css HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", [0.3, 0.45, 0.5])
    const post = httpExchange("POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", [0.6, 0.7, 0.7], get.state)
    const connection = connectionWith(7, "example.com", [
      [0.1, socksRequest("example.com", 80)],
      [0.1, delayStart("socks", 100)],
      [0.2, delayEnd("socks", 100)],
      [0.25, socksReply()],
      ...get.events,
      [0.6, delayStart("http", 20, 1)],
      [0.62, delayEnd("http", 20, 1)],
      ...post.events,
      [0.9, closed(120, 400, "client")]
    ])
    const spans = traceOf(connection, {
      sessionStartNanos: start,
      tor: { stream: "42", circuit: "7", path: [{ fingerprint: "A".repeat(40), nickname: "guard" }, { fingerprint: "B".repeat(40), nickname: null }], circuitBuildTime: 0.8 },
      newId: ids
    })
    const [root, ...children] = spans
    expect(root).toMatchObject({ name: "SOCKS example.com:80", kind: 3, parentSpanId: undefined, startTimeUnixNano: at(0.1), endTimeUnixNano: at(0.9) })
    expect(root.traceId).toHaveLength(32)
    expect(root.spanId).toHaveLength(16)
    for (const child of children) expect(child).toMatchObject({ traceId: root.traceId, parentSpanId: root.spanId })
    expect(Object.fromEntries(root.attributes.map(({ key, value }) => [key, value]))).toMatchObject({
      "server.address": { stringValue: "example.com" },
      "server.port": { intValue: 80 },
      "mitm.connection.id": { intValue: 7 },
      "mitm.upstream": { stringValue: "socks5://127.0.0.1:9050" },
      "tor.circuit.id": { stringValue: "7" },
      "tor.circuit.path": { arrayValue: { values: [{ stringValue: `$${"A".repeat(40)}~guard` }, { stringValue: `$${"B".repeat(40)}` }] } },
      "tor.circuit.build_time": { doubleValue: 0.8 }
    })
    expect(children.map((span) => [span.name, span.startTimeUnixNano, span.endTimeUnixNano])).toEqual([
      ["socks.setup", at(0.1), at(0.25)],
      ["mitm.delay", at(0.1), at(0.2)],
      ["GET", at(0.3), at(0.5)],
      ["mitm.delay", at(0.6), at(0.62)],
      ["POST", at(0.6), at(0.7)]
    ])
    const postSpan = children[4]
    expect(attributesOf({
      "http.request.method": "POST",
      "url.full": "http://example.com/form",
      "http.response.status_code": 503,
      "network.protocol.version": "1.1",
      "http.request.body.size": 2,
      "http.response.body.size": 0,
      "mitm.exchange.index": 1,
      "error.type": "503"
    })).toEqual(postSpan.attributes)
    expect(postSpan.status).toEqual({ code: 2, message: "503" })
    expect(children[3].attributes).toEqual(attributesOf({ "mitm.delay.kind": "http", "mitm.delay.planned_ms": 20, "mitm.exchange.index": 1 }))
  })

  it("a TLS connection that failed: tls.handshake from ClientHello to ServerHello, inferred exchanges named HTTP, the error on the root", () => {
    const connection = connectionWith(3, "example.org", [
      [1, socksRequest("example.org", 443)],
      [1.2, socksReply()],
      [1.21, tlsClientHello("example.org", ["h2", "http/1.1"])],
      [1.4, serverHello],
      [1.5, { type: "InferredRequest", exchange: 0, afterBytes: null }],
      [1.8, { type: "InferredResponse", exchange: 0, afterBytes: 600 }],
      [2, closed(900, 5000, "server")]
    ], { state: "failed", error: "upstream reset the connection", protocol: "tls" })
    const [root, ...children] = traceOf(connection, { sessionStartNanos: start, tor: null, newId: ids })
    expect(root.status).toEqual({ code: 2, message: "upstream reset the connection" })
    expect(root.attributes.map((attribute) => attribute.key)).not.toContain("tor.circuit.id")
    expect(children.map((span) => [span.name, span.startTimeUnixNano, span.endTimeUnixNano])).toEqual([
      ["socks.setup", at(1), at(1.2)],
      ["tls.handshake", at(1.21), at(1.4)],
      ["HTTP", at(1.5), at(1.8)]
    ])
    expect(children[1].attributes).toEqual(attributesOf({
      "tls.client.server_name": "example.org",
      "tls.client.supported_protocols": ["h2", "http/1.1"],
      "tls.protocol.name": "tls",
      "tls.protocol.version": "1.3",
      "tls.cipher": "TLS_AES_128_GCM_SHA256"
    }))
    expect(children[2].attributes).toEqual(attributesOf({ "mitm.exchange.index": 0, "mitm.exchange.inferred": true, "http.request.body.size": 600 }))
  })
})

const documentOf = (spans: TracesDocument["resourceSpans"][number]["scopeSpans"][number]["spans"]): TracesDocument => ({
  resourceSpans: [{
    resource: { attributes: attributesOf({ "service.name": "mitm", "mitm.vantage": "lab-1" }), droppedAttributesCount: 0 },
    scopeSpans: [{ scope: { name: "mitm", version: "0.1.0" }, spans }]
  }]
})

describe("OTLP bodies", () => {
  const get = httpExchange("GET /ü?q=ß HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", [0.3, 0.45, 0.5])
  const connection = connectionWith(70_000, "example.com", [
    [0.1, socksRequest("example.com", 8080)],
    [0.25, socksReply()],
    [0.26, { type: "DecodeError", error: { _tag: "HttpParseError", reason: "HeaderLine", message: "invalid header line 3", offset: 1234567 } }],
    ...get.events,
    [300.5, closed(120, 4_000_000_000, "client")]
  ], { state: "failed", error: "reset" })
  const spans = traceOf(connection, { sessionStartNanos: start, tor: null, newId: ids })

  it("the protobuf body is byte for byte what @effect/opentelemetry's encoder writes for the same document", () => {
    const document = documentOf(spans)
    const theirs = Effect.runSync(Effect.map(OtlpSerialization, (serialization) => serialization.traces(document)).pipe(Effect.provide(layerProtobuf)))
    expect(theirs._tag).toBe("Uint8Array")
    expect(Buffer.from(encodeTracesProtobuf(document))).toEqual(Buffer.from((theirs as { readonly body: Uint8Array }).body))
  })

  it("protobuf and JSON carry the same spans, as a collector decodes them; negative integers and doubles too", () => {
    const extra = { ...spans[0], attributes: [...spans[0].attributes, ...attributesOf({ "test.negative": -5, "test.double": -0.25, "test.bool": false })] }
    const document = documentOf([extra, ...spans.slice(1)])
    const fromProtobuf = decodeProtobufTraces(Buffer.from(encodeTracesProtobuf(document)))
    const fromJson = decodeJsonTraces(Buffer.from(encodeTracesJson(document)))
    expect(fromProtobuf).toEqual(fromJson)
    const root = fromProtobuf[0] as ReceivedSpan
    expect(root.attributes).toMatchObject({ "test.negative": -5, "test.double": -0.25, "test.bool": false, "mitm.bytes_down": 4_000_000_000 })
    expect(root.resource).toEqual({ "service.name": "mitm", "mitm.vantage": "lab-1" })
    expect(root.events.map((event) => [event.name, event.timeUnixNano, event.attributes["mitm.decode.offset"]])).toEqual([["DecodeError", BigInt(at(0.26)), 1234567]])
    expect(fromProtobuf.map((span) => span.name)).toEqual(["SOCKS example.com:8080", "socks.setup", "GET"])
    expect(fromProtobuf[2].attributes["url.full"]).toBe("http://example.com/ü?q=ß")
    expect(fromProtobuf[2].endTimeUnixNano).toBe(BigInt(at(0.5)))
    expect(fromProtobuf[0].endTimeUnixNano).toBe(BigInt(at(300.5)))
  })
})

// ---------------------------------------------------------------------------
// The exporter, under TestClock, with an in-memory collector

interface Collector {
  readonly bodies: Array<{ readonly contentType: string; readonly spans: Array<ReceivedSpan> }>
  readonly client: Layer.Layer<HttpClient.HttpClient>
}

/** A collector that answers every request with `status` and keeps what it was sent. */
const collector = (status: number): Collector => {
  const bodies: Collector["bodies"] = []
  const client = Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request: HttpClientRequest.HttpClientRequest) =>
      Effect.sync(() => {
        const body = request.body as { readonly _tag: string; readonly body: Uint8Array; readonly contentType: string }
        expect(body._tag).toBe("Uint8Array")
        const bytes = Buffer.from(body.body)
        bodies.push({ contentType: body.contentType, spans: body.contentType === "application/json" ? decodeJsonTraces(bytes) : decodeProtobufTraces(bytes) })
        return HttpClientResponse.fromWeb(request, new Response(null, { status }))
      })
    )
  )
  return { bodies, client }
}

const exporter = (settings: Partial<Settings>, client: Layer.Layer<HttpClient.HttpClient>, config: Partial<OtlpTelemetry.OtlpExportConfig>) => {
  const base = Layer.mergeAll(SettingsLive.layer({ ...defaultSettings, ...settings }), SessionClockLive.layer, TorControlPort.layerOff)
  const store = InMemoryStore.layer.pipe(Layer.provide(base))
  return OtlpTelemetry.layer(config).pipe(Layer.provideMerge(Layer.mergeAll(store, base, client)))
}

/** Records a connection through the store as the proxy does, at session times. */
const closeOne = (host: string, opened: number, closedAt: number) =>
  Effect.gen(function*() {
    const store = yield* Store
    const clock = yield* SessionClock
    clock.unsafeNow()
    const recorder = yield* store.open({ client: "127.0.0.1:1", host, port: 80, socksVersion: 5, command: "connect", isolation: null, upstream: "direct", openedAt: opened })
    recorder.record(stamp(opened, socksRequest(host, 80)))
    recorder.record(stamp(closedAt, closed(1, 2, "client")))
    recorder.finish({ state: "closed", time: closedAt, closedBy: "client", error: null })
  })

const collectorAt = parseOtlpCollector("http://collector.test:4318")!

describe("the exporter", () => {
  it.scoped("closed connections wait for the interval (or a full batch) and go in one request, at their recorded times", () => {
    const receiver = collector(200)
    return Effect.gen(function*() {
      const telemetry = yield* Telemetry
      yield* TestClock.adjust("5 seconds")
      yield* closeOne("a.example", 0, 0.5)
      yield* closeOne("b.example", 0.1, 0.7)
      expect(receiver.bodies).toHaveLength(0)
      expect((yield* telemetry.status).queued).toBe(2)
      yield* TestClock.adjust("1 second")
      expect(receiver.bodies).toHaveLength(1)
      expect(receiver.bodies[0].contentType).toBe("application/json")
      const roots = receiver.bodies[0].spans.filter((span) => span.parentSpanId === null)
      const sessionStart = 5_000_000_000n
      expect(roots.map((span) => [span.name, span.startTimeUnixNano - sessionStart, span.endTimeUnixNano - sessionStart])).toEqual([
        ["SOCKS a.example:80", 0n, 500_000_000n],
        ["SOCKS b.example:80", 100_000_000n, 700_000_000n]
      ])
      expect(roots[0].resource).toEqual({ "service.name": "mitm", "mitm.vantage": "lab-7" })
      // Three make a full batch: sent at once, not at the interval.
      for (const host of ["c", "d", "e"]) yield* closeOne(host, 1, 1.5)
      yield* TestClock.adjust("10 millis")
      expect(receiver.bodies).toHaveLength(2)
      expect(yield* telemetry.status).toEqual({
        otlp: "http://collector.test:4318/v1/traces",
        encoding: "json",
        vantage: "lab-7",
        exported: 5,
        dropped: 0,
        failed: 0,
        queued: 0,
        lastError: null
      })
    }).pipe(Effect.provide(exporter({ otlp: collectorAt, otlpEncoding: "json", vantage: "lab-7" }, receiver.client, { exportInterval: "1 second", maxBatch: 3 })))
  })

  it.scoped("a collector that answers 503: the queue stays within its bound, the rest is dropped and counted, failures are retried, then logged once a minute", () => {
    const receiver = collector(503)
    const logged: Array<string> = []
    return Effect.gen(function*() {
      const telemetry = yield* Telemetry
      for (let i = 0; i < 12; i++) yield* closeOne(`h${i}.example`, 0, 0.1)
      expect(yield* telemetry.status).toMatchObject({ queued: 5, dropped: 7, failed: 0 })
      yield* TestClock.adjust("1 second")
      // The first attempt and its retry (after 500 ms) have failed by now.
      yield* TestClock.adjust("1 second")
      expect(receiver.bodies).toHaveLength(2)
      expect(yield* telemetry.status).toMatchObject({ queued: 0, dropped: 7, failed: 5, exported: 0, lastError: "the collector answered HTTP 503" })
      expect(logged).toHaveLength(1)
      expect(logged[0]).toBe(
        "mitm: telemetry export to http://collector.test:4318/v1/traces failed: the collector answered HTTP 503; traces so far: 0 exported, 5 failed, 7 dropped. Relaying is unaffected."
      )
      // More failures within the minute are counted, not logged.
      for (let round = 0; round < 5; round++) {
        yield* closeOne("again.example", 1, 1.1)
        yield* TestClock.adjust("10 seconds")
      }
      expect((yield* telemetry.status).failed).toBe(10)
      expect(logged).toHaveLength(1)
      yield* TestClock.adjust("15 seconds")
      expect(logged).toHaveLength(1)
      // A minute after the first message, the next failure is logged, with how many went unsaid.
      yield* closeOne("later.example", 2, 2.1)
      yield* TestClock.adjust("10 seconds")
      expect(logged).toHaveLength(2)
      expect(logged[1]).toMatch(/failed: the collector answered HTTP 503 \(5 more failed requests since the last message\); traces so far: 0 exported, 11 failed, 7 dropped/)
    }).pipe(
      Effect.provide(exporter({ otlp: collectorAt }, receiver.client, { exportInterval: "1 second", maxQueue: 5, retries: 1, maxBackoff: "5 seconds" })),
      Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => {
        logged.push(Array.isArray(message) ? message.join(" ") : String(message))
      })))
    )
  })

  it.scoped("with export off nothing is queued or sent; turned on through the settings, the next connections go out", () => {
    const receiver = collector(200)
    return Effect.gen(function*() {
      const telemetry = yield* Telemetry
      const settings = yield* SettingsStore
      yield* closeOne("quiet.example", 0, 0.1)
      yield* TestClock.adjust("5 seconds")
      expect(receiver.bodies).toHaveLength(0)
      expect(yield* telemetry.status).toMatchObject({ otlp: "off", queued: 0, exported: 0, dropped: 0 })
      yield* settings.update({ otlp: "http://collector.test:4318/", otlpEncoding: "protobuf", vantage: "runtime" })
      yield* closeOne("loud.example", 6, 6.1)
      yield* TestClock.adjust("2 seconds")
      expect(receiver.bodies.map((body) => [body.contentType, body.spans.filter((span) => span.parentSpanId === null).map((span) => span.name)])).toEqual([
        ["application/x-protobuf", ["SOCKS loud.example:80"]]
      ])
      expect(receiver.bodies[0].spans[0].resource["mitm.vantage"]).toBe("runtime")
      expect(yield* telemetry.status).toMatchObject({ otlp: "http://collector.test:4318/v1/traces", encoding: "protobuf", exported: 1 })
    }).pipe(Effect.provide(exporter({}, receiver.client, { exportInterval: "1 second" })))
  })
})
