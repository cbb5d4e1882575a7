/**
 * The live Deadlines: one fiber on a Schedule of the clock service (TestClock
 * in tests) fires, each `resolution`, the deadlines that have passed, and
 * sleeps while there are none (an idle MITM does not wake every second).
 * Deadlines sit in buckets of one resolution each, so registering and
 * cancelling cost a set insert and delete.
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import { Deadlines, type DeadlinesService } from "../services/Deadlines.js"

export const defaultResolution = Duration.seconds(1)

export const make = (resolution: Duration.Duration = defaultResolution) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const step = Duration.toMillis(resolution)
    /** bucket k holds the deadlines due in ((k - 1) · step, k · step]. */
    const buckets = new Map<number, Set<{ readonly due: number; readonly fire: () => void }>>()
    /** Open while any bucket exists. */
    const pending = yield* Effect.makeLatch(false)

    const schedule: DeadlinesService["schedule"] = (after, onExpire) => {
      const due = clock.unsafeCurrentTimeMillis() + Duration.toMillis(after)
      const bucket = Math.ceil(due / step)
      let entries = buckets.get(bucket)
      if (entries === undefined) buckets.set(bucket, entries = new Set())
      const entry = { due, fire: onExpire }
      entries.add(entry)
      pending.unsafeOpen()
      return () => {
        entries.delete(entry)
      }
    }

    /** Fires what is due; says whether any bucket is left. */
    const sweep = Effect.sync(() => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const [bucket, entries] of buckets) {
        if ((bucket - 1) * step >= now) continue
        if (bucket * step <= now) buckets.delete(bucket)
        for (const entry of entries) {
          if (entry.due > now) continue
          entries.delete(entry)
          try {
            entry.fire()
          } catch {
            // A deadline's callback closes sockets; one that throws must not stop the others.
          }
        }
      }
      if (buckets.size === 0) pending.unsafeClose()
      return buckets.size > 0
    })
    const sweeps = Schedule.spaced(resolution).pipe(Schedule.whileInput((left: boolean) => left))
    yield* Effect.forkScoped(Effect.forever(
      pending.await.pipe(Effect.zipRight(Effect.sleep(resolution)), Effect.zipRight(Effect.repeat(sweep, sweeps)))
    ))
    return { schedule } satisfies DeadlinesService
  })

export const layer = (resolution?: Duration.Duration): Layer.Layer<Deadlines> =>
  Layer.scoped(Deadlines, make(resolution))
