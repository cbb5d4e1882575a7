import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, TestClock } from "effect"
import * as net from "node:net"
import { UpstreamError } from "../src/domain/Errors.js"
import type { SocksRequest } from "../src/domain/SocksRequest.js"
import * as ClockDeadlines from "../src/layers/ClockDeadlines.js"
import * as InternalSocksUpstream from "../src/layers/InternalSocksUpstream.js"
import * as SocksUpstream from "../src/layers/SocksUpstream.js"
import type { DeadlinesService } from "../src/services/Deadlines.js"
import type { UpstreamStream } from "../src/services/Upstream.js"

const bytes = (...parts: ReadonlyArray<string | ReadonlyArray<number>>): Buffer =>
  Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part, "latin1") : Buffer.from(part))))

const request = (fields: Partial<SocksRequest> = {}): SocksRequest => ({
  version: 5,
  command: "connect",
  addressType: "domain",
  host: "example.com",
  port: 80,
  methods: [0x00],
  credentials: undefined,
  userId: undefined,
  ...fields
})

const granted5 = [0x05, 0x00, 0x00, 0x01, 10, 0, 0, 7, 0x1f, 0x90]
const granted4 = [0x00, 0x5a, 0x00, 0x00, 0, 0, 0, 0]

// ---------------------------------------------------------------------------
// An in-test SOCKS server on 127.0.0.1:0 that records what it hears and says what it is told.

interface Heard {
  readonly greeting: Buffer | undefined
  readonly auth: Buffer | undefined
  readonly request: Buffer
}

interface Script {
  /** The method the server picks; by default 0x02 when offered, else 0x00. */
  readonly method?: number
  readonly authStatus?: number
  /** Written after the request: the reply, and anything that follows it in the same write. */
  readonly reply: Buffer
  /** Write the reply one byte per TCP segment. */
  readonly byteByByte?: boolean
}

/** How many bytes the first complete client message in `buffer` takes, if it is complete. */
const messageSize = (stage: "first" | "auth" | "request", buffer: Buffer): number | undefined => {
  const atLeast = (n: number) => (buffer.length >= n ? n : undefined)
  if (stage === "first" && buffer[0] === 0x04) {
    const userEnd = buffer.indexOf(0, 8)
    if (buffer.length < 8 || userEnd < 0) return undefined
    const socks4a = buffer[4] === 0 && buffer[5] === 0 && buffer[6] === 0 && buffer[7] !== 0
    if (!socks4a) return userEnd + 1
    const hostEnd = buffer.indexOf(0, userEnd + 1)
    return hostEnd < 0 ? undefined : hostEnd + 1
  }
  if (buffer.length < 2) return undefined
  if (stage === "first") return atLeast(2 + buffer[1])
  if (stage === "auth") return buffer.length < 2 + buffer[1] + 1 ? undefined : atLeast(2 + buffer[1] + 1 + buffer[2 + buffer[1]])
  if (buffer.length < 5) return undefined
  const addressType = buffer[3]
  return atLeast(addressType === 0x01 ? 10 : addressType === 0x04 ? 22 : 7 + buffer[4])
}

const fakeSocksServer = (script: Script) =>
  Effect.acquireRelease(
    Effect.async<{ port: number; heard: Promise<Heard>; server: net.Server; accepted: Array<net.Socket> }>((resume) => {
      const accepted: Array<net.Socket> = []
      let hear: (heard: Heard) => void = () => {}
      const heard = new Promise<Heard>((resolve) => (hear = resolve))
      const server = net.createServer((socket) => {
        accepted.push(socket)
        socket.setNoDelay(true)
        socket.on("error", () => {})
        let buffer = Buffer.alloc(0)
        let stage: "first" | "auth" | "request" = "first"
        let greeting: Buffer | undefined
        let auth: Buffer | undefined
        const reply = async (heardRequest: Buffer) => {
          hear({ greeting, auth, request: heardRequest })
          if (!script.byteByByte) return void socket.write(script.reply)
          for (const byte of script.reply) {
            await new Promise<void>((resolve) => socket.write(Buffer.from([byte]), () => resolve()))
            await new Promise((resolve) => setTimeout(resolve, 3))
          }
        }
        socket.on("data", (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk])
          for (let size = messageSize(stage, buffer); size !== undefined; size = messageSize(stage, buffer)) {
            const message = buffer.subarray(0, size)
            buffer = buffer.subarray(size)
            if (stage === "first" && message[0] === 0x05) {
              greeting = message
              const method = script.method ?? (message.subarray(2).includes(0x02) ? 0x02 : 0x00)
              socket.write(Buffer.from([0x05, method]))
              stage = method === 0x02 ? "auth" : "request"
            } else if (stage === "auth") {
              auth = message
              socket.write(Buffer.from([0x01, script.authStatus ?? 0x00]))
              stage = "request"
            } else {
              void reply(message)
              return
            }
          }
        })
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, heard, server, accepted })))
    }),
    ({ accepted, server }) =>
      Effect.async<void>((resume) => {
        for (const socket of accepted) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  )

/** A port where nothing listens: a server that was just closed. */
const closedPort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** The upstream socket, closed when the test ends. */
const owned = (stream: Effect.Effect<UpstreamStream, UpstreamError>) =>
  Effect.acquireRelease(stream, ({ socket }) => Effect.sync(() => socket.destroy()))

/** Reads exactly `n` bytes from a paused socket and leaves it paused. */
const readBytes = (socket: net.Socket, n: number) =>
  Effect.async<Buffer>((resume) => {
    let got = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      if (got.length < n) return
      socket.off("data", onData)
      socket.pause()
      if (got.length > n) socket.unshift(got.subarray(n))
      resume(Effect.succeed(got.subarray(0, n)))
    }
    socket.on("data", onData)
    socket.resume()
  })

/** Waits until the other end of this server-side socket has closed the connection. */
const closedByPeer = (socket: net.Socket) =>
  Effect.async<void>((resume) => {
    if (socket.readableEnded || socket.destroyed) return resume(Effect.void)
    socket.once("end", () => resume(Effect.void))
    socket.once("close", () => resume(Effect.void))
    socket.resume()
  })

const expectHandedOver = (socket: net.Socket) => {
  expect(socket.destroyed).toBe(false)
  expect(socket.allowHalfOpen).toBe(true)
  expect(socket.readableFlowing).not.toBe(true)
  expect(socket.listenerCount("data")).toBe(0)
}

const upstreamError = <A>(exit: Exit.Exit<A, UpstreamError>): UpstreamError => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error(`expected an UpstreamError, got ${exit}`)
  return exit.cause.error
}

/** Deadlines that never fire, for tests that never reach a timeout. */
const noDeadlines: DeadlinesService = { schedule: () => () => {} }

const socksTo = (port: number, config: Partial<SocksUpstream.SocksUpstreamConfig> = {}, deadlines = noDeadlines) =>
  SocksUpstream.make({ host: "127.0.0.1", port, ...config }, deadlines)

/** Credentials the `socks` package can carry, and ones only our own handshake can. */
const paths = {
  "the socks package": { username: bytes("user"), password: bytes("pass") },
  "the own handshake": { username: bytes([0xff, 0x00, 0x80]), password: bytes([0xc3]) }
} as const

// ---------------------------------------------------------------------------

describe("SOCKS upstream", () => {
  it("is named by its address, never with a password", () => {
    const route = SocksUpstream.make({ host: "127.0.0.1", port: 9050, username: "u", password: "secret" }, noDeadlines)
    expect(route.name).toBe("socks5://127.0.0.1:9050")
  })

  it.scopedLive("a CONNECT to a host name sends the name (ATYP 0x03), offers method 0x00 only, and hands over a paused socket", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({ reply: bytes(granted5) })
      const stream = yield* owned(socksTo(fake.port).connect(request()))
      const heard = yield* Effect.promise(() => fake.heard)
      expect([...heard.greeting!]).toEqual([0x05, 0x01, 0x00])
      expect(heard.auth).toBeUndefined()
      expect(heard.request).toEqual(bytes([0x05, 0x01, 0x00, 0x03, 11], "example.com", [0x00, 80]))
      expect(stream.replyCode).toBe(0x00)
      expect(stream.bound).toEqual({ addressType: "ipv4", host: "10.0.0.7", port: 8080 })
      expectHandedOver(stream.socket)
    }))

  it.scopedLive("a host name that looks like an IP, or is not ASCII, still goes as a name, byte for byte", () =>
    Effect.gen(function*() {
      for (const host of ["1.2.3.4", "caf\u00e9.example"]) {
        const fake = yield* fakeSocksServer({ reply: bytes(granted5) })
        yield* owned(socksTo(fake.port).connect(request({ host })))
        const heard = yield* Effect.promise(() => fake.heard)
        expect(heard.request).toEqual(bytes([0x05, 0x01, 0x00, 0x03, host.length], host, [0x00, 80]))
      }
    }))

  it.scopedLive("an IPv6 target goes as 16 address bytes", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({
        reply: bytes([0x05, 0x00, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 0x01, 0x01, 0xbb])
      })
      const stream = yield* owned(
        socksTo(fake.port).connect(request({ addressType: "ipv6", host: "2001:db8::1", credentials: paths["the own handshake"] }))
      )
      const heard = yield* Effect.promise(() => fake.heard)
      expect(heard.request).toEqual(bytes([0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 0x01, 0x00, 80]))
      expect(stream.bound).toEqual({ addressType: "ipv6", host: "2001:db8::1", port: 443 })
    }))

  for (
    const [label, credentials] of [
      ["ASCII credentials", { username: bytes("alice"), password: bytes("pw") }],
      ["credentials that are not UTF-8", { username: bytes([0xff, 0x00, 0x80]), password: bytes([0xfe, 0x80]) }],
      ["an empty username and an empty password", { username: bytes(), password: bytes() }]
    ] as const
  ) {
    it.scopedLive(`${label} reach the upstream byte for byte`, () =>
      Effect.gen(function*() {
        const fake = yield* fakeSocksServer({ reply: bytes(granted5) })
        yield* owned(socksTo(fake.port, { username: "config", password: "config" }).connect(request({ credentials })))
        const heard = yield* Effect.promise(() => fake.heard)
        expect([...heard.greeting!]).toEqual([0x05, 0x02, 0x00, 0x02])
        expect(heard.auth).toEqual(
          bytes([0x01, credentials.username.length], [...credentials.username], [credentials.password.length], [...credentials.password])
        )
      }))
  }

  it.scopedLive("the URL's credentials are used when the browser sent none", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({ reply: bytes(granted5) })
      yield* owned(socksTo(fake.port, { username: "cfg", password: "secret" }).connect(request()))
      const heard = yield* Effect.promise(() => fake.heard)
      expect(heard.auth).toEqual(bytes([0x01, 3], "cfg", [6], "secret"))
    }))

  for (const [path, credentials] of Object.entries(paths)) {
    it.scopedLive(`Tor's extended reply 0xF2 reaches the browser unchanged (${path})`, () =>
      Effect.gen(function*() {
        const fake = yield* fakeSocksServer({ reply: bytes([0x05, 0xf2, 0x00, 0x01, 0, 0, 0, 0, 0, 0]) })
        const error = upstreamError(yield* Effect.exit(socksTo(fake.port).connect(request({ credentials }))))
        expect(error).toBeInstanceOf(UpstreamError)
        expect(error.reason).toBe("Rejected")
        expect(error.replyCode).toBe(0xf2)
      }))

    it.scopedLive(`a reply split into 1-byte TCP writes is read whole (${path})`, () =>
      Effect.gen(function*() {
        const fake = yield* fakeSocksServer({
          reply: bytes([0x05, 0x00, 0x00, 0x03, 4], "tor.", [0x01, 0xbb], "X"),
          byteByByte: true
        })
        const stream = yield* owned(socksTo(fake.port).connect(request({ credentials })))
        expect(stream.replyCode).toBe(0x00)
        expect(stream.bound).toEqual({ addressType: "domain", host: "tor.", port: 443 })
        expect((yield* readBytes(stream.socket, 1)).toString()).toBe("X")
      }))

    it.scopedLive(`bytes sent right after the reply, in the same write, are not lost (${path})`, () =>
      Effect.gen(function*() {
        const fake = yield* fakeSocksServer({ reply: bytes(granted5, "HTTP/1.1 200 OK\r\n") })
        const stream = yield* owned(socksTo(fake.port).connect(request({ credentials })))
        expectHandedOver(stream.socket)
        // Give a lost byte time to get lost before reading.
        yield* Effect.sleep("50 millis")
        expect((yield* readBytes(stream.socket, 17)).toString()).toBe("HTTP/1.1 200 OK\r\n")
        fake.accepted[0].write("more")
        expect((yield* readBytes(stream.socket, 4)).toString()).toBe("more")
      }))
  }

  it.scopedLive("a refused username/password is Rejected with 0x01; a garbage reply is a Protocol error", () =>
    Effect.gen(function*() {
      const refused = yield* fakeSocksServer({ authStatus: 0x01, reply: bytes(granted5) })
      const auth = upstreamError(yield* Effect.exit(socksTo(refused.port).connect(request({ credentials: paths["the socks package"] }))))
      expect([auth.reason, auth.replyCode]).toEqual(["Rejected", 0x01])
      const garbage = yield* fakeSocksServer({ reply: bytes("HTTP/1.0 400 Bad Request\r\n\r\n") })
      const protocol = upstreamError(yield* Effect.exit(socksTo(garbage.port).connect(request())))
      expect([protocol.reason, protocol.replyCode]).toEqual(["Protocol", 0x01])
    }))

  it.scopedLive("a SOCKS4a request for a host name carries the user id and the name", () =>
    Effect.gen(function*() {
      for (const userId of [bytes("alice"), bytes([0xff, 0x80])]) {
        const fake = yield* fakeSocksServer({ reply: bytes(granted4) })
        const stream = yield* owned(socksTo(fake.port).connect(request({ version: 4, userId })))
        const heard = yield* Effect.promise(() => fake.heard)
        expect(heard.request).toEqual(bytes([0x04, 0x01, 0x00, 80, 0, 0, 0, 1], [...userId], [0], "example.com", [0]))
        expect(stream.replyCode).toBe(0x5a)
        expectHandedOver(stream.socket)
      }
    }))

  it.scopedLive("a SOCKS4 request for an IPv4 address is plain SOCKS4, and a 0x5B rejection comes back as 0x5B", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({ reply: bytes([0x00, 0x5b, 0, 0, 0, 0, 0, 0]) })
      const error = upstreamError(
        yield* Effect.exit(
          socksTo(fake.port).connect(request({ version: 4, addressType: "ipv4", host: "10.1.2.3", userId: bytes() }))
        )
      )
      const heard = yield* Effect.promise(() => fake.heard)
      expect(heard.request).toEqual(bytes([0x04, 0x01, 0x00, 80, 10, 1, 2, 3, 0]))
      expect([error.reason, error.replyCode]).toEqual(["Rejected", 0x5b])
    }))

  it.scopedLive("RESOLVE (0xF0) sends the name and returns the IPv4 address of the reply", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({ reply: bytes([0x05, 0x00, 0x00, 0x01, 93, 184, 216, 34, 0, 0]) })
      const answer = yield* socksTo(fake.port).resolve(request({ command: "resolve", port: 0 }))
      const heard = yield* Effect.promise(() => fake.heard)
      expect(heard.request).toEqual(bytes([0x05, 0xf0, 0x00, 0x03, 11], "example.com", [0, 0]))
      expect(answer).toEqual({ addressType: "ipv4", host: "93.184.216.34" })
    }))

  it.scopedLive("RESOLVE_PTR (0xF1) sends the address and returns the name of the reply", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({ reply: bytes([0x05, 0x00, 0x00, 0x03, 11], "example.com", [0, 0]) })
      const answer = yield* socksTo(fake.port).resolve(
        request({ command: "resolvePtr", addressType: "ipv4", host: "93.184.216.34", port: 0 })
      )
      const heard = yield* Effect.promise(() => fake.heard)
      expect(heard.request).toEqual(bytes([0x05, 0xf1, 0x00, 0x01, 93, 184, 216, 34, 0, 0]))
      expect(answer).toEqual({ addressType: "domain", host: "example.com" })
    }))

  it.scoped("a reply that never comes is a Timeout after 120 s of the Effect clock, and the socket is closed", () =>
    Effect.gen(function*() {
      const deadlines = yield* ClockDeadlines.make()
      for (const [path, credentials] of Object.entries(paths)) {
        const fake = yield* fakeSocksServer({ reply: bytes() })
        const fiber = yield* Effect.fork(socksTo(fake.port, {}, deadlines).connect(request({ credentials })))
        yield* Effect.promise(() => fake.heard)
        yield* TestClock.adjust("119 seconds")
        expect(fiber.unsafePoll(), path).toBeNull()
        yield* TestClock.adjust("1 second")
        const error = upstreamError(yield* Fiber.await(fiber))
        expect([error.reason, error.replyCode], path).toEqual(["Timeout", 0x01])
        yield* closedByPeer(fake.accepted[0])
      }
    }))

  it.scopedLive("an interrupted CONNECT closes its socket", () =>
    Effect.gen(function*() {
      const fake = yield* fakeSocksServer({ reply: bytes() })
      const fiber = yield* Effect.fork(socksTo(fake.port).connect(request()))
      yield* Effect.promise(() => fake.heard)
      yield* Fiber.interrupt(fiber)
      yield* closedByPeer(fake.accepted[0])
    }))

  it.live("an unreachable SOCKS server is Unreachable within a second, with general failure in the browser's version", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      for (const [version, code] of [[5, 0x01], [4, 0x5b]] as const) {
        const exit = yield* Effect.exit(socksTo(port).connect(request({ version })).pipe(Effect.timeout("1 second")))
        const error = upstreamError(exit as Exit.Exit<UpstreamStream, UpstreamError>)
        expect(error.reason).toBe("Unreachable")
        expect(error.replyCode).toBe(code)
        expect(error.detail).toBe(`cannot reach SOCKS upstream 127.0.0.1:${port}: ECONNREFUSED`)
      }
    }))
})

// ---------------------------------------------------------------------------

const echoServer = Effect.acquireRelease(
  Effect.async<{ port: number; server: net.Server; accepted: Array<net.Socket> }>((resume) => {
    const accepted: Array<net.Socket> = []
    const server = net.createServer((socket) => {
      accepted.push(socket)
      socket.on("error", () => {})
      socket.pipe(socket)
    })
    server.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ port: (server.address() as net.AddressInfo).port, server, accepted })))
  }),
  ({ accepted, server }) =>
    Effect.async<void>((resume) => {
      for (const socket of accepted) socket.destroy()
      server.close(() => resume(Effect.void))
    })
)

describe("internal (direct) upstream", () => {
  // These tests never reach the connect timeout; test/Deadlines.test.ts tests the deadlines.
  const direct = InternalSocksUpstream.make(noDeadlines)

  it("is named direct", () => {
    expect(direct.name).toBe("direct")
  })

  it.scopedLive("CONNECT reaches the target and bytes round-trip", () =>
    Effect.gen(function*() {
      const echo = yield* echoServer
      const stream = yield* owned(direct.connect(request({ addressType: "ipv4", host: "127.0.0.1", port: echo.port })))
      expect(stream.replyCode).toBe(0x00)
      expect(stream.bound).toMatchObject({ addressType: "ipv4", host: "127.0.0.1" })
      expectHandedOver(stream.socket)
      stream.socket.write("ping")
      expect((yield* readBytes(stream.socket, 4)).toString()).toBe("ping")
      const v4 = yield* owned(direct.connect(request({ version: 4, addressType: "ipv4", host: "127.0.0.1", port: echo.port })))
      expect(v4.replyCode).toBe(0x5a)
    }))

  it.live("a refused port is Refused with 0x05 (0x5B for SOCKS4)", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      for (const [version, code] of [[5, 0x05], [4, 0x5b]] as const) {
        const error = upstreamError(
          yield* Effect.exit(direct.connect(request({ version, addressType: "ipv4", host: "127.0.0.1", port })))
        )
        expect([error.reason, error.replyCode]).toEqual(["Refused", code])
      }
    }))

  it("a .onion name is refused with 0xF6 at once, without any lookup or connect", () => {
    for (const host of ["duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", "Example.ONION."]) {
      // runSyncExit fails on any async step: the refusal happens before any I/O could start.
      for (const effect of [direct.connect(request({ host })), direct.resolve(request({ host, command: "resolve" }))]) {
        const error = upstreamError(Effect.runSyncExit(effect as Effect.Effect<unknown, UpstreamError>))
        expect([error.reason, error.replyCode]).toEqual(["Refused", 0xf6])
        expect(error.detail).toBe(".onion addresses exist only inside Tor; the direct upstream cannot reach them")
      }
    }
    const v4 = upstreamError(Effect.runSyncExit(direct.connect(request({ version: 4, host: "x.onion" }))))
    expect(v4.replyCode).toBe(0x5b)
  })

  it.live("RESOLVE of localhost answers the loopback address", () =>
    Effect.gen(function*() {
      const answer = yield* direct.resolve(request({ command: "resolve", host: "localhost", port: 0 }))
      expect(["127.0.0.1", "::1"]).toContain(answer.host)
      expect(answer.addressType).toBe(answer.host === "::1" ? "ipv6" : "ipv4")
    }))
})
