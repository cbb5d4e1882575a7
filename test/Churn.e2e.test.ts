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
import { loopbackSocksServer } from "./support/LoopbackSocksServer.js"
import { churn, heapAfterGc } from "./support/Churn.js"
import { httpOrigin, startMitm } from "./support/Loopback.js"

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
