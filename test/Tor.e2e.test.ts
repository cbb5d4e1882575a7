/**
 * End to end through real Tor: client → MITM → Tor client → a private Tor
 * network on loopback (3 authorities, 2 exits; test/support/TorNetwork.ts)
 * → a local origin. Nothing leaves 127.0.0.0/8. Needs Debian's `tor`
 * package (`npm test` installs it as root: scripts/test-needs.mjs).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as crypto from "node:crypto"
import type { Connection } from "../src/domain/Connection.js"
import { socksReplyName } from "../src/domain/SocksProtocol.js"
import { chromiumThrough } from "./support/Chromium.js"
import { eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { connectRaw, socks5Connect, socks5Greeting, socks5Open } from "./support/SocksClient.js"
import { torAvailable, torNetwork } from "./support/TorNetwork.js"

/** A well-formed v3 onion address (real ed25519 key, checksum, version 3) that no service publishes. */
const unknownOnion = (): string => {
  const spki = crypto.generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" })
  const pubkey = spki.subarray(spki.length - 32)
  const version = Buffer.from([0x03])
  const checksum = crypto.createHash("sha3-256")
    .update(Buffer.concat([Buffer.from(".onion checksum"), pubkey, version]))
    .digest()
    .subarray(0, 2)
  const bytes = Buffer.concat([pubkey, checksum, version])
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
  let bits = 0
  let value = 0
  let out = ""
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return `${out}.onion`
}

/** A SOCKS5 CONNECT by name; returns the reply code (the connection is closed with the scope). */
const connectCode = (proxyPort: number, host: string, port: number) =>
  Effect.gen(function*() {
    const connection = yield* connectRaw(proxyPort)
    yield* connection.write(Buffer.concat([socks5Greeting(), socks5Connect(host, port)]))
    const method = yield* connection.read(2)
    expect([...method]).toEqual([0x05, 0x00])
    const reply = yield* connection.read(2)
    expect(reply.length).toBe(2)
    return reply[1]
  }).pipe(Effect.scoped)

const closedConnection = (connections: Effect.Effect<ReadonlyArray<Connection>>, host: string) =>
  eventually(Effect.map(connections, (all) => all.find((c) => c.host === host && c.state !== "open")))

const eventTime = (connection: Connection, type: string) => connection.events.find((e) => e.type === type)!.time

describe("MITM through a private Tor network", () => {
  // Never skipped: without Tor this end-to-end check fails and says why (SPEC §11).
  if (!torAvailable) {
    it("needs the tor and tor-gencert binaries", () => {
      throw new Error("tor and tor-gencert are not installed: apt-get install -y tor (npm test installs it when run as root)")
    })
    return
  }

  it.scopedLive("a GET crosses MITM and three Tor hops to a local origin; an unknown onion gets Tor's own reply code; Chromium loads a page the same way", () =>
    Effect.gen(function*() {
      const tor = yield* torNetwork
      console.log(`private Tor network bootstrapped in ${tor.bootstrapSeconds.toFixed(1)} s (client SOCKS 127.0.0.1:${tor.socksPort})`)
      const origin = yield* httpOrigin((_request, response) => response.end("hello through tor"), "127.0.0.1")
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: tor.socksPort } })

      // A freshly bootstrapped network can still refuse a first stream (0x01) while the exits
      // learn about each other; wait (bounded) until Tor itself carries one.
      yield* connectCode(tor.socksPort, "127.0.0.1", origin.port).pipe(
        Effect.flatMap((code) => (code === 0x00 ? Effect.void : Effect.fail(new Error(`Tor answered 0x${code.toString(16)}`)))),
        Effect.retry(Schedule.spaced("1 second").pipe(Schedule.upTo("60 seconds")))
      )

      // client → MITM → Tor client → guard → middle → exit → origin
      const { connection, method, reply } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      expect([...method]).toEqual([0x05, 0x00])
      expect(reply[1]).toBe(0x00)
      yield* connection.write(`GET /via-tor HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`)
      const response = (yield* connection.readToEnd).toString("latin1")
      expect(response).toMatch(/^HTTP\/1\.1 200 OK/)
      expect(response.endsWith("hello through tor")).toBe(true)

      const recorded = yield* closedConnection(mitm.connections, "127.0.0.1")
      expect(recorded).toMatchObject({
        port: origin.port,
        upstream: `socks5://127.0.0.1:${tor.socksPort}`,
        protocol: "http",
        state: "closed"
      })
      const types = recorded.events.map((e) => e.type)
      for (const type of ["SocksRequestStart", "SocksResponseEnd", "HttpRequestStart", "HttpResponseStart", "HttpResponseEnd"]) {
        expect(types).toContain(type)
      }
      expect(recorded.events.find((e) => e.type === "SocksResponseEnd")!.detail).toBe("succeeded")
      expect(recorded.events.find((e) => e.type === "HttpResponseStart")!.detail).toBe("HTTP/1.1 200 OK")
      const socksSetup = eventTime(recorded, "SocksResponseEnd") - eventTime(recorded, "SocksRequestStart")
      console.log(`SOCKS setup through Tor (SocksResponseEnd − SocksRequestStart): ${(socksSetup * 1000).toFixed(1)} ms`)
      expect(socksSetup).toBeGreaterThan(0)

      // An onion address that is well formed but unknown: Tor answers with an
      // extended code (ExtendedErrors on its SocksPort), and MITM passes it on
      // unchanged and names it in the report.
      const onion = unknownOnion()
      const started = process.hrtime.bigint()
      const throughMitm = yield* connectCode(mitm.proxy.port, onion, 80).pipe(Effect.timeout("100 seconds"))
      const onionSeconds = Number(process.hrtime.bigint() - started) / 1e9
      const direct = yield* connectCode(tor.socksPort, onion, 80).pipe(Effect.timeout("100 seconds"))
      console.log(
        `unknown onion: reply 0x${throughMitm.toString(16)} through MITM after ${onionSeconds.toFixed(1)} s, ` +
          `0x${direct.toString(16)} from Tor directly`
      )
      expect(throughMitm).not.toBe(0x00)
      expect([0x01, 0x04, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7]).toContain(throughMitm)
      expect(throughMitm).toBe(direct)
      const failed = yield* closedConnection(mitm.connections, onion)
      expect(failed.events.find((e) => e.type === "SocksResponseEnd")!.detail).toBe(socksReplyName(5, throughMitm))

      // A browser page load: Chromium → MITM → Tor → local origin, 12 resources.
      const page = yield* httpOrigin((request, response) => {
        if (request.url === "/") {
          const images = Array.from({ length: 12 }, (_, i) => `<img src="/image${i}.svg" width="10" height="10">`).join("")
          response.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html><title>through tor</title>${images}`)
        } else {
          response.writeHead(200, { "content-type": "image/svg+xml" }).end(`<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`)
        }
      }, "127.0.0.1")
      const browser = yield* chromiumThrough(mitm.proxy.port)
      const tab = yield* Effect.promise(() => browser.newPage())
      const loadStarted = process.hrtime.bigint()
      yield* Effect.promise(() => tab.goto(`http://127.0.0.1:${page.port}/`, { waitUntil: "load", timeout: 60_000 }))
      const loadSeconds = Number(process.hrtime.bigint() - loadStarted) / 1e9
      const pageConnections = (yield* mitm.connections).filter((c) => c.host === "127.0.0.1" && c.port === page.port)
      const requests = pageConnections.flatMap((c) => c.events.filter((e) => e.type === "HttpRequestStart"))
      const setups = pageConnections.map((c) => eventTime(c, "SocksResponseEnd") - c.openedAt)
      console.log(
        `page load through MITM and Tor: ${loadSeconds.toFixed(2)} s, ${pageConnections.length} connections, ` +
          `${requests.length} requests, SOCKS setups ${setups.map((t) => (t * 1000).toFixed(0)).join("/")} ms`
      )
      expect(requests.length).toBeGreaterThanOrEqual(13)
      expect(pageConnections.every((c) => c.upstream === `socks5://127.0.0.1:${tor.socksPort}`)).toBe(true)
    }), 180_000)
})
