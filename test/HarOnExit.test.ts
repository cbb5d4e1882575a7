import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as HarOnExit from "../src/layers/HarOnExit.js"
import { Reporter } from "../src/services/Reporter.js"
import { connectionOf } from "./support/Connections.js"

const reporter = Layer.succeed(Reporter, {
  connections: Effect.succeed([
    connectionOf(1, "example.com", [[0, "SocksRequestStart"], [0.1, "SocksResponseEnd"], [0.2, "HttpRequestStart", "GET / HTTP/1.1", ["Host: example.com"]]])
  ]),
  connection: () => Effect.succeed(undefined),
  servers: Effect.succeed([]),
  counts: Effect.succeed({ total: 1, evicted: 0, eventsCut: 0 }),
  now: Effect.succeed(1),
  sessionStartMillis: Effect.succeed(0),
  version: Effect.succeed(1),
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
