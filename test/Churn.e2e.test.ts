/**
 * Memory under churn through a SOCKS upstream (issue 11): 50,000 short connections
 * through MITM and an in-test SOCKS server to a loopback origin. MITM keeps only its
 * store (set to 100 connections here), so after a full garbage collection the heap
 * must be back within a small bound of where it was after the warm-up; a connection
 * whose memory outlives it (the `socks` package's timer held ~14 KiB each) shows
 * as hundreds of MiB.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { loopbackSocksServer } from "./support/LoopbackSocksServer.js"
import { httpOrigin, startMitm } from "./support/Loopback.js"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

const heapAfterGc = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * One connection as a browser makes it: SOCKS5 greeting and CONNECT to `localhost` (a
 * name, so it goes through the `socks` package), one GET, read to the close.
 */
const oneConnection = (proxyPort: number, originPort: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxyPort })
    const name = Buffer.from("localhost", "latin1")
    let got = Buffer.alloc(0)
    let stage: "method" | "reply" | "body" = "method"
    socket.once("connect", () => socket.write(Buffer.from([0x05, 0x01, 0x00])))
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      if (stage === "method" && got.length >= 2) {
        got = got.subarray(2)
        stage = "reply"
        socket.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length]), name, Buffer.from([originPort >> 8, originPort & 0xff])]))
      }
      if (stage === "reply" && got.length >= 10) {
        if (got[1] !== 0x00) return reject(new Error(`SOCKS reply ${got[1]}`))
        got = got.subarray(10)
        stage = "body"
        socket.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      }
    })
    socket.on("end", () => (stage === "body" && got.includes("churn") ? resolve() : reject(new Error(`ended in ${stage}`))))
    socket.on("error", reject)
  })

const churn = (count: number, proxyPort: number, originPort: number, workers = 50) =>
  Effect.promise(async () => {
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        await oneConnection(proxyPort, originPort)
      }
    }
    await Promise.all(Array.from({ length: workers }, worker))
  })

describe("memory under churn", () => {
  it.scopedLive("50,000 connections through a SOCKS upstream leave the heap within 24 MiB of where it was after the warm-up", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("churn"))
      const upstream = yield* loopbackSocksServer
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: upstream.port }, maxConnections: 100 })
      yield* churn(2_000, mitm.proxy.port, origin.port)
      const before = heapAfterGc()
      yield* churn(50_000, mitm.proxy.port, origin.port)
      const after = heapAfterGc()
      const grownMiB = (after - before) / 2 ** 20
      console.log(`heap after warm-up ${(before / 2 ** 20).toFixed(1)} MiB, after 50,000 more connections ${(after / 2 ** 20).toFixed(1)} MiB (${grownMiB >= 0 ? "+" : ""}${grownMiB.toFixed(1)} MiB)`)
      expect(grownMiB).toBeLessThan(24)
      const kept = yield* mitm.connections
      expect(kept.length).toBe(100)
      expect(kept.every((connection) => connection.upstream === `socks5://127.0.0.1:${upstream.port}` && connection.error === null)).toBe(true)
    }), 180_000)
})
