/**
 * The delay policy of the settings in force: the first per-host rule that
 * matches, a fixed delay as it is or a range drawn uniformly from Effect's
 * Random service (which tests seed), each held by a one-shot Schedule.
 */
import { Duration, Effect, Layer, Random, Schedule } from "effect"
import { type Delay, delayFor } from "../domain/Settings.js"
import { DelayPolicy, type DelayPolicyService, type PlannedDelay } from "../services/DelayPolicy.js"
import { SettingsStore } from "../services/Settings.js"

/** A hold of `duration`: a Schedule that recurs once, after that long. */
export const planned = (duration: Duration.Duration): PlannedDelay => ({ duration, schedule: Schedule.fromDelay(duration) })

/** The hold a delay setting asks for now; undefined for none. */
export const draw = (delay: Delay): Effect.Effect<PlannedDelay | undefined> => {
  switch (delay._tag) {
    case "None":
      return Effect.succeed(undefined)
    case "Fixed":
      return Effect.succeed(delay.millis === 0 ? undefined : planned(Duration.millis(delay.millis)))
    case "Range":
      return Effect.map(Random.nextRange(delay.minMillis, delay.maxMillis), (millis) => planned(Duration.millis(millis)))
  }
}

const noHold = planned(Duration.zero)

export const make: Effect.Effect<DelayPolicyService, never, SettingsStore> = Effect.map(
  SettingsStore,
  (settings) => ({
    forConnection: (host) =>
      Effect.flatMap(settings.get, (current) => {
        const http = delayFor(current.httpDelay, host)
        return Effect.map(draw(delayFor(current.socksDelay, host)), (socks) => ({
          socks,
          httpRequest: http._tag === "None" ? undefined : Effect.map(draw(http), (hold) => hold ?? noHold)
        }))
      })
  })
)

export const layer: Layer.Layer<DelayPolicy, never, SettingsStore> = Layer.effect(DelayPolicy, make)
