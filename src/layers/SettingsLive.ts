/**
 * The settings in memory, changed only through the settings schema.
 */
import { Effect, Either, Layer, Ref } from "effect"
import type { SettingsError } from "../domain/Errors.js"
import { applySettings, defaultSettings, type Settings } from "../domain/Settings.js"
import { SettingsStore, type SettingsService } from "../services/Settings.js"

export const make = (initial: Settings): Effect.Effect<SettingsService> =>
  Effect.map(Ref.make(initial), (ref) => ({
    get: Ref.get(ref),
    update: (input) =>
      Ref.modify(ref, (current): readonly [Either.Either<Settings, SettingsError>, Settings] => {
        const result = applySettings(current, input)
        return [result, Either.getOrElse(result, () => current)]
      }).pipe(Effect.flatMap((result) => result))
  }))

export const layer = (initial: Settings = defaultSettings): Layer.Layer<SettingsStore> =>
  Layer.effect(SettingsStore, make(initial))
