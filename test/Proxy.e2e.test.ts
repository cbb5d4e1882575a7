/**
 * End to end over loopback: clients through a running MITM to local origins,
 * with the internal (direct) upstream and with an in-test SOCKS5 upstream.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import type * as net from "node:net"
import * as tls from "node:tls"
import { closedPort, eventually, httpOrigin, startMitm, tcpServer } from "./support/Loopback.js"
import { connectRaw, socks5Connect, socks5ConnectIPv4, socks5Greeting, socks5Open, userPass } from "./support/SocksClient.js"

const direct = { upstream: { _tag: "Direct" } } as const

const closedConnection = (mitm: { connections: Effect.Effect<ReadonlyArray<import("../src/domain/Connection.js").Connection>> }, id: number) =>
  eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.id === id && c.state !== "open")))

describe("MITM end to end", () => {
  it.scopedLive("a GET through the direct upstream arrives, and its SOCKS and HTTP events are recorded in order", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("hello"))
      const mitm = yield* startMitm(direct)
      const { connection, method, reply } = yield* socks5Open(mitm.proxy.port, "localhost", origin.port)
      expect([...method]).toEqual([0x05, 0x00])
      expect(reply[1]).toBe(0x00)
      yield* connection.write(`GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
      const response = (yield* connection.readToEnd).toString("latin1")
      expect(response).toMatch(/^HTTP\/1\.1 200 OK/)
      expect(response.endsWith("hello")).toBe(true)

      const recorded = yield* closedConnection(mitm, 1)
      expect(recorded).toMatchObject({ host: "localhost", port: origin.port, upstream: "direct", protocol: "http", state: "closed" })
      expect(recorded.events.map((e) => e.type)).toEqual([
        "SocksRequestStart",
        "SocksResponseEnd",
        "HttpRequestStart",
        "HttpRequestEnd",
        "HttpResponseStart",
        "HttpResponseEnd",
        "ConnectionClose"
      ])
      expect(recorded.events[0].detail).toBe(`localhost:${origin.port}`)
      expect(recorded.events[1].detail).toBe("succeeded")
      expect(recorded.events[2].detail).toBe("GET /index.html HTTP/1.1")
      expect(recorded.events[4].detail).toBe("HTTP/1.1 200 OK")
      expect(recorded.events[5].detail).toBe("5 bytes")
      const times = recorded.events.map((e) => e.time)
      expect([...times].sort((a, b) => a - b)).toEqual(times)
      expect(recorded.bytesDown).toBe(response.length)
    }))

  it.scopedLive("8 MiB of random bytes each way arrive identical, with backpressure", () =>
    Effect.gen(function*() {
      const size = 8 * 1024 * 1024
      const up = crypto.randomBytes(size)
      const down = crypto.randomBytes(size)
      let receivedAtOrigin = crypto.createHash("sha256")
      let originBytes = 0
      const origin = yield* tcpServer((socket) => {
        socket.on("data", (chunk: Buffer) => {
          receivedAtOrigin.update(chunk)
          originBytes += chunk.length
        })
        socket.on("end", () => socket.end())
        socket.write(down)
      }, { allowHalfOpen: true })
      const mitm = yield* startMitm(direct)
      const { connection, reply } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      expect(reply[1]).toBe(0x00)
      connection.socket.end(up)
      const received = yield* connection.readToEnd
      expect(received.length).toBe(size)
      expect(crypto.createHash("sha256").update(received).digest("hex")).toBe(crypto.createHash("sha256").update(down).digest("hex"))
      const recorded = yield* closedConnection(mitm, 1)
      expect(originBytes).toBe(size)
      expect(receivedAtOrigin.digest("hex")).toBe(crypto.createHash("sha256").update(up).digest("hex"))
      expect(recorded).toMatchObject({ bytesUp: size, bytesDown: size, protocol: "unknown", closedBy: "client" })
    }))

  it.scopedLive("a client that stops reading stalls the server through MITM instead of MITM buffering without bound", () =>
    Effect.gen(function*() {
      const chunk = Buffer.alloc(64 * 1024, 7)
      let accepted = 0
      let stalled = false
      const origin = yield* tcpServer((socket) => {
        const pump = () => {
          // The server offers up to 256 MiB; it may only get rid of what the path can hold.
          while (accepted < 256 * 1024 * 1024) {
            accepted += chunk.length
            if (!socket.write(chunk)) {
              stalled = true
              socket.once("drain", pump)
              return
            }
          }
        }
        pump()
      })
      const mitm = yield* startMitm(direct)
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      connection.socket.pause()
      yield* Effect.sleep("1500 millis")
      const heldWhilePaused = accepted
      yield* Effect.sleep("500 millis")
      expect(stalled).toBe(true)
      // Kernel buffers on three sockets plus Node's high-water marks, not hundreds of MiB.
      expect(heldWhilePaused).toBeLessThan(48 * 1024 * 1024)
      expect(accepted).toBe(heldWhilePaused)
    }))

  it.scopedLive("a half-close from the client reaches the server, which still answers", () =>
    Effect.gen(function*() {
      const origin = yield* tcpServer((socket) => {
        const chunks: Array<Buffer> = []
        socket.on("data", (chunk: Buffer) => chunks.push(chunk))
        socket.on("end", () => socket.end(`got ${Buffer.concat(chunks).toString()}`))
      }, { allowHalfOpen: true })
      const mitm = yield* startMitm(direct)
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      connection.socket.end("question")
      expect((yield* connection.readToEnd).toString()).toBe("got question")
    }))

  it.scopedLive("bytes sent right after the SOCKS request (optimistic data) reach the server", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((request, response) => response.end(`path ${request.url}`))
      const mitm = yield* startMitm(direct)
      const connection = yield* connectRaw(mitm.proxy.port)
      yield* connection.write(Buffer.concat([
        socks5Greeting(),
        socks5ConnectIPv4("127.0.0.1", origin.port),
        Buffer.from("GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      ]))
      yield* connection.read(12)
      expect((yield* connection.readToEnd).toString()).toMatch(/path \/early$/)
    }))

  it.scopedLive("a SOCKS5 upstream receives the browser's credentials byte for byte and the target as a name", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("via upstream"))
      const received: Array<Buffer> = []
      // A minimal SOCKS5 server: records what it got, then connects to the local origin.
      const upstream = yield* tcpServer((socket) => {
        let buffer = Buffer.alloc(0)
        let stage = 0
        const onData = (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk])
          if (stage === 0 && buffer.length >= 2 && buffer.length >= 2 + buffer[1]) {
            received.push(buffer.subarray(0, 2 + buffer[1]))
            buffer = buffer.subarray(2 + buffer[1])
            socket.write(Buffer.from([0x05, 0x02]))
            stage = 1
          }
          if (stage === 1 && buffer.length >= 2 && buffer.length >= 3 + buffer[1] && buffer.length >= 3 + buffer[1] + buffer[2 + buffer[1]]) {
            const length = 3 + buffer[1] + buffer[2 + buffer[1]]
            received.push(buffer.subarray(0, length))
            buffer = buffer.subarray(length)
            socket.write(Buffer.from([0x01, 0x00]))
            stage = 2
          }
          if (stage === 2 && buffer.length >= 5 && buffer.length >= 7 + buffer[4]) {
            received.push(buffer.subarray(0, 7 + buffer[4]))
            buffer = buffer.subarray(7 + buffer[4])
            stage = 3
            socket.off("data", onData)
            import("node:net").then((net) => {
              const target = net.connect({ host: "127.0.0.1", port: origin.port }, () => {
                socket.write(Buffer.from([0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0, 0]))
                if (buffer.length > 0) target.write(buffer)
                socket.pipe(target).pipe(socket)
              })
              target.on("error", () => socket.destroy())
            })
          }
        }
        socket.on("data", onData)
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: upstream.port } })
      const username = Buffer.from([0x66, 0x69, 0x72, 0x73, 0x74, 0xff, 0x00, 0x80])
      const password = Buffer.from("nonce-4711")
      const connection = yield* connectRaw(mitm.proxy.port)
      yield* connection.write(socks5Greeting([0x00, 0x02]))
      expect([...(yield* connection.read(2))]).toEqual([0x05, 0x02])
      yield* connection.write(userPass(username, password))
      expect([...(yield* connection.read(2))]).toEqual([0x01, 0x00])
      yield* connection.write(socks5Connect("origin.example", 80))
      const reply = yield* connection.read(10)
      expect(reply[1]).toBe(0x00)
      yield* connection.write("GET / HTTP/1.1\r\nHost: origin.example\r\nConnection: close\r\n\r\n")
      expect((yield* connection.readToEnd).toString()).toMatch(/via upstream$/)

      expect(received[1]).toEqual(userPass(username, password))
      expect(received[2]).toEqual(socks5Connect("origin.example", 80))
      const recorded = yield* closedConnection(mitm, 1)
      expect(recorded).toMatchObject({ host: "origin.example", port: 80, upstream: `socks5://127.0.0.1:${upstream.port}` })
      // The isolation key is the username as sent; the password is never kept.
      expect(recorded.isolation).toBe(username.toString("latin1"))
      expect(JSON.stringify(recorded)).not.toContain("nonce-4711")
    }))

  it.scopedLive("an unreachable upstream gives the client a SOCKS failure reply within seconds, and MITM says why", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port } })
      const started = process.hrtime.bigint()
      const { reply } = yield* socks5Open(mitm.proxy.port, "example.com", 80)
      expect(Number(process.hrtime.bigint() - started) / 1e9).toBeLessThan(5)
      expect(reply[0]).toBe(0x05)
      expect(reply[1]).not.toBe(0x00)
      const recorded = yield* closedConnection(mitm, 1)
      expect(recorded.state).toBe("failed")
      expect(recorded.error).toMatch(/127\.0\.0\.1/)
      expect(recorded.events.map((e) => e.type)).toEqual(["SocksRequestStart", "SocksResponseEnd", "ConnectionClose"])
    }))

  it.scopedLive("a target that refuses gets reply 0x05 connection refused", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const mitm = yield* startMitm(direct)
      const { reply } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", port)
      expect(reply[1]).toBe(0x05)
      const recorded = yield* closedConnection(mitm, 1)
      expect(recorded.events[1].detail).toBe("connection refused")
    }))

  it.scopedLive("malformed SOCKS input gets the proper reply and a closed connection, and MITM keeps serving", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("still here"))
      const mitm = yield* startMitm(direct)

      const garbage = yield* connectRaw(mitm.proxy.port)
      yield* garbage.write("GET / HTTP/1.1\r\n\r\n")
      expect((yield* garbage.readToEnd).length).toBe(0)

      const noMethod = yield* connectRaw(mitm.proxy.port)
      yield* noMethod.write(Buffer.from([0x05, 0x01, 0x80]))
      expect([...(yield* noMethod.readToEnd)]).toEqual([0x05, 0xff])

      const badCommand = yield* connectRaw(mitm.proxy.port)
      yield* badCommand.write(Buffer.concat([socks5Greeting(), socks5Connect("example.com", 80, 0x09)]))
      const reply = yield* badCommand.readToEnd
      expect([...reply.subarray(0, 4)]).toEqual([0x05, 0x00, 0x05, 0x07])

      const bind = yield* connectRaw(mitm.proxy.port)
      yield* bind.write(Buffer.concat([socks5Greeting(), socks5Connect("example.com", 80, 0x02)]))
      expect((yield* bind.readToEnd)[3]).toBe(0x07)

      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      yield* connection.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      expect((yield* connection.readToEnd).toString()).toMatch(/still here$/)
    }))

  it.scopedLive("a malformed HTTP request is recorded as a DecodeError and its bytes still flow unchanged", () =>
    Effect.gen(function*() {
      const seen: Array<Buffer> = []
      const origin = yield* tcpServer((socket) => {
        socket.on("data", (chunk: Buffer) => {
          seen.push(chunk)
          if (Buffer.concat(seen).includes("\r\n\r\n")) socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        })
      })
      const mitm = yield* startMitm(direct)
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const bad = "GET / HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n"
      yield* connection.write(bad)
      yield* connection.readToEnd
      expect(Buffer.concat(seen).toString()).toBe(bad)
      const recorded = yield* closedConnection(mitm, 1)
      const error = recorded.events.find((e) => e.type === "DecodeError")
      expect(error?.detail).toMatch(/^HttpParseError: .*line 3/)
    }))

  it.scopedLive("beyond --max-clients a new client gets a SOCKS failure reply, not a hang, and others are served again after", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm(direct, undefined, 1)
      const first = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      expect(first.reply[1]).toBe(0x00)
      const second = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      expect(second.reply[1]).toBe(0x01)
      const refused = yield* closedConnection(mitm, 2)
      expect(refused.error).toMatch(/too many clients/)
      first.connection.socket.destroy()
      yield* closedConnection(mitm, 1)
      const third = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      expect(third.reply[1]).toBe(0x00)
    }))

  it.scopedLive("a TLS connection is decoded on the side: its ClientHello's SNI and ALPN are recorded, protocol tls", () =>
    Effect.gen(function*() {
      const origin = yield* tcpServer((socket) => socket.resume())
      const mitm = yield* startMitm(direct)
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const tlsClient = tls.connect({ socket: connection.socket, servername: "example.onion.test", ALPNProtocols: ["h2", "http/1.1"] })
      tlsClient.on("error", () => {})
      const hello = yield* eventually(Effect.map(mitm.connections, (all) => all[0]?.events.find((e) => e.type === "TlsClientHello")))
      expect(hello.detail).toMatch(/^SNI example\.onion\.test, ALPN h2,http\/1\.1, versions TLS 1\.3/)
      expect((yield* mitm.connections)[0].protocol).toBe("tls")
      tlsClient.destroy()
    }))

  it.scopedLive("SOCKS4a and SOCKS4 clients are served too", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("four"))
      const mitm = yield* startMitm(direct)
      const socks4a = yield* connectRaw(mitm.proxy.port)
      yield* socks4a.write(Buffer.concat([
        Buffer.from([0x04, 0x01, origin.port >> 8, origin.port & 0xff, 0, 0, 0, 1]),
        Buffer.from("user\0localhost\0")
      ]))
      const reply = yield* socks4a.read(8)
      expect(reply[0]).toBe(0x00)
      expect(reply[1]).toBe(0x5a)
      yield* socks4a.write("GET / HTTP/1.0\r\n\r\n")
      expect((yield* socks4a.readToEnd).toString()).toMatch(/four$/)
      const recorded = yield* closedConnection(mitm, 1)
      expect(recorded).toMatchObject({ host: "localhost", socksVersion: 4 })
      expect(recorded.events[1].detail).toBe("request granted")
    }))
})
