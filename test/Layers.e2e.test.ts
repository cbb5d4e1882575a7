/**
 * Swapping the upstream is swapping one Layer: the whole program built with
 * InternalSocksUpstream.layer or SocksUpstream.layer in place of the
 * settings-following upstream, and nothing else changed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as InternalSocksUpstream from "../src/layers/InternalSocksUpstream.js"
import * as SocksUpstream from "../src/layers/SocksUpstream.js"
import { closedPort, eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { loopbackSocksServer } from "./support/LoopbackSocksServer.js"
import { socks5Open } from "./support/SocksClient.js"

const getThrough = (proxyPort: number, host: string, port: number) =>
  Effect.gen(function*() {
    const { connection, reply } = yield* socks5Open(proxyPort, host, port)
    expect(reply[1]).toBe(0x00)
    yield* connection.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    return (yield* connection.readToEnd).toString("latin1")
  })

describe("the upstream is one Layer", () => {
  it.scopedLive("with InternalSocksUpstream.layer in place of the Tor layer, MITM connects directly, whatever the settings say", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("direct"))
      const deadTor = yield* closedPort
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: deadTor } }, InternalSocksUpstream.layer)
      expect(yield* getThrough(mitm.proxy.port, "127.0.0.1", origin.port)).toContain("direct")
      const [recorded] = yield* eventually(Effect.map(mitm.connections, (all) => (all[0]?.state === "closed" ? all : undefined)))
      expect(recorded.upstream).toBe("direct")
    }))

  it.scopedLive("with SocksUpstream.layer, every stream goes through that SOCKS server as a name, whatever the settings say", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("through socks"))
      const socks = yield* loopbackSocksServer
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } }, SocksUpstream.layer({ host: "127.0.0.1", port: socks.port }))
      expect(yield* getThrough(mitm.proxy.port, "localhost", origin.port)).toContain("through socks")
      // A name the loopback-only SOCKS server refuses shows it was asked, by name.
      const refused = yield* socks5Open(mitm.proxy.port, "example.invalid", 80)
      expect(refused.reply[1]).toBe(0x02)
      expect(socks.refused).toEqual(["example.invalid:80"])
      const recorded = yield* eventually(Effect.map(mitm.connections, (all) => (all.length === 2 ? all : undefined)))
      expect(recorded.map((c) => c.upstream)).toEqual([`socks5://127.0.0.1:${socks.port}`, `socks5://127.0.0.1:${socks.port}`])
    }))
})
