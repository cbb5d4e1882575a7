import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Connection } from "../src/domain/Connection.js"
import { stamp } from "../src/domain/Event.js"
import * as HarOnExit from "../src/layers/HarOnExit.js"
import { Reporter } from "../src/services/Reporter.js"

/** One connection whose request is still waiting for its response. */
const waiting: Connection = {
  id: 1,
  client: "127.0.0.1:50000",
  host: "example.com",
  port: 80,
  socksVersion: 5,
  command: "connect",
  isolation: null,
  upstream: "socks5://127.0.0.1:9050",
  state: "open",
  protocol: "http",
  openedAt: 0,
  closedAt: null,
  closedBy: null,
  bytesUp: 40,
  bytesDown: 0,
  events: [
    stamp(0, { type: "SocksRequestStart", host: "example.com", port: 80, command: "connect", version: 5 }),
    stamp(0.1, { type: "SocksResponseEnd", reply: 0, replyName: "succeeded", address: null }),
    stamp(0.2, { type: "HttpRequestStart", exchange: 0, method: "GET", target: "/", httpVersion: "HTTP/1.1", headers: ["Host: example.com"] }),
    stamp(0.2, { type: "HttpRequestEnd", exchange: 0, bodyBytes: 0 })
  ],
  eventsCut: 0,
  error: null
}

const reporter = Layer.succeed(Reporter, {
  connections: Effect.succeed([waiting]),
  connection: () => Effect.succeed(undefined),
  servers: Effect.succeed([]),
  counts: Effect.succeed({ total: 1, evicted: 0, eventsCut: 0 }),
  now: Effect.succeed(1),
  sessionStartMillis: Effect.succeed(0),
  version: Effect.succeed(1),
  torStatus: Effect.succeed({ control: "off" as const, address: null, version: null, error: null }),
  circuits: Effect.succeed([]),
  torOf: () => null,
  reset: Effect.void
})

describe("--har-out", () => {
  it.effect("writes the HAR when the layer's scope closes, by rename, leaving no temporary file", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mitm-har-"))
      const file = path.join(dir, "session.har")
      yield* Effect.scoped(Layer.build(HarOnExit.layer(file, "0.1.0")))
      const har = JSON.parse(fs.readFileSync(file, "utf8"))
      expect(har.log.entries.map((e: { request: { url: string } }) => e.request.url)).toEqual(["http://example.com/"])
      expect(fs.readdirSync(dir)).toEqual(["session.har"])
      fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(reporter)))
})
