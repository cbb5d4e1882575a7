/**
 * A Reporter over measurements that do not change: a HAR file opened with
 * `view FILE.har` (SPEC §8). Nothing is measured; reset forgets nothing.
 */
import { Effect, Layer } from "effect"
import { serverStats } from "../domain/Connection.js"
import { type Measurements, torOf } from "../domain/Session.js"
import { Reporter, type ReporterService } from "../services/Reporter.js"
import type { TorStatus } from "../services/TorControl.js"

/** What Tor's control port said when the measurements were saved: connected, if anything is known of circuits. */
export const savedTorStatus = (measurements: Measurements): TorStatus =>
  measurements.circuits.length > 0 || measurements.tor.size > 0
    ? { control: "connected", address: "its control port when the session was saved", version: null, error: null }
    : { control: "off", address: null, version: null, error: "nothing is known of Tor's circuits in this session" }

export const make = (measurements: Measurements): ReporterService => ({
  connections: Effect.succeed(measurements.connections),
  connection: (id) => Effect.succeed(measurements.connections.find((connection) => connection.id === id)),
  servers: Effect.sync(() => serverStats(measurements.connections)),
  counts: Effect.succeed({
    total: measurements.connections.length,
    evicted: 0,
    eventsCut: measurements.connections.reduce((sum, connection) => sum + connection.eventsCut, 0)
  }),
  now: Effect.succeed(measurements.now),
  sessionStartMillis: Effect.succeed(measurements.sessionStartMillis),
  version: Effect.succeed(0),
  torStatus: Effect.succeed(savedTorStatus(measurements)),
  circuits: Effect.succeed(measurements.circuits),
  torOf: torOf(measurements),
  reset: Effect.void
})

export const layer = (measurements: Measurements): Layer.Layer<Reporter> => Layer.succeed(Reporter, make(measurements))
