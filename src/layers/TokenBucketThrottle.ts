/**
 * The live Throttle: token buckets read the Clock service (TestClock in
 * tests) and the rates in force at each chunk, so a change applies at once.
 * A bucket may go into debt by one chunk; the chunk then waits until the debt
 * is paid, so N bytes at R bytes/s take N/R seconds.
 */
import { type Clock, Duration, Effect, Layer } from "effect"
import type { Direction } from "../domain/Event.js"
import type { Settings } from "../domain/Settings.js"
import { SettingsStore } from "../services/Settings.js"
import { Throttle, type ThrottleService } from "../services/Throttle.js"

/** Idle time a bucket may save up for a burst. */
const burstSeconds = 0.05

export interface TokenBucket {
  /** Takes `bytes` at `rate` bytes/s; returns the milliseconds to wait (0: go now). */
  readonly take: (rate: number, bytes: number) => number
}

export const makeBucket = (clock: Clock.Clock): TokenBucket => {
  let tokens = 0
  let last = clock.unsafeCurrentTimeMillis()
  return {
    take: (rate, bytes) => {
      const now = clock.unsafeCurrentTimeMillis()
      tokens = Math.min(rate * burstSeconds, tokens + ((now - last) * rate) / 1000)
      last = now
      tokens -= bytes
      return tokens < 0 ? (-tokens * 1000) / rate : 0
    }
  }
}

export const make: Effect.Effect<ThrottleService, never, SettingsStore> = Effect.gen(function*() {
  const settings = yield* SettingsStore
  const clock = yield* Effect.clock
  const total = { up: makeBucket(clock), down: makeBucket(clock) }
  const limited = ({ bandwidth, bandwidthTotal }: Settings) => bandwidth !== 0 || bandwidthTotal !== 0
  return {
    forConnection: () => {
      const own = { up: makeBucket(clock), down: makeBucket(clock) }
      return {
        take: (direction: Direction, bytes: number) => {
          const current = settings.unsafeCurrent()
          if (!limited(current)) return undefined
          const { bandwidth, bandwidthTotal } = current
          const wait = Math.max(
            bandwidth === 0 ? 0 : own[direction].take(bandwidth, bytes),
            bandwidthTotal === 0 ? 0 : total[direction].take(bandwidthTotal, bytes)
          )
          return wait > 0 ? Duration.millis(wait) : undefined
        }
      }
    }
  }
})

export const layer: Layer.Layer<Throttle, never, SettingsStore> = Layer.effect(Throttle, make)
