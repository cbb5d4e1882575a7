/**
 * The settings in memory, changed only through the settings schema. One
 * current value, read by fibers and by the relay's socket callbacks alike.
 */
import { Effect, Either, Layer } from "effect"
import { applySettings, defaultSettings, type Settings } from "../domain/Settings.js"
import { SettingsStore, type SettingsService } from "../services/Settings.js"

export const make = (initial: Settings): Effect.Effect<SettingsService> =>
  Effect.sync(() => {
    let current = initial
    return {
      get: Effect.sync(() => current),
      unsafeCurrent: () => current,
      update: (input) =>
        Effect.suspend(() => {
          const result = applySettings(current, input)
          if (Either.isRight(result)) current = result.right
          return result
        })
    }
  })

export const layer = (initial: Settings = defaultSettings): Layer.Layer<SettingsStore> =>
  Layer.effect(SettingsStore, make(initial))
