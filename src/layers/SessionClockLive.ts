/**
 * The live SessionClock: readings of Effect's Clock (TestClock in tests) taken
 * relative to the session start.
 */
import { type Clock, Effect, Layer } from "effect"
import { SessionClock, type SessionClockService } from "../services/SessionClock.js"

/** A SessionClock over the Clock in the context where the layer is built (TestClock in tests). */
export const make: Effect.Effect<SessionClockService> = Effect.map(Effect.clock, (clock: Clock.Clock) => {
  let start: bigint | undefined
  const unsafeAt = (nanos: bigint): number => {
    if (start === undefined) start = nanos
    return nanos > start ? Math.round(Number(nanos - start) / 1e3) / 1e6 : 0
  }
  const unsafeNow = (): number => unsafeAt(clock.unsafeCurrentTimeNanos())
  return {
    now: Effect.sync(unsafeNow),
    unsafeNow,
    unsafeAt,
    elapsed: Effect.sync(() => (start === undefined ? 0 : unsafeNow())),
    unsafeElapsed: () => (start === undefined ? 0 : unsafeNow()),
    // Effect's clocks count nanoseconds from the Unix epoch, so the start instant is a date too.
    startedAtMillis: Effect.sync(() => (start === undefined ? undefined : Number(start / 1_000_000n))),
    reset: Effect.sync(() => {
      start = undefined
    })
  }
})

export const layer: Layer.Layer<SessionClock> = Layer.effect(SessionClock, make)
