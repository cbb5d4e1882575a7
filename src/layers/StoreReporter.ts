/**
 * The Reporter over the Store and the session clock.
 */
import { Effect, Layer } from "effect"
import { serverStats } from "../domain/Connection.js"
import { Reporter, type ReporterService } from "../services/Reporter.js"
import { SessionClock } from "../services/SessionClock.js"
import { Store } from "../services/Store.js"
import { TorControl } from "../services/TorControl.js"

export const make: Effect.Effect<ReporterService, never, Store | SessionClock | TorControl> = Effect.gen(function*() {
  const store = yield* Store
  const clock = yield* SessionClock
  const tor = yield* TorControl
  return {
    connections: store.list,
    connection: store.get,
    servers: Effect.map(store.list, serverStats),
    counts: store.counts,
    now: clock.elapsed,
    sessionStartMillis: clock.startedAtMillis,
    version: store.version,
    torStatus: tor.status,
    circuits: tor.circuits,
    torOf: tor.torOf,
    reset: Effect.all([store.reset, clock.reset, tor.reset], { discard: true })
  }
})

export const layer: Layer.Layer<Reporter, never, Store | SessionClock | TorControl> = Layer.effect(Reporter, make)
