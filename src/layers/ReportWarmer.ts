/**
 * Makes the report's text of settled connections while MITM is idle. A closed connection's
 * JSON and HAR entries never change, so they are serialized once and kept (src/http/
 * SettledText.ts); doing it between page loads, rather than at the first request for
 * `/api/connections` or `/har`, makes that request copy bytes instead of serializing tens of
 * megabytes. Once the report's text has been asked for at all, it wakes when a connection
 * closes, waits until the measurements stand still, and stops as soon as they change
 * (traffic is flowing), so it takes no time from the relay.
 */
import { Effect, Layer } from "effect"
import { warmHarEntries } from "../http/Har.js"
import { textWasAsked, warmConnectionText } from "../http/SettledText.js"
import { Reporter } from "../services/Reporter.js"
import { Store } from "../services/Store.js"

/** How long the measurements must stand still before it starts. */
const quiet = "100 millis"

/** Connections made between yields: a few tens of milliseconds of work, so a request waits little. */
const perSlice = 200

export interface ReportWarmerOptions {
  readonly creatorVersion: string
  /** Whether the report's text was ever asked for: until then nothing is made ahead. */
  readonly wanted?: () => boolean
}

export const layer = (options: ReportWarmerOptions): Layer.Layer<never, never, Reporter | Store> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const reporter = yield* Reporter
    const store = yield* Store
    const closed = yield* Effect.makeLatch(false)
    yield* Effect.acquireRelease(
      Effect.sync(() => store.onClosed(() => closed.unsafeOpen())),
      (unsubscribe) => Effect.sync(unsubscribe)
    )

    /** One pass over the connections at `version`; false when the measurements changed during it. */
    const pass = (version: number) =>
      Effect.gen(function*() {
        const connections = yield* reporter.connections
        const har = {
          sessionStartMillis: (yield* reporter.sessionStartMillis) ?? 0,
          creatorVersion: options.creatorVersion,
          torOf: reporter.torOf
        }
        for (let next = 0; next < connections.length;) {
          for (let made = 0; next < connections.length && made < perSlice; next++) {
            const connection = connections[next]
            const json = warmConnectionText(connection, reporter.torOf(connection.id))
            if (warmHarEntries(connection, har) || json) made++
          }
          // Let requests and traffic in; stop at once if the measurements change.
          yield* Effect.yieldNow()
          if ((yield* reporter.version) !== version) return false
        }
        return true
      })

    /** After a close: wait for a quiet moment, then make everything (again, if it was interrupted by traffic). */
    const warm = Effect.gen(function*() {
      yield* closed.await
      closed.unsafeClose()
      if (!(options.wanted ?? textWasAsked)()) return
      let seen = yield* reporter.version
      for (;;) {
        yield* Effect.sleep(quiet)
        const version = yield* reporter.version
        if (version === seen && (yield* pass(version))) return
        seen = yield* reporter.version
      }
    })
    yield* Effect.forkScoped(Effect.forever(warm))
  }))
