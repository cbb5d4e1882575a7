/**
 * Makes the report's text of settled connections while MITM is idle. A closed connection's
 * JSON and HAR entries never change, so they are serialized once and kept (src/http/
 * SettledText.ts); doing it between page loads, rather than at the first request for
 * `/api/connections` or `/har`, makes that request copy bytes instead of serializing tens of
 * megabytes. It starts only when measurements did not change for a while and stops as soon
 * as they do (traffic is flowing), so it takes no time from the relay.
 */
import { Effect, Layer, Schedule } from "effect"
import { warmHarEntries } from "../http/Har.js"
import { warmConnectionText } from "../http/SettledText.js"
import { Reporter } from "../services/Reporter.js"

/** How often it looks whether measurements stopped changing. */
const every = "100 millis"

/** Connections made between yields: a few tens of milliseconds of work, so a request waits little. */
const perSlice = 200

export const layer = (options: { readonly creatorVersion: string }): Layer.Layer<never, never, Reporter> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const reporter = yield* Reporter
    /** The measurements' version at the last look, and the one everything was made at. */
    let seen = -1
    let madeAt = -1
    /** Where the pass over the connections goes on; a pass counts only if nothing changed during it. */
    let next = 0
    const look = Effect.gen(function*() {
      const version = yield* reporter.version
      const idle = version === seen
      seen = version
      if (!idle) next = 0
      if (!idle || version === madeAt) return
      const connections = yield* reporter.connections
      const har = {
        sessionStartMillis: (yield* reporter.sessionStartMillis) ?? 0,
        creatorVersion: options.creatorVersion,
        torOf: reporter.torOf
      }
      while (next < connections.length) {
        for (let made = 0; next < connections.length && made < perSlice; next++) {
          const connection = connections[next]
          const json = warmConnectionText(connection, reporter.torOf(connection.id))
          if (warmHarEntries(connection, har) || json) made++
        }
        // Let requests and traffic in; stop at once if measurements change.
        yield* Effect.yieldNow()
        if ((yield* reporter.version) !== version) return
      }
      madeAt = version
    })
    yield* Effect.forkScoped(Effect.schedule(look, Schedule.spaced(every)))
  }))
