/**
 * The proxy's recorded times come from the clock service: with TestClock in
 * place, real loopback traffic is stamped with exactly the test clock's time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Random, TestClock, TestServices } from "effect"
import { eventually, httpOrigin, startMitm, tcpServer } from "./support/Loopback.js"
import { socks5Open } from "./support/SocksClient.js"

describe("recorded times", () => {
  it.scoped("are the session clock's, read from TestClock: SOCKS at 0, the request at 1.5 s, the close at 4 s", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("timed"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, socksDelay: { _tag: "None" } })
      yield* TestClock.adjust("1 hour")
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      yield* TestClock.adjust("1500 millis")
      yield* connection.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* connection.read(1)
      const answered = yield* TestServices.provideLive(
        eventually(Effect.map(mitm.connections, (all) => all[0]?.events.find((e) => e.type === "HttpResponseEnd")))
      )
      expect(answered.time).toBe(1.5)
      yield* TestClock.adjust("2500 millis")
      connection.socket.end()
      const closed = yield* TestServices.provideLive(
        eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.state === "closed")))
      )
      expect(closed.events.map((e) => [e.type, e.time])).toEqual([
        ["SocksRequestStart", 0],
        ["SocksResponseEnd", 0],
        ["HttpRequestStart", 1.5],
        ["HttpRequestEnd", 1.5],
        ["HttpResponseStart", 1.5],
        ["HttpResponseEnd", 1.5],
        ["ConnectionClose", 4]
      ])
      expect(closed.openedAt).toBe(0)
      expect(closed.closedAt).toBe(4)
    }))

  it.scoped("a SOCKS delay holds the connect upstream for exactly that long on the test clock", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("late"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, socksDelay: { _tag: "Fixed", millis: 400 } })
      const opening = yield* Effect.fork(socks5Open(mitm.proxy.port, "127.0.0.1", origin.port))
      const held = yield* TestServices.provideLive(
        eventually(Effect.map(mitm.connections, (all) => all[0]?.events.find((e) => e.type === "DelayStart")))
      )
      expect(held.time).toBe(0)
      yield* TestClock.adjust("399 millis")
      expect((yield* mitm.connections)[0].events.map((e) => e.type)).toEqual(["SocksRequestStart", "DelayStart"])
      yield* TestClock.adjust("1 millis")
      const { reply } = yield* Fiber.join(opening)
      expect(reply[1]).toBe(0x00)
      const events = (yield* mitm.connections)[0].events
      expect(events.map((e) => [e.type, e.time])).toEqual([
        ["SocksRequestStart", 0],
        ["DelayStart", 0],
        ["DelayEnd", 0.4],
        ["SocksResponseEnd", 0.4]
      ])
    }))

  it.scoped("a range draws each SOCKS delay from the seeded Random service, and its Schedule holds exactly that long", () =>
    Effect.gen(function*() {
      const expected = yield* Effect.withRandom(Random.nextRange(200, 800), Random.make("slow tor"))
      const origin = yield* httpOrigin((_request, response) => response.end("ranged"))
      const mitm = yield* Effect.withRandom(
        startMitm({ upstream: { _tag: "Direct" }, socksDelay: { _tag: "Range", minMillis: 200, maxMillis: 800 } }),
        Random.make("slow tor")
      )
      const opening = yield* Effect.fork(socks5Open(mitm.proxy.port, "127.0.0.1", origin.port))
      const held = yield* TestServices.provideLive(
        eventually(Effect.map(mitm.connections, (all) => all[0]?.events.find((e) => e.type === "DelayStart")))
      )
      expect(held).toMatchObject({ delay: "socks", time: 0 })
      expect("ms" in held && held.ms).toBeCloseTo(expected, 5)
      yield* TestClock.adjust(Math.floor(expected))
      expect((yield* mitm.connections)[0].events.map((e) => e.type)).toEqual(["SocksRequestStart", "DelayStart"])
      yield* TestClock.adjust("1 millis")
      const { reply } = yield* Fiber.join(opening)
      expect(reply[1]).toBe(0x00)
      const released = (yield* mitm.connections)[0].events.find((e) => e.type === "DelayEnd")!
      expect(released.time).toBeCloseTo(expected / 1000, 5)
    }))

  it.scoped("per-host rules: the first matching rule decides each connection's SOCKS delay, no match no delay", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("per host"))
      const mitm = yield* startMitm({
        upstream: { _tag: "Direct" },
        socksDelay: {
          _tag: "PerHost",
          rules: [
            { pattern: "localhost", delay: { _tag: "Fixed", millis: 700 } },
            { pattern: "*.test", delay: { _tag: "Fixed", millis: 50 } }
          ]
        }
      })
      // 127.0.0.1 matches no rule: it goes up at once.
      const direct = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      expect(direct.reply[1]).toBe(0x00)
      const opening = yield* Effect.fork(socks5Open(mitm.proxy.port, "localhost", origin.port))
      yield* TestServices.provideLive(
        eventually(Effect.map(mitm.connections, (all) => all[1]?.events.find((e) => e.type === "DelayStart")))
      )
      yield* TestClock.adjust("699 millis")
      expect(opening.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect((yield* Fiber.join(opening)).reply[1]).toBe(0x00)
      const [first, second] = yield* mitm.connections
      expect(first.events.some((e) => e.type === "DelayStart")).toBe(false)
      expect(second.events.filter((e) => e.type.startsWith("Delay")).map((e) => [e.type, e.time])).toEqual([
        ["DelayStart", 0],
        ["DelayEnd", 0.7]
      ])
    }))

  it.scoped("an HTTP delay holds each request on a keep-alive connection before it goes upstream, in order", () =>
    Effect.gen(function*() {
      const arrived: Array<string> = []
      const origin = yield* httpOrigin((request, response) => {
        arrived.push(request.url ?? "")
        response.end(`answer ${request.url}`)
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, httpDelay: { _tag: "Fixed", millis: 300 } })
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const holds = (count: number) =>
        TestServices.provideLive(eventually(Effect.map(mitm.connections, (all) => {
          const events = all[0]?.events.filter((e) => e.type === "DelayStart") ?? []
          return events.length >= count ? events : undefined
        })))
      for (const [index, path] of ["/one", "/two"].entries()) {
        yield* connection.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
        yield* holds(index + 1)
        yield* TestClock.adjust("299 millis")
        yield* TestServices.provideLive(Effect.sleep("50 millis"))
        expect(arrived).toEqual(["/one", "/two"].slice(0, index))
        yield* TestClock.adjust("1 millis")
        yield* TestServices.provideLive(eventually(Effect.succeed(arrived.length === index + 1 ? true : undefined)))
      }
      connection.socket.end()
      const body = (yield* connection.readToEnd).toString()
      expect(body).toMatch(/answer \/one[^]*answer \/two$/)
      const events = (yield* mitm.connections)[0].events.filter((e) => e.type.startsWith("Delay") || e.type === "HttpRequestStart")
      expect(events.map((e) => [e.type, e.time])).toEqual([
        ["HttpRequestStart", 0],
        ["DelayStart", 0],
        ["DelayEnd", 0.3],
        ["HttpRequestStart", 0.3],
        ["DelayStart", 0.3],
        ["DelayEnd", 0.6]
      ])
    }))

  it.scoped("pipelined requests in one chunk are each held before they go upstream, in order", () =>
    Effect.gen(function*() {
      const arrived: Array<string> = []
      const origin = yield* tcpServer((socket) => {
        socket.on("data", (chunk: Buffer) => {
          for (const match of chunk.toString().matchAll(/GET (\S+)/g)) arrived.push(match[1])
        })
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" }, httpDelay: { _tag: "Fixed", millis: 300 } })
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      yield* connection.write("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
      const delays = (count: number) =>
        TestServices.provideLive(eventually(Effect.map(mitm.connections, (all) => {
          const events = all[0]?.events.filter((e) => e.type === "DelayStart") ?? []
          return events.length >= count ? events : undefined
        })))
      yield* delays(1)
      yield* TestServices.provideLive(Effect.sleep("50 millis"))
      expect(arrived).toEqual([])
      yield* TestClock.adjust("300 millis")
      yield* delays(2)
      yield* TestServices.provideLive(eventually(Effect.succeed(arrived.length === 1 ? true : undefined)))
      expect(arrived).toEqual(["/one"])
      yield* TestClock.adjust("300 millis")
      yield* TestServices.provideLive(eventually(Effect.succeed(arrived.length === 2 ? true : undefined)))
      expect(arrived).toEqual(["/one", "/two"])
      const events = (yield* mitm.connections)[0].events.filter((e) => e.type.startsWith("Delay"))
      expect(events.map((e) => [e.type, e.time])).toEqual([
        ["DelayStart", 0],
        ["DelayEnd", 0.3],
        ["DelayStart", 0.3],
        ["DelayEnd", 0.6]
      ])
    }))
})
