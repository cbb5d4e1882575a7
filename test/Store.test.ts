import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Random, TestClock } from "effect"
import { serverStats } from "../src/domain/Connection.js"
import { stamp } from "../src/domain/Event.js"
import { defaultSettings } from "../src/domain/Settings.js"
import * as InMemoryStore from "../src/layers/InMemoryStore.js"
import * as SessionClockLive from "../src/layers/SessionClockLive.js"
import * as SettingsDelayPolicy from "../src/layers/SettingsDelayPolicy.js"
import * as SettingsLive from "../src/layers/SettingsLive.js"
import { DelayPolicy } from "../src/services/DelayPolicy.js"
import { SessionClock } from "../src/services/SessionClock.js"
import { Store } from "../src/services/Store.js"
import { closed, connectionWith, httpExchange, socksRequest } from "./support/Measurements.js"

const storeWith = (maxConnections: number) =>
  InMemoryStore.layer.pipe(Layer.provide(SettingsLive.layer({ ...defaultSettings, maxConnections })))

const init = { client: "127.0.0.1:1", host: "example.com", port: 80, socksVersion: 5 as const, command: "connect" as const, isolation: null, upstream: "direct", openedAt: 0 }

describe("the in-memory store", () => {
  it.effect("ids increase from 1, and beyond maxConnections the oldest closed connections are evicted and counted", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const first = yield* store.open(init)
      const second = yield* store.open(init)
      const third = yield* store.open(init)
      expect([first.id, second.id, third.id]).toEqual([1, 2, 3])
      // All open: nothing can be evicted yet.
      expect((yield* store.list).length).toBe(3)
      third.finish({ state: "closed", time: 1, closedBy: "client", error: null })
      first.finish({ state: "closed", time: 2, closedBy: "server", error: null })
      // Closing order decides: 3 closed first, so it goes first.
      expect((yield* store.list).map((c) => c.id)).toEqual([1, 2])
      expect(yield* store.counts).toEqual({ total: 3, evicted: 1, eventsCut: 0 })
      yield* store.open(init)
      expect((yield* store.list).map((c) => c.id)).toEqual([2, 4])
      expect((yield* store.counts).evicted).toBe(2)
    }).pipe(Effect.provide(storeWith(2))))

  it.effect("says which connections it evicts, so what else is kept of them (Tor's circuits) goes too", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const evicted: Array<number> = []
      const unsubscribe = store.onEvicted((id) => evicted.push(id))
      const recorders = [yield* store.open(init), yield* store.open(init), yield* store.open(init)]
      recorders[1].finish({ state: "closed", time: 1, closedBy: "client", error: null })
      recorders[0].finish({ state: "closed", time: 2, closedBy: "client", error: null })
      expect(evicted).toEqual([2])
      unsubscribe()
      yield* store.open(init)
      expect(evicted).toEqual([2])
    }).pipe(Effect.provide(storeWith(2))))

  it.effect("an event log is capped, the cut is counted, and ConnectionClose is always kept", () =>
    Effect.gen(function*() {
      const store = yield* Store
      const recorder = yield* store.open(init)
      for (let i = 0; i < InMemoryStore.maxEventsPerConnection + 5; i++) {
        recorder.record(stamp(0, { type: "HttpRequestEnd", exchange: i, bodyBytes: 0 }))
      }
      recorder.record(stamp(1, closed(0, 0, "client")))
      const connection = (yield* store.get(1))!
      expect(connection.eventsCut).toBe(5)
      expect(connection.events.at(-1)?.type).toBe("ConnectionClose")
      expect((yield* store.counts).eventsCut).toBe(5)
    }).pipe(Effect.provide(storeWith(10))))

  it.effect("reset forgets everything and ids start again from 1", () =>
    Effect.gen(function*() {
      const store = yield* Store
      yield* store.open(init)
      yield* store.reset
      expect(yield* store.list).toEqual([])
      expect((yield* store.open(init)).id).toBe(1)
    }).pipe(Effect.provide(storeWith(10))))
})

describe("the session clock", () => {
  it.effect("reads seconds since the session's first reading from the TestClock, and reset starts a new session", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("10 seconds")
      const clock = yield* SessionClock
      expect(yield* clock.now).toBe(0)
      yield* TestClock.adjust("1250 millis")
      expect(yield* clock.now).toBe(1.25)
      expect(clock.unsafeNow()).toBe(1.25)
      yield* clock.reset
      yield* TestClock.adjust("3 seconds")
      expect(yield* clock.now).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect(yield* clock.now).toBe(0.001)
    }).pipe(Effect.provide(SessionClockLive.layer)))
})

describe("the delay policy", () => {
  it.effect("a fixed SOCKS delay is a Schedule that waits exactly that long on the test clock", () =>
    Effect.gen(function*() {
      const delays = yield* DelayPolicy
      const fiber = yield* Effect.fork(Effect.flatMap(delays.forConnection("example.com"), (d) => Effect.schedule(Effect.void, d.socks!.schedule)))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("399 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(fiber)
    }).pipe(Effect.provide(SettingsDelayPolicy.layer.pipe(
      Layer.provide(SettingsLive.layer({ ...defaultSettings, socksDelay: { _tag: "Fixed", millis: 400 } }))
    ))))

  it.effect("a range draws from the Random service, within its bounds", () =>
    Effect.gen(function*() {
      const delays = yield* DelayPolicy
      for (let i = 0; i < 50; i++) {
        const millis = Duration.toMillis((yield* delays.forConnection("example.com")).socks!.duration)
        expect(millis).toBeGreaterThanOrEqual(200)
        expect(millis).toBeLessThanOrEqual(800)
      }
    }).pipe(Effect.provide(SettingsDelayPolicy.layer.pipe(
      Layer.provide(SettingsLive.layer({ ...defaultSettings, socksDelay: { _tag: "Range", minMillis: 200, maxMillis: 800 } }))
    ))))
})

describe("the delay policy's random source", () => {
  it.effect("is Effect's Random service: a fixed seed draws the same range delays every run", () =>
    Effect.gen(function*() {
      const delays = yield* DelayPolicy
      const draws = (seed: string) =>
        Effect.forEach([1, 2, 3, 4, 5], () => Effect.map(delays.forConnection("example.com"), (d) => Duration.toMillis(d.socks!.duration))).pipe(
          Effect.withRandom(Random.make(seed))
        )
      const first = yield* draws("tor")
      expect(yield* draws("tor")).toEqual(first)
      expect(yield* draws("another seed")).not.toEqual(first)
      for (const millis of first) expect(millis >= 200 && millis <= 800).toBe(true)
    }).pipe(Effect.provide(SettingsDelayPolicy.layer.pipe(
      Layer.provide(SettingsLive.layer({ ...defaultSettings, socksDelay: { _tag: "Range", minMillis: 200, maxMillis: 800 } }))
    ))))
})

describe("per-server statistics", () => {
  it("pair requests with responses in order per connection, and total time spans first SOCKS start to last close", () => {
    const first = httpExchange("GET /1 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", [0.5, 1.5, 1.5])
    const second = httpExchange("GET /2 HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", [2, 5, 5], first.state)
    const unanswered = httpExchange("GET / HTTP/1.1\r\n\r\n", "", [3, 3, 3])
    const stats = serverStats([
      connectionWith(1, "a.example", [[0, socksRequest("a.example", 80)], ...first.events, ...second.events, [6, closed()]], { port: 80 }),
      connectionWith(2, "a.example", [[1, socksRequest("a.example", 443)], [7, closed()]], { port: 443 }),
      connectionWith(3, "b.example", [[2, socksRequest("b.example", 80)], ...unanswered.events], { port: 80 })
    ])
    expect(stats).toEqual([
      { host: "a.example", ports: [80, 443], connections: 2, openConnections: 0, requests: 2, responses: 2, inferredExchanges: 0, meanResponseTime: 2, totalConnectionTime: 7 },
      { host: "b.example", ports: [80], connections: 1, openConnections: 1, requests: 1, responses: 0, inferredExchanges: 0, meanResponseTime: null, totalConnectionTime: null }
    ])
  })
})
