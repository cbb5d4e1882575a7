/**
 * The live TorControl against a fake control port on 127.0.0.1 that speaks a
 * scripted Tor: authentication (NULL, SAFECOOKIE, COOKIE, HASHEDPASSWORD),
 * the GETINFO/SETEVENTS handshake, events, closing. Retries run on TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, type Scope, TestClock, TestServices } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { TorNotice } from "../src/domain/TorCircuits.js"
import * as TorControlPort from "../src/layers/TorControlPort.js"
import { TorControl, type TorControlService, type TorStatus } from "../src/services/TorControl.js"
import { decodeQstring, FP, ISO, path3 } from "./support/TorLines.js"

const handshake = ["PROTOCOLINFO 1", "GETINFO version", "SETEVENTS STREAM CIRC CIRC_BW CIRC_MINOR", "GETINFO circuit-status"]

interface FakeTorOptions {
  /** METHODS= of PROTOCOLINFO. */
  readonly methods: ReadonlyArray<string>
  readonly cookieFile?: string
  readonly cookie?: Uint8Array
  readonly password?: string
  /** Answer AUTHCHALLENGE with a server hash made from another cookie. */
  readonly wrongServerHash?: boolean
  /** Close every connection as soon as it is accepted. */
  readonly closeOnAccept?: boolean
  /** Event lines written right after the circuit-status reply, in the same write. */
  readonly afterSnapshot?: ReadonlyArray<string>
  readonly port?: number
}

interface FakeTor {
  readonly port: number
  /** How many connections it accepted. */
  readonly connections: () => number
  /** The command lines of each connection, as bytes read as latin1. */
  readonly commands: () => ReadonlyArray<ReadonlyArray<string>>
  /** Writes event lines (with "650 ") to every authenticated connection. */
  readonly emit: (...lines: ReadonlyArray<string>) => void
  /** Closes every connection, as a Tor that stops would. */
  readonly dropAll: () => void
}


const hmac = (key: string, ...parts: ReadonlyArray<Uint8Array>) =>
  crypto.createHmac("sha256", key).update(Buffer.concat(parts)).digest()

const fakeTor = (options: FakeTorOptions): Effect.Effect<FakeTor, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ fake: FakeTor; server: net.Server; sockets: Set<net.Socket> }, Error>((resume) => {
      const sockets = new Set<net.Socket>()
      const authenticated = new Set<net.Socket>()
      const commands: Array<Array<string>> = []
      let connections = 0
      const server = net.createServer((socket) => {
        connections++
        sockets.add(socket)
        socket.on("close", () => {
          sockets.delete(socket)
          authenticated.delete(socket)
        })
        socket.on("error", () => {})
        if (options.closeOnAccept) {
          socket.destroy()
          return
        }
        const lines: Array<string> = []
        commands.push(lines)
        const serverNonce = Buffer.alloc(32, 0x5a)
        let clientNonce: Buffer | undefined
        let buffered = Buffer.alloc(0)
        const write = (...reply: ReadonlyArray<string>) => socket.write(reply.map((line) => `${line}\r\n`).join(""))
        const refuse = (text: string) => {
          write(`515 Authentication failed: ${text}`)
          socket.end()
        }
        const authenticate = (argument: Buffer) => {
          const cookie = Buffer.from(options.cookie ?? [])
          if (options.methods.includes("NULL")) return true
          if (clientNonce !== undefined) {
            return argument.toString("latin1") ===
              hmac("Tor safe cookie authentication controller-to-server hash", cookie, clientNonce, serverNonce)
                .toString("hex").toUpperCase()
          }
          if (argument[0] === 0x22) {
            return options.password !== undefined && decodeQstring(argument).equals(Buffer.from(options.password))
          }
          return options.methods.includes("COOKIE") && argument.toString("latin1").toUpperCase() ===
            cookie.toString("hex").toUpperCase()
        }
        const answer = (raw: Buffer) => {
          const line = raw.toString("latin1")
          lines.push(line)
          const [command] = line.split(" ")
          if (line === "PROTOCOLINFO 1") {
            const file = options.cookieFile === undefined ? "" : ` COOKIEFILE="${options.cookieFile}"`
            write(
              "250-PROTOCOLINFO 1",
              `250-AUTH METHODS=${options.methods.join(",")}${file}`,
              "250-VERSION Tor=\"0.4.9.11\"",
              "250 OK"
            )
          } else if (command === "AUTHCHALLENGE") {
            clientNonce = Buffer.from(line.split(" ")[2], "hex")
            const cookie = options.wrongServerHash ? Buffer.alloc(32, 1) : Buffer.from(options.cookie ?? [])
            const serverHash = hmac("Tor safe cookie authentication server-to-controller hash", cookie, clientNonce, serverNonce)
            write(
              `250 AUTHCHALLENGE SERVERHASH=${serverHash.toString("hex").toUpperCase()} SERVERNONCE=${
                serverNonce.toString("hex").toUpperCase()
              }`
            )
          } else if (command === "AUTHENTICATE") {
            const argument = raw.subarray("AUTHENTICATE ".length)
            if (!authenticate(argument)) {
              // Echoes what it got, as no Tor does: MITM must not show it.
              refuse(`did not match: ${argument.toString("latin1")}`)
              return
            }
            authenticated.add(socket)
            write("250 OK")
          } else if (!authenticated.has(socket)) {
            write("514 Authentication required.")
            socket.end()
          } else if (line === "GETINFO version") {
            write("250-version=0.4.9.11", "250 OK")
          } else if (line === "SETEVENTS STREAM CIRC CIRC_BW CIRC_MINOR") {
            write("250 OK")
          } else if (line === "GETINFO circuit-status") {
            // An event arrives between the data block and the reply's last line.
            write(
              "250+circuit-status=",
              `7 BUILT ${path3} BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:21:59.512402`,
              ".",
              "650 CIRC 8 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:22:00.868824",
              "250 OK",
              ...(options.afterSnapshot ?? [])
            )
          } else {
            write(`510 Unrecognized command "${command}"`)
          }
        }
        socket.on("data", (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk])
          for (let end = buffered.indexOf("\r\n"); end >= 0; end = buffered.indexOf("\r\n")) {
            const raw = buffered.subarray(0, end)
            buffered = buffered.subarray(end + 2)
            answer(raw)
          }
        })
      })
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(options.port ?? 0, "127.0.0.1", () => {
        const fake: FakeTor = {
          port: (server.address() as net.AddressInfo).port,
          connections: () => connections,
          commands: () => commands,
          emit: (...events) => {
            for (const socket of authenticated) socket.write(events.map((line) => `650 ${line}\r\n`).join(""))
          },
          dropAll: () => {
            for (const socket of sockets) socket.destroy()
          }
        }
        resume(Effect.succeed({ fake, server, sockets }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ fake }) => fake))

/** A port on 127.0.0.1 where nothing listens (bound to 0, then closed). */
const closedPort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A temp dir with a 32-byte cookie file, removed with the scope. */
const cookieFile = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mitm-torcontrol-"))
    const file = path.join(dir, "control_auth_cookie")
    const cookie = new Uint8Array(crypto.randomBytes(32))
    fs.writeFileSync(file, cookie)
    return { dir, file, cookie }
  }),
  ({ dir }) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Reads until `ok` holds, pausing 10 ms on the live clock between reads (the test's clock is TestClock); 10 s at most. */
const waitFor = <A>(read: Effect.Effect<A>, ok: (value: A) => boolean): Effect.Effect<A, Error> =>
  Effect.gen(function*() {
    let value = yield* read
    for (let tries = 0; !ok(value); tries++) {
      if (tries === 1000) return yield* Effect.fail(new Error(`still ${JSON.stringify(value)}`))
      yield* TestServices.provideLive(Effect.sleep("10 millis"))
      value = yield* read
    }
    return value
  })

const statusIs = (service: TorControlService, control: TorStatus["control"]) =>
  waitFor(service.status, (status) => status.control === control)

/** Waits until the retry loop sleeps until exactly `now + millis` on TestClock. */
const sleepingFor = (millis: number) =>
  Effect.gen(function*() {
    const now = yield* TestClock.currentTimeMillis
    yield* waitFor(TestClock.sleeps(), (sleeps) => Chunk.some(sleeps, (at) => at === now + millis))
  })

const start = (port: number, password?: string) => {
  let now = 0
  return Effect.map(
    TorControlPort.make({ address: { host: "127.0.0.1", port }, password, now: () => now }),
    (service) => ({
      service,
      setNow: (seconds: number) => {
        now = seconds
      }
    })
  )
}

describe("the control-port connection", () => {
  it.scoped("NULL auth: the handshake in order, status connected with Tor's version, circuits from circuit-status", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({ methods: ["NULL"] })
      const { service } = yield* start(fake.port)
      const status = yield* statusIs(service, "connected")
      expect(status).toEqual({ control: "connected", address: `127.0.0.1:${fake.port}`, version: "0.4.9.11", error: null })
      expect(fake.commands()).toEqual([["PROTOCOLINFO 1", "AUTHENTICATE", ...handshake.slice(1)]])
      const circuits = yield* service.circuits
      expect(circuits.map((c) => [c.id, c.state, c.launchedAt, c.path.map((r) => r.nickname).join(",")])).toEqual([
        ["7", "built", null, "auth2,auth1,exit0"],
        ["8", "launched", 0, ""]
      ])
    }))

  it.scoped("events Tor sent right after its circuit-status reply are newer than it: they win over the snapshot", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({
        methods: ["NULL"],
        afterSnapshot: [
          "650 CIRC 7 CLOSED " + path3 + " PURPOSE=GENERAL REASON=FINISHED",
          "650 CIRC 8 BUILT " + path3 + " PURPOSE=CONFLUX_LINKED"
        ]
      })
      const { service } = yield* start(fake.port)
      yield* statusIs(service, "connected")
      const circuits = yield* waitFor(service.circuits, (all) => all.some((c) => c.id === "8" && c.state === "built"))
      expect(circuits.map((c) => [c.id, c.state, c.purpose, c.reason])).toEqual([
        ["7", "closed", "GENERAL", "FINISHED"],
        ["8", "built", "CONFLUX_LINKED", null]
      ])
    }))

  it.scoped("events become notices for the proxy, stamped with the session time of the layer's `now`", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({ methods: ["NULL"] })
      const { service, setNow } = yield* start(fake.port)
      yield* statusIs(service, "connected")
      const notices: Array<TorNotice> = []
      const unsubscribe = service.onNotice((notice) => notices.push(notice))
      setNow(3.5)
      service.upstreamOpened(1, "127.0.0.1:55882")
      fake.emit(
        `STREAM 21 NEW 0 127.0.0.1:80 SOURCE_ADDR=127.0.0.1:55882 PURPOSE=USER ${ISO}`,
        `STREAM 21 SENTCONNECT 7 127.0.0.1.${FP.exit0}.exit:80 ${ISO}`
      )
      yield* waitFor(Effect.sync(() => notices.length), (n) => n === 1)
      expect(notices).toEqual([{
        _tag: "TorStreamAttached",
        connectionId: 1,
        time: 3.5,
        stream: "21",
        circuit: "7",
        path: ["auth2", "auth1", "exit0"]
      }])
      expect(service.torOf(1)).toMatchObject({ stream: "21", circuit: "7", circuitBuildTime: null })
      unsubscribe()
      setNow(4)
      fake.emit(`STREAM 21 FAILED 0 127.0.0.1:80 REASON=TIMEOUT ${ISO}`, "CIRC 8 BUILT PURPOSE=GENERAL")
      yield* waitFor(service.circuits, (circuits) => circuits.some((c) => c.id === "8" && c.state === "built"))
      expect(notices).toHaveLength(1)
      expect((yield* service.circuits).find((c) => c.id === "8")?.buildTime).toBe(4)
    }))

  it.scoped("SAFECOOKIE: the client proves the cookie with the HMAC Tor expects, after checking Tor's proof", () =>
    Effect.gen(function*() {
      const { cookie, file } = yield* cookieFile
      const fake = yield* fakeTor({ methods: ["COOKIE", "SAFECOOKIE"], cookieFile: file, cookie })
      const { service } = yield* start(fake.port)
      yield* statusIs(service, "connected")
      const [lines] = fake.commands()
      const nonce = Buffer.from(lines[1].split(" ")[2], "hex")
      expect(lines[1]).toMatch(/^AUTHCHALLENGE SAFECOOKIE [0-9A-F]{64}$/)
      const expected = hmac(
        "Tor safe cookie authentication controller-to-server hash",
        cookie,
        nonce,
        Buffer.alloc(32, 0x5a)
      ).toString("hex").toUpperCase()
      expect(lines).toEqual(["PROTOCOLINFO 1", lines[1], `AUTHENTICATE ${expected}`, ...handshake.slice(1)])
    }))

  it.scoped("SAFECOOKIE with a wrong server hash: auth-failed, and the cookie's proof is never sent", () =>
    Effect.gen(function*() {
      const { cookie, file } = yield* cookieFile
      const fake = yield* fakeTor({ methods: ["SAFECOOKIE"], cookieFile: file, cookie, wrongServerHash: true })
      const { service } = yield* start(fake.port)
      const status = yield* statusIs(service, "auth-failed")
      expect(status.error).toContain("SAFECOOKIE proof does not match")
      expect(fake.commands()[0].map((line) => line.split(" ")[0])).toEqual(["PROTOCOLINFO", "AUTHCHALLENGE"])
      expect(fake.connections()).toBe(1)
    }))

  it.scoped("COOKIE: the cookie file's bytes in hex", () =>
    Effect.gen(function*() {
      const { cookie, file } = yield* cookieFile
      const fake = yield* fakeTor({ methods: ["COOKIE"], cookieFile: file, cookie })
      const { service } = yield* start(fake.port)
      yield* statusIs(service, "connected")
      expect(fake.commands()[0][1]).toBe(`AUTHENTICATE ${Buffer.from(cookie).toString("hex").toUpperCase()}`)
    }))

  it.scoped("COOKIE refused (the file is another Tor's): auth-failed, and the cookie shows nowhere", () =>
    Effect.gen(function*() {
      const { cookie, file } = yield* cookieFile
      const fake = yield* fakeTor({ methods: ["COOKIE"], cookieFile: file, cookie: new Uint8Array(32) })
      const { service } = yield* start(fake.port)
      const status = yield* statusIs(service, "auth-failed")
      expect(status.error).toBe("Tor refused the cookie (COOKIE): status 515")
      expect(JSON.stringify(status).toUpperCase()).not.toContain(Buffer.from(cookie).toString("hex").toUpperCase())
    }))

  it.scoped("a cookie file that cannot be read: auth-failed naming the file, not its content", () =>
    Effect.gen(function*() {
      const missing = path.join(os.tmpdir(), "mitm-torcontrol-missing", "control_auth_cookie")
      const fake = yield* fakeTor({ methods: ["SAFECOOKIE"], cookieFile: missing })
      const { service } = yield* start(fake.port)
      const status = yield* statusIs(service, "auth-failed")
      expect(status.error).toBe(`cannot read Tor's cookie file ${missing} (ENOENT)`)
    }))

  it.scoped("HASHEDPASSWORD with the right password: sent as a QuotedString, connected", () =>
    Effect.gen(function*() {
      const password = "s3cr\"et \\ pässword"
      const fake = yield* fakeTor({ methods: ["HASHEDPASSWORD"], password })
      const { service } = yield* start(fake.port, password)
      yield* statusIs(service, "connected")
      expect(fake.commands()[0][1]).toBe(
        `AUTHENTICATE "${Buffer.from("s3cr\\\"et \\\\ pässword", "utf8").toString("latin1")}"`
      )
    }))

  it.scoped("HASHEDPASSWORD with a wrong password: auth-failed, and the password is in no status text", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({ methods: ["HASHEDPASSWORD"], password: "right" })
      const { service } = yield* start(fake.port, "wrong-hunter2")
      const status = yield* statusIs(service, "auth-failed")
      expect(status.error).toBe("Tor refused the password (HASHEDPASSWORD): status 515")
      expect(JSON.stringify(status)).not.toContain("hunter2")
      expect(fake.connections()).toBe(1)
    }))

  it.scoped("HASHEDPASSWORD offered and no password given: auth-failed saying what to give", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({ methods: ["HASHEDPASSWORD"], password: "right" })
      const { service } = yield* start(fake.port)
      const status = yield* statusIs(service, "auth-failed")
      expect(status.error).toContain("--tor-control-password")
      expect(fake.commands()).toEqual([["PROTOCOLINFO 1"]])
    }))

  it.scoped("nothing listening: unreachable; once Tor listens there, the retry after 1 s connects", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const { service } = yield* start(port)
      expect(yield* service.status).toEqual({
        control: "unreachable",
        address: `127.0.0.1:${port}`,
        version: null,
        error: "not connected yet"
      })
      const status = yield* waitFor(service.status, (status) => status.error !== "not connected yet")
      expect(status).toMatchObject({ control: "unreachable", address: `127.0.0.1:${port}`, version: null })
      expect(status.error).toContain("ECONNREFUSED")
      const fake = yield* fakeTor({ methods: ["NULL"], port })
      yield* sleepingFor(1000)
      yield* TestClock.adjust("1 second")
      yield* statusIs(service, "connected")
      expect(fake.connections()).toBe(1)
    }))

  it.scoped("something else on the port (an HTTP server): unreachable, not Tor's control protocol", () =>
    Effect.gen(function*() {
      const http = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const server = net.createServer((socket) => {
            socket.on("error", () => {})
            socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
      )
      const { service } = yield* start((http.address() as net.AddressInfo).port)
      const status = yield* waitFor(service.status, (status) => status.error !== "not connected yet")
      expect(status).toMatchObject({ control: "unreachable", error: "not Tor's control protocol (StatusLine)" })
    }))

  it.scoped("Tor closes the connection: unreachable, then connected again after 1 s", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({ methods: ["NULL"] })
      const { service } = yield* start(fake.port)
      yield* statusIs(service, "connected")
      fake.dropAll()
      const status = yield* statusIs(service, "unreachable")
      expect(status.error).toBe("Tor closed the control connection")
      yield* sleepingFor(1000)
      yield* TestClock.adjust("1 second")
      yield* statusIs(service, "connected")
      expect(fake.connections()).toBe(2)
      expect(fake.commands()[1]).toEqual(["PROTOCOLINFO 1", "AUTHENTICATE", ...handshake.slice(1)])
    }))

  it.scoped("failed attempts are retried 1, 2, 4, 8, 16 s apart, then every 30 s", () =>
    Effect.gen(function*() {
      const fake = yield* fakeTor({ methods: ["NULL"], closeOnAccept: true })
      yield* start(fake.port)
      for (const [attempt, delay] of [[1, 1000], [2, 2000], [3, 4000], [4, 8000], [5, 16000], [6, 30000], [7, 30000]]) {
        yield* waitFor(Effect.sync(fake.connections), (n) => n === attempt)
        yield* sleepingFor(delay)
        yield* TestClock.adjust(delay - 1)
        expect(fake.connections()).toBe(attempt)
        yield* TestClock.adjust(1)
      }
      yield* waitFor(Effect.sync(fake.connections), (n) => n === 8)
    }))

  it.scoped("calls never wait for Tor: a port that accepts and never answers leaves every read immediate", () =>
    Effect.gen(function*() {
      // Reads and discards what it gets, never answers.
      const silent = yield* Effect.acquireRelease(
        Effect.async<net.Server>((resume) => {
          const server = net.createServer((socket) => socket.on("error", () => {}).resume())
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
      )
      const port = (silent.address() as net.AddressInfo).port
      const { service } = yield* start(port)
      service.upstreamOpened(1, "127.0.0.1:50000")
      service.upstreamClosed(1)
      expect(service.torOf(1)).toBeNull()
      expect(yield* service.circuits).toEqual([])
      expect((yield* service.status).control).toBe("unreachable")
      yield* sleepingFor(10_000)
      yield* TestClock.adjust("10 seconds")
      const status = yield* waitFor(service.status, (status) => status.error !== "not connected yet")
      expect(status).toMatchObject({ control: "unreachable", error: "no answer to PROTOCOLINFO in 10s" })
    }))

  it.effect("layerOff: status off, no circuits, no attribution", () =>
    Effect.gen(function*() {
      const tor = yield* TorControl
      expect(yield* tor.status).toEqual({ control: "off", address: null, version: null, error: null })
      expect(yield* tor.circuits).toEqual([])
      tor.upstreamOpened(1, "127.0.0.1:1")
      expect(tor.torOf(1)).toBeNull()
    }).pipe(Effect.provide(TorControlPort.layerOff)))

  it.scoped("address off: the live layer is the off service and connects nowhere", () =>
    Effect.gen(function*() {
      const service = yield* TorControlPort.make({ address: "off", password: undefined, now: () => 0 })
      expect(yield* service.status).toEqual({ control: "off", address: null, version: null, error: null })
    }))
})
