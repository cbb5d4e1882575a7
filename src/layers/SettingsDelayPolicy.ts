/**
 * The delay policy of the settings in force: fixed delays as they are, ranges
 * drawn uniformly from Effect's Random service (which tests fix).
 */
import { Duration, Effect, Layer, Random } from "effect"
import type { DelaySpec } from "../domain/Settings.js"
import { DelayPolicy, type DelayPolicyService } from "../services/DelayPolicy.js"
import { SettingsStore } from "../services/Settings.js"

export const draw = (spec: DelaySpec): Effect.Effect<Duration.Duration> => {
  switch (spec._tag) {
    case "None":
      return Effect.succeed(Duration.zero)
    case "Fixed":
      return Effect.succeed(Duration.millis(spec.millis))
    case "Range":
      return Effect.map(Random.nextRange(spec.minMillis, spec.maxMillis), Duration.millis)
  }
}

export const make: Effect.Effect<DelayPolicyService, never, SettingsStore> = Effect.map(
  SettingsStore,
  (settings) => ({
    forConnection: () =>
      Effect.flatMap(settings.get, (current) =>
        Effect.map(draw(current.socksDelay), (socks) => ({
          socks,
          httpRequest: current.httpDelay._tag === "None" ? undefined : draw(current.httpDelay)
        })))
  })
)

export const layer: Layer.Layer<DelayPolicy, never, SettingsStore> = Layer.effect(DelayPolicy, make)
