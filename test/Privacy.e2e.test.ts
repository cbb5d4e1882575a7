/**
 * Today's traffic through MITM: an HTTPS fetch to a local TLS origin shows its
 * server name and handshake timing; and with a SOCKS upstream MITM performs no
 * DNS lookup at all, for CONNECT and RESOLVE, for names that exist or not.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as https from "node:https"
import { createRequire } from "node:module"
import * as tls from "node:tls"
import { eventually, startMitm, tcpServer } from "./support/Loopback.js"
import { httpsOrigin } from "./support/SelfSigned.js"
import { connectRaw, socks5Connect, socks5Greeting, socks5Open } from "./support/SocksClient.js"

describe("HTTPS and privacy", () => {
  it.scopedLive("an HTTPS fetch through MITM shows the server name, the TLS versions and the handshake timing", () =>
    Effect.gen(function*() {
      const { port } = yield* httpsOrigin((_request, response) => response.end("secret page"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", port)
      // The client skips verification: the certificate is self-signed.
      const body = yield* Effect.async<string, Error>((resume) => {
        const request = https.request({
          host: "127.0.0.1",
          port,
          path: "/",
          createConnection: () =>
            tls.connect({ socket: connection.socket, servername: "secure.localtest", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }),
          headers: { connection: "close" }
        }, (response) => {
          let text = ""
          response.on("data", (chunk: Buffer) => (text += chunk.toString()))
          response.on("end", () => resume(Effect.succeed(text)))
        })
        request.on("error", (error) => resume(Effect.fail(error)))
        request.end()
      })
      expect(body).toBe("secret page")
      const recorded = yield* eventually(Effect.map(mitm.connections, (all) => all[0]?.events.some((e) => e.type === "TlsApplicationData" && e.direction === "down") ? all[0] : undefined))
      expect(recorded.protocol).toBe("tls")
      const hello = recorded.events.find((e) => e.type === "TlsClientHello")!
      const serverHello = recorded.events.find((e) => e.type === "TlsServerHello")!
      expect(hello.detail).toMatch(/^SNI secure\.localtest, ALPN http\/1\.1, versions TLS 1\.3/)
      expect(serverHello.detail).toMatch(/^TLS 1\.3, cipher TLS_/)
      expect(serverHello.time).toBeGreaterThanOrEqual(hello.time)
      expect(recorded.events.some((e) => e.type === "InferredRequest")).toBe(true)
      expect(recorded.events.some((e) => e.type === "InferredResponse")).toBe(true)
      // The bytes were never decrypted: the page's text is not in any event.
      expect(JSON.stringify(recorded)).not.toContain("secret page")
    }))

  it.scopedLive("with a SOCKS upstream, MITM never resolves a name: no DNS call for CONNECT or RESOLVE, existing or not", () =>
    Effect.gen(function*() {
      // A SOCKS5 upstream that answers every CONNECT with success and every RESOLVE with 127.0.0.9.
      const targets: Array<string> = []
      const upstream = yield* tcpServer((socket) => {
        let buffer = Buffer.alloc(0)
        let greeted = false
        socket.on("data", (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk])
          if (!greeted && buffer.length >= 2 + buffer[1]) {
            buffer = buffer.subarray(2 + buffer[1])
            greeted = true
            socket.write(Buffer.from([5, 0]))
          }
          if (greeted && buffer.length >= 5 && buffer[3] === 3 && buffer.length >= 7 + buffer[4]) {
            targets.push(`${buffer[1].toString(16)} ${buffer.subarray(5, 5 + buffer[4]).toString()}`)
            socket.end(Buffer.from([5, 0, 0, 1, 127, 0, 0, 9, 0, 0]))
          }
        })
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: upstream.port } })
      // Listening looks the listen address up once (Node does, even for an IP): spy from here on.
      const dns = createRequire(import.meta.url)("node:dns") as Record<string, unknown>
      const promises = dns.promises as Record<string, unknown>
      const calls: Array<string> = []
      const spied = ["lookup", "resolve", "resolve4", "resolve6", "resolveAny", "reverse", "lookupService"]
      const originals = new Map<string, unknown>()
      for (const [owner, label] of [[dns, "dns"], [promises, "dns.promises"]] as const) {
        for (const name of spied) {
          const original = owner[name]
          if (typeof original !== "function") continue
          originals.set(`${label}.${name}`, original)
          owner[name] = (...args: Array<unknown>) => {
            calls.push(`${label}.${name}(${String(args[0])})`)
            return (original as (...a: Array<unknown>) => unknown).apply(owner, args)
          }
        }
      }
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const name of spied) {
            if (originals.has(`dns.${name}`)) dns[name] = originals.get(`dns.${name}`)
            if (originals.has(`dns.promises.${name}`)) promises[name] = originals.get(`dns.promises.${name}`)
          }
        })
      )
      for (const [host, command] of [["example.com", 0x01], ["no-such-name.invalid", 0x01], ["example.org", 0xf0], ["nothing-here.invalid", 0xf0]] as const) {
        const client = yield* connectRaw(mitm.proxy.port)
        yield* client.write(Buffer.concat([socks5Greeting(), socks5Connect(host, 443, command)]))
        const reply = yield* client.readToEnd
        expect(reply[3]).toBe(0x00)
      }
      yield* eventually(Effect.map(mitm.connections, (all) => all.length === 4 && all.every((c) => c.state !== "open") ? all : undefined))
      expect(targets).toEqual(["1 example.com", "1 no-such-name.invalid", "f0 example.org", "f0 nothing-here.invalid"])
      const resolved = (yield* mitm.connections).filter((c) => c.command === "resolve")
      expect(resolved.map((c) => c.events.find((e) => e.type === "SocksResponseEnd")?.detail)).toEqual(["succeeded: 127.0.0.9", "succeeded: 127.0.0.9"])
      expect(calls).toEqual([])
    }))
})
