/**
 * The delay policy of the settings in force: fixed delays as they are, ranges
 * drawn uniformly from Effect's Random service (which tests fix).
 */
import { Duration, Effect, Layer, Random } from "effect"
import { type Delay, delayFor } from "../domain/Settings.js"
import { DelayPolicy, type DelayPolicyService } from "../services/DelayPolicy.js"
import { SettingsStore } from "../services/Settings.js"

export const draw = (delay: Delay): Effect.Effect<Duration.Duration> => {
  switch (delay._tag) {
    case "None":
      return Effect.succeed(Duration.zero)
    case "Fixed":
      return Effect.succeed(Duration.millis(delay.millis))
    case "Range":
      return Effect.map(Random.nextRange(delay.minMillis, delay.maxMillis), Duration.millis)
  }
}

export const make: Effect.Effect<DelayPolicyService, never, SettingsStore> = Effect.map(
  SettingsStore,
  (settings) => ({
    forConnection: (host) =>
      Effect.flatMap(settings.get, (current) => {
        const http = delayFor(current.httpDelay, host)
        return Effect.map(draw(delayFor(current.socksDelay, host)), (socks) => ({
          socks,
          httpRequest: http._tag === "None" ? undefined : draw(http)
        }))
      })
  })
)

export const layer: Layer.Layer<DelayPolicy, never, SettingsStore> = Layer.effect(DelayPolicy, make)
