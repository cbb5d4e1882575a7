/**
 * Broken peers: resets on either side, an upstream that never answers, a
 * client that never finishes its greeting. MITM records each with the right
 * state, keeps serving others, and leaks no sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock, TestServices } from "effect"
import { eventually, httpOrigin, startMitm, tcpServer } from "./support/Loopback.js"
import { connectRaw, socks5Greeting, socks5Open } from "./support/SocksClient.js"

const direct = { upstream: { _tag: "Direct" } } as const

/** Open sockets and servers in this process (Node's handle list): for leak checks. */
const handles = () => (process as unknown as { _getActiveHandles(): Array<unknown> })._getActiveHandles().length

/** Every connection fiber has ended: nothing is left running for closed clients. */
const noFibersLeft = (clients: Effect.Effect<number>) => eventually(Effect.map(clients, (n) => (n === 0 ? true : undefined)))

const stillServes = (proxyPort: number, originPort: number) =>
  Effect.gen(function*() {
    const { connection, reply } = yield* socks5Open(proxyPort, "127.0.0.1", originPort)
    expect(reply[1]).toBe(0x00)
    yield* connection.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    expect((yield* connection.readToEnd).toString()).toMatch(/ok$/)
  })

describe("broken peers", () => {
  it.scopedLive("a client that resets mid-request is recorded as failed, and MITM serves the next client", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm(direct)
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      yield* connection.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf")
      yield* Effect.sleep("50 millis")
      connection.socket.resetAndDestroy()
      const recorded = yield* eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.id === 1 && c.state !== "open")))
      expect(recorded.state).toBe("failed")
      expect(recorded.closedBy).toBe("client")
      expect(recorded.error).toMatch(/^client: .*ECONNRESET/)
      yield* stillServes(mitm.proxy.port, origin.port)
      yield* noFibersLeft(mitm.clients)
    }))

  it.scopedLive("an upstream that resets mid-response is recorded as failed and the client's socket is closed", () =>
    Effect.gen(function*() {
      const origin = yield* tcpServer((socket) => {
        socket.once("data", () => {
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
          Effect.runFork(Effect.sleep("50 millis").pipe(Effect.andThen(() => socket.resetAndDestroy())))
        })
      })
      const good = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm(direct)
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      yield* connection.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      const received = (yield* connection.readToEnd).toString()
      expect(received).toMatch(/partial$/)
      const recorded = yield* eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.id === 1 && c.state !== "open")))
      expect(recorded.state).toBe("failed")
      expect(recorded.error).toMatch(/^server: .*ECONNRESET/)
      expect(recorded.events.filter((e) => e.type === "HttpResponseEnd")).toHaveLength(0)
      yield* stillServes(mitm.proxy.port, good.port)
      yield* noFibersLeft(mitm.clients)
    }))

  it.scoped("a SOCKS upstream that accepts and never answers gives the client a failure reply after 120 s (TestClock), not a hang", () =>
    Effect.gen(function*() {
      let upstreamSockets = 0
      let upstreamClosed = 0
      const silent = yield* tcpServer((socket) => {
        upstreamSockets++
        socket.on("close", () => upstreamClosed++)
        socket.resume() // read (and drop) everything, so MITM's close is seen
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: silent.port } })
      const opening = yield* Effect.fork(socks5Open(mitm.proxy.port, "example.com", 80))
      yield* TestServices.provideLive(eventually(Effect.map(mitm.connections, (all) => all[0])))
      yield* TestServices.provideLive(Effect.sleep("100 millis"))
      // A slow Tor connect is not cut early: after 100 s there is still no reply.
      yield* TestClock.adjust("100 seconds")
      expect((yield* mitm.connections)[0].state).toBe("open")
      yield* TestClock.adjust("21 seconds")
      const { reply } = yield* Fiber.join(opening)
      expect(reply[1]).toBe(0x01)
      const recorded = yield* TestServices.provideLive(eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.state === "failed"))))
      expect(recorded.error).toMatch(/Timeout/)
      yield* TestServices.provideLive(noFibersLeft(mitm.clients))
      // MITM let go of its socket to the silent upstream.
      yield* TestServices.provideLive(eventually(Effect.sync(() => upstreamSockets === 1 && upstreamClosed === 1 ? true : undefined)))
    }))

  it.scoped("a client that never finishes its SOCKS greeting is closed after the handshake timeout (TestClock)", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm(direct)
      const slow = yield* connectRaw(mitm.proxy.port)
      yield* slow.write(Buffer.from([0x05, 0x02, 0x00]))
      const closed = yield* Effect.fork(slow.readToEnd)
      yield* TestServices.provideLive(Effect.sleep("100 millis"))
      yield* TestClock.adjust("29 seconds")
      expect(closed.unsafePoll()).toBeNull()
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(closed)).length).toBe(0)
      expect(yield* mitm.connections).toHaveLength(0)
    }))

  it.scopedLive("half-closes in both directions pass through, and no socket is left behind afterwards", () =>
    Effect.gen(function*() {
      const origin = yield* tcpServer((socket) => {
        // The server closes its side first, then still reads what the client sends.
        socket.end("bye")
        const chunks: Array<Buffer> = []
        socket.on("data", (chunk: Buffer) => chunks.push(chunk))
        socket.on("end", () => expect(Buffer.concat(chunks).toString()).toBe("late words"))
      }, { allowHalfOpen: true })
      const mitm = yield* startMitm(direct)
      const before = handles()
      for (let i = 0; i < 20; i++) {
        const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
        expect((yield* connection.read(3)).toString()).toBe("bye")
        connection.socket.end("late words")
        yield* connection.readToEnd
      }
      yield* eventually(Effect.map(mitm.connections, (all) => all.length === 20 && all.every((c) => c.state === "closed") ? all : undefined))
      const recorded = yield* mitm.connections
      expect(recorded.every((c) => c.closedBy === "server")).toBe(true)
      yield* eventually(Effect.sync(() => handles() <= before + 2 ? true : undefined))
      yield* noFibersLeft(mitm.clients)
    }))

  it.scopedLive("garbage after a valid greeting gets the right SOCKS reply, and many bad clients leave nothing open", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm(direct)
      const before = handles()
      for (let i = 0; i < 50; i++) {
        const bad = yield* connectRaw(mitm.proxy.port)
        yield* bad.write(Buffer.concat([socks5Greeting(), Buffer.from([0x05, 0x01, 0x00, 0x09, 1, 2, 3])]))
        const reply = yield* bad.readToEnd
        expect([...reply.subarray(0, 2)]).toEqual([0x05, 0x00])
        expect(reply[3]).toBe(0x08)
      }
      yield* stillServes(mitm.proxy.port, origin.port)
      yield* eventually(Effect.sync(() => handles() <= before + 2 ? true : undefined))
      yield* noFibersLeft(mitm.clients)
    }))
})
