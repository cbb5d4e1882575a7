/**
 * The Reporter over the Store and the session clock.
 */
import { Effect, Layer } from "effect"
import { serverStats } from "../domain/Connection.js"
import { Reporter, type ReporterService } from "../services/Reporter.js"
import { SessionClock } from "../services/SessionClock.js"
import { Store } from "../services/Store.js"

export const make: Effect.Effect<ReporterService, never, Store | SessionClock> = Effect.gen(function*() {
  const store = yield* Store
  const clock = yield* SessionClock
  return {
    connections: store.list,
    connection: store.get,
    servers: Effect.map(store.list, serverStats),
    counts: store.counts,
    now: clock.elapsed,
    sessionStartMillis: clock.startedAtMillis,
    version: store.version,
    reset: Effect.zipRight(store.reset, clock.reset)
  }
})

export const layer: Layer.Layer<Reporter, never, Store | SessionClock> = Layer.effect(Reporter, make)
