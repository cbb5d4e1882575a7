/**
 * The Sessions service: saving and reopening loses nothing (a property over generated
 * measurements, in memory and in a directory), listing is newest first, a file is
 * written atomically, and what is not a session is refused or left out.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, TestClock } from "effect"
import * as fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Connection } from "../src/domain/Connection.js"
import { type EventFacts, stamp } from "../src/domain/Event.js"
import type { Measurements } from "../src/domain/Session.js"
import type { TorAttribution, TorCircuit } from "../src/domain/TorCircuits.js"
import { connectionJson } from "../src/domain/Connection.js"
import * as SessionsLive from "../src/layers/SessionsLive.js"
import { Sessions } from "../src/services/Sessions.js"
import { closed, connectionWith, socksReply, socksRequest } from "./support/Measurements.js"

const text = fc.string({ maxLength: 12, unit: "binary" })
const count = fc.nat({ max: 1_000_000 })
const seconds = fc.double({ min: 0, max: 10_000, noNaN: true, noDefaultInfinity: true })
const nullable = <A>(arbitrary: fc.Arbitrary<A>) => fc.option(arbitrary, { nil: null })
const headers = fc.array(text, { maxLength: 3 })
const delayKind = fc.constantFrom("socks" as const, "http" as const)

/** Every kind of event, with arbitrary facts: typed against the event model, so a new field must be generated here too. */
const facts: fc.Arbitrary<EventFacts> = fc.oneof(
  fc.record({
    type: fc.constant("SocksRequestStart" as const),
    host: text,
    port: fc.nat({ max: 65535 }),
    command: fc.constantFrom("connect" as const, "resolve" as const, "resolve_ptr" as const, "invalid" as const),
    version: fc.constantFrom(4 as const, 5 as const)
  }),
  fc.record({ type: fc.constant("SocksResponseEnd" as const), reply: fc.nat({ max: 255 }), replyName: text, address: nullable(text) }),
  fc.record({ type: fc.constant("HttpRequestStart" as const), exchange: fc.nat({ max: 5 }), method: text, target: text, httpVersion: text, headers }),
  fc.record({ type: fc.constant("HttpRequestEnd" as const), exchange: fc.nat({ max: 5 }), bodyBytes: count }),
  fc.record({ type: fc.constant("HttpResponseStart" as const), exchange: fc.nat({ max: 5 }), status: fc.nat({ max: 999 }), reason: text, httpVersion: text, headers }),
  fc.record({ type: fc.constant("HttpInformational" as const), exchange: fc.nat({ max: 5 }), status: fc.nat({ max: 199 }), reason: text, httpVersion: text, headers }),
  fc.record({ type: fc.constant("HttpResponseEnd" as const), exchange: fc.nat({ max: 5 }), bodyBytes: count }),
  fc.record({ type: fc.constant("TlsClientHello" as const), sni: nullable(text), alpn: fc.array(text, { maxLength: 2 }), versions: fc.array(text, { maxLength: 2 }) }),
  fc.record({ type: fc.constant("TlsServerHello" as const), tlsVersion: text, cipher: text, alpn: nullable(text), helloRetryRequest: fc.boolean() }),
  fc.record({ type: fc.constant("TlsApplicationData" as const), direction: fc.constantFrom("up" as const, "down" as const) }),
  fc.record({ type: fc.constant("InferredRequest" as const), exchange: fc.nat({ max: 5 }), afterBytes: nullable(count) }),
  fc.record({ type: fc.constant("InferredResponse" as const), exchange: fc.nat({ max: 5 }), afterBytes: nullable(count) }),
  fc.record({ type: fc.constant("DelayStart" as const), delay: delayKind, ms: count, exchange: nullable(fc.nat({ max: 5 })) }),
  fc.record({ type: fc.constant("DelayEnd" as const), delay: delayKind, ms: count, exchange: nullable(fc.nat({ max: 5 })) }),
  fc.record({
    type: fc.constant("DecodeError" as const),
    error: fc.record({
      _tag: fc.constantFrom("HttpParseError" as const, "TlsParseError" as const, "SocksParseError" as const),
      reason: text,
      message: text,
      offset: nullable(count)
    })
  }),
  fc.record({ type: fc.constant("TorStreamAttached" as const), stream: text, circuit: text, path: fc.array(text, { maxLength: 3 }) }),
  fc.record({ type: fc.constant("TorStreamFailed" as const), stream: text, reason: nullable(text), remoteReason: nullable(text) }),
  fc.record({ type: fc.constant("ConnectionClose" as const), closedBy: fc.constantFrom("client" as const, "server" as const, null), bytesUp: count, bytesDown: count })
)

const relay = fc.record({ fingerprint: nullable(fc.string({ unit: fc.constantFrom(..."0123456789ABCDEF"), minLength: 40, maxLength: 40 })), nickname: nullable(text) })

const attribution: fc.Arbitrary<TorAttribution> = fc.record({
  stream: text,
  circuit: nullable(text),
  path: fc.array(relay, { maxLength: 3 }),
  circuitBuildTime: nullable(seconds)
})

const circuit: fc.Arbitrary<TorCircuit> = fc.record({
  id: text,
  purpose: nullable(text),
  state: fc.constantFrom("launched" as const, "built" as const, "failed" as const, "closed" as const),
  path: fc.array(relay, { maxLength: 3 }),
  launchedAt: nullable(seconds),
  builtAt: nullable(seconds),
  buildTime: nullable(seconds),
  closedAt: nullable(seconds),
  reason: nullable(text),
  connections: fc.array(fc.nat({ max: 50 }), { maxLength: 4 }),
  rttMs: nullable(count),
  conflux: fc.array(text, { maxLength: 2 })
})

const connection = (id: number): fc.Arbitrary<Connection> =>
  fc.record({
    id: fc.constant(id),
    client: text,
    host: text,
    port: fc.nat({ max: 65535 }),
    socksVersion: fc.constantFrom(4 as const, 5 as const),
    command: fc.constantFrom("connect" as const, "resolve" as const, "resolve_ptr" as const, "bind" as const, "udp_associate" as const, "invalid" as const),
    isolation: nullable(text),
    upstream: text,
    state: fc.constantFrom("open" as const, "closed" as const, "failed" as const),
    protocol: fc.constantFrom("http" as const, "tls" as const, "unknown" as const, "pending" as const),
    openedAt: seconds,
    closedAt: nullable(seconds),
    closedBy: fc.constantFrom("client" as const, "server" as const, null),
    bytesUp: count,
    bytesDown: count,
    events: fc.array(fc.tuple(seconds, facts), { maxLength: 12 }).map((timed) => timed.map(([time, event]) => stamp(time, event))),
    eventsCut: count,
    error: nullable(text)
  })

const measurements: fc.Arbitrary<Measurements> = fc.integer({ min: 0, max: 6 }).chain((size) =>
  fc.record({
    connections: size === 0 ? fc.constant([]) : fc.tuple(...Array.from({ length: size }, (_, index) => connection(index + 1))),
    tor: fc.array(fc.tuple(fc.integer({ min: 1, max: Math.max(size, 1) }), attribution), { maxLength: size }).map((pairs) => new Map(pairs)),
    circuits: fc.array(circuit, { maxLength: 3 }),
    sessionStartMillis: fc.integer({ min: 0, max: 4_000_000_000_000 }),
    now: seconds
  })
)

/** What `/api/connections` shows of these measurements. */
const apiConnections = (m: Measurements) => m.connections.map((c) => JSON.parse(JSON.stringify(connectionJson(c, m.tor.get(c.id) ?? null))))

const roundTrip = (m: Measurements) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const saved = yield* sessions.save("a session", m)
    const reopened = yield* sessions.get(saved.id)
    expect(apiConnections(reopened.measurements)).toEqual(apiConnections(m))
    expect(reopened.measurements.circuits).toEqual(JSON.parse(JSON.stringify(m.circuits)))
    expect(reopened.measurements.sessionStartMillis).toBe(m.sessionStartMillis)
    expect(reopened.measurements.now).toBe(m.now)
    expect(saved).toMatchObject({ name: "a session", connections: m.connections.length, source: "mitm" })
    expect(reopened.info).toEqual(saved)
  })

const temporaryDirectory = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "mitm-sessions-"))),
  (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
)

describe("Sessions", () => {
  it.effect("saving and reopening loses nothing: the reopened connections are what /api/connections showed (generated sessions, in memory)", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(measurements, (m) => Effect.runPromise(roundTrip(m).pipe(Effect.provide(SessionsLive.layerMemory("test"))))),
        { numRuns: 150 }
      )
    ))

  it.scoped("the same through files in a directory, each a HAR 1.2 document with _mitm", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const layer = SessionsLive.layerDirectory(directory, "test")
      yield* Effect.promise(() =>
        fc.assert(fc.asyncProperty(measurements, (m) => Effect.runPromise(roundTrip(m).pipe(Effect.provide(layer)))), { numRuns: 25 })
      )
      const files = fs.readdirSync(directory)
      expect(files.length).toBe(25)
      expect(files.every((name) => /^\d{8}-\d{6}-[0-9a-f]{6}\.har$/.test(name))).toBe(true)
      const document = JSON.parse(fs.readFileSync(path.join(directory, files[0]), "utf8"))
      expect(document.log.version).toBe("1.2")
      expect(document.log._mitm).toMatchObject({ format: 1, session: { name: "a session", source: "mitm" } })
      expect(fs.statSync(path.join(directory, files[0])).mode & 0o777).toBe(0o600)
    }))

  it.scoped("lists newest first; removes; a missing id, a file that is not HAR and a temporary file are not sessions", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const sessions = yield* Effect.provide(Sessions, SessionsLive.layerDirectory(directory, "test"))
      const connections = [connectionWith(1, "example.com", [[0, socksRequest("example.com")], [0.2, socksReply()], [1, closed()]])]
      const m: Measurements = { connections, tor: new Map(), circuits: [], sessionStartMillis: 0, now: 1 }
      const first = yield* sessions.save("first", m)
      yield* TestClock.adjust("1500 millis")
      const second = yield* sessions.save("second", m)
      fs.writeFileSync(path.join(directory, "broken.har"), "{ not json")
      fs.writeFileSync(path.join(directory, "notes.txt"), "hello")
      fs.writeFileSync(path.join(directory, `${first.id}.har.123.tmp`), "{")
      const listed = yield* sessions.list
      expect([first.savedAt, second.savedAt]).toEqual(["1970-01-01T00:00:00.000Z", "1970-01-01T00:00:01.500Z"])
      expect(listed.map((info) => info.id)).toEqual([second.id, first.id])

      const broken = yield* Effect.flip(sessions.get("broken"))
      expect(broken._tag).toBe("SessionStorageError")
      expect(broken.message).toMatch(/could not read session broken: not JSON/)
      expect((yield* Effect.flip(sessions.get("nope")))._tag).toBe("SessionNotFound")
      expect((yield* Effect.flip(sessions.get("../etc/passwd")))._tag).toBe("SessionNotFound")

      yield* sessions.remove(first.id)
      expect((yield* sessions.list).map((info) => info.id)).toEqual([second.id])
      expect(Exit.isFailure(yield* Effect.exit(sessions.remove(first.id)))).toBe(true)
      expect(fs.existsSync(path.join(directory, `${first.id}.har`))).toBe(false)
    }))

  it.effect("an imported HAR is kept as it came, with _mitm naming it; a document that is not HAR is refused with its first problem", () =>
    Effect.gen(function*() {
      const sessions = yield* Sessions
      const har = {
        log: {
          version: "1.2",
          creator: { name: "Some tool", version: "1" },
          pages: [{ id: "page_1", title: "A page", startedDateTime: "2026-12-01T10:00:00.000Z" }],
          entries: [{
            startedDateTime: "2026-12-01T10:00:00.100Z",
            time: 50,
            request: { method: "GET", url: "http://example.com/", httpVersion: "HTTP/1.1", headers: [] },
            response: { status: 200, statusText: "OK", content: { size: 10, mimeType: "text/html", text: "0123456789" } },
            timings: { send: 0, wait: 40, receive: 10 },
            _custom: { kept: true }
          }]
        }
      }
      const info = yield* sessions.importHar(har)
      expect(info).toMatchObject({ name: "A page", connections: 1, source: "har" })
      const kept = JSON.parse(yield* sessions.har(info.id))
      expect(kept.log.entries).toEqual(har.log.entries)
      expect(kept.log._mitm.session).toEqual({ name: "A page", savedAt: info.savedAt, source: "har" })
      const named = yield* sessions.importHar(har, "my name")
      expect(named.name).toBe("my name")

      const refused = yield* Effect.flip(sessions.importHar({ log: { entries: [{ startedDateTime: "yesterday" }] } }))
      expect(refused._tag).toBe("HarDocumentError")
      expect(refused.message).toBe("not a HAR document: log.entries[0].startedDateTime: expected an ISO 8601 date such as 2026-12-01T10:00:00.000Z")
      expect((yield* sessions.list).length).toBe(2)
    }).pipe(Effect.provide(SessionsLive.layerMemory("test"))))
})
