/**
 * The settings in force. Changes are validated through the one settings
 * schema and apply to connections opened after them.
 */
import { Context, type Effect } from "effect"
import type { SettingsError } from "../domain/Errors.js"
import type { Settings } from "../domain/Settings.js"

export interface SettingsService {
  readonly get: Effect.Effect<Settings>
  /** The same, read from socket callbacks on the relay's path (bandwidth limits apply at once). */
  readonly unsafeCurrent: () => Settings
  /** Applies a (partial) settings document; refused whole with the offending field named. */
  readonly update: (input: unknown) => Effect.Effect<Settings, SettingsError>
}

export class SettingsStore extends Context.Tag("mitm/Settings")<SettingsStore, SettingsService>() {}
