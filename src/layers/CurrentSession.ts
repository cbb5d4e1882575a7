/**
 * The live measurements as a session (SPEC §8's `current`): what the compare routes
 * read and `POST /api/sessions` saves. `measure` saves each run the same way.
 */
import { Effect } from "effect"
import type { Measurements, SessionInfo, SessionStorageError } from "../domain/Session.js"
import type { TorAttribution } from "../domain/TorCircuits.js"
import { Reporter } from "../services/Reporter.js"
import { Sessions } from "../services/Sessions.js"

/** The live measurements now, as a copy: the store's connections are live views. */
export const currentMeasurements: Effect.Effect<Measurements, never, Reporter> = Effect.gen(function*() {
  const reporter = yield* Reporter
  const live = yield* reporter.connections
  const connections = live.map((connection) => ({ ...connection, events: connection.events.slice() }))
  const tor = new Map<number, TorAttribution>()
  for (const connection of connections) {
    const attribution = reporter.torOf(connection.id)
    if (attribution !== null) tor.set(connection.id, attribution)
  }
  return {
    connections,
    tor,
    circuits: yield* reporter.circuits,
    sessionStartMillis: (yield* reporter.sessionStartMillis) ?? 0,
    now: yield* reporter.now
  }
})

/** Saves the live measurements as a session named `name`. */
export const saveCurrent = (name: string): Effect.Effect<SessionInfo, SessionStorageError, Reporter | Sessions> =>
  Effect.flatMap(Sessions, (sessions) => Effect.flatMap(currentMeasurements, (measurements) => sessions.save(name, measurements)))
