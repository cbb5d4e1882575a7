/**
 * Bandwidth throttling and delays: timing proven with TestClock, then once
 * end to end on loopback with real time and a tolerance.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, TestClock } from "effect"
import * as crypto from "node:crypto"
import { defaultSettings, type Settings } from "../src/domain/Settings.js"
import * as SettingsLive from "../src/layers/SettingsLive.js"
import * as TokenBucketThrottle from "../src/layers/TokenBucketThrottle.js"
import { SettingsStore } from "../src/services/Settings.js"
import { Throttle } from "../src/services/Throttle.js"
import { eventually, httpOrigin, startMitm, tcpServer } from "./support/Loopback.js"
import { socks5Open } from "./support/SocksClient.js"

const throttleWith = (settings: Partial<Settings>) =>
  Layer.merge(TokenBucketThrottle.layer, Layer.empty).pipe(Layer.provideMerge(SettingsLive.layer({ ...defaultSettings, ...settings })))

/** Sends `total` bytes in `chunk`-byte pieces through the throttle, sleeping as told; returns the test-clock time taken. */
const transfer = (total: number, chunk: number) =>
  Effect.gen(function*() {
    const throttle = (yield* Throttle).forConnection()
    const started = yield* Clock.currentTimeMillis
    for (let sent = 0; sent < total; sent += chunk) {
      const wait = throttle.take("down", Math.min(chunk, total - sent))
      if (wait !== undefined) yield* Effect.sleep(wait)
    }
    return (yield* Clock.currentTimeMillis) - started
  })

const runOnTestClock = <A>(effect: Effect.Effect<A, never, Throttle>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    while (fiber.unsafePoll() === null) {
      yield* Effect.yieldNow()
      yield* TestClock.adjust("5 millis")
    }
    return yield* Fiber.join(fiber)
  })

describe("bandwidth throttling on the test clock", () => {
  it.effect("1 MiB at 256KiB/s takes 4 s of test-clock time (within one 5 ms tick of the test)", () =>
    Effect.gen(function*() {
      const elapsed = yield* runOnTestClock(transfer(1024 * 1024, 64 * 1024))
      expect(Math.abs(elapsed - 4000)).toBeLessThanOrEqual(5)
    }).pipe(Effect.provide(throttleWith({ bandwidth: 256 * 1024 }))))

  it.effect("the total limit is shared: two connections at 100KiB/s total take twice as long as one", () =>
    Effect.gen(function*() {
      const both = yield* runOnTestClock(Effect.all([transfer(100 * 1024, 10 * 1024), transfer(100 * 1024, 10 * 1024)], { concurrency: 2 }))
      expect(Math.max(...both)).toBeGreaterThanOrEqual(1990)
      expect(Math.max(...both)).toBeLessThanOrEqual(2010)
    }).pipe(Effect.provide(throttleWith({ bandwidthTotal: 100 * 1024 }))))

  it.effect("no limit holds nothing, and a change applies at once", () =>
    Effect.gen(function*() {
      const throttle = (yield* Throttle).forConnection()
      expect(throttle.take("up", 1_000_000)).toBeUndefined()
      yield* (yield* SettingsStore).update({ bandwidth: "1KiB/s" })
      expect(throttle.take("up", 2048)).toBeDefined()
    }).pipe(Effect.provide(throttleWith({}))))
})

describe("delays and throttling end to end (real time, with a tolerance)", () => {
  it.scopedLive("a 400ms SOCKS delay shows at least 400ms between SocksRequestStart and SocksResponseEnd", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, socksDelay: { _tag: "Fixed", millis: 400 } })
      yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const events = (yield* eventually(Effect.map(mitm.connections, (all) => all[0]))).events
      const start = events.find((e) => e.type === "SocksRequestStart")!.time
      const reply = events.find((e) => e.type === "SocksResponseEnd")!.time
      expect(reply - start).toBeGreaterThanOrEqual(0.4)
      expect(reply - start).toBeLessThan(1.5)
    }))

  it.scopedLive("a 300ms HTTP delay shows at the origin", () =>
    Effect.gen(function*() {
      let arrived = 0n
      const origin = yield* httpOrigin((_request, response) => {
        arrived = process.hrtime.bigint()
        response.end("ok")
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, httpDelay: { _tag: "Fixed", millis: 300 } })
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const sent = process.hrtime.bigint()
      yield* connection.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      yield* connection.readToEnd
      const millis = Number(arrived - sent) / 1e6
      expect(millis).toBeGreaterThanOrEqual(295)
      expect(millis).toBeLessThan(1500)
    }))

  it.scopedLive("1 MiB at 256KiB/s takes about 4 s, and arrives intact", () =>
    Effect.gen(function*() {
      const body = crypto.randomBytes(1024 * 1024)
      const origin = yield* tcpServer((socket) => socket.end(body))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, bandwidth: 256 * 1024 })
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const started = process.hrtime.bigint()
      const received = yield* connection.readToEnd
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      expect(received.equals(body)).toBe(true)
      expect(seconds).toBeGreaterThan(3.6)
      expect(seconds).toBeLessThan(5)
    }), { timeout: 20_000 })
})
