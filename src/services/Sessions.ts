/**
 * Saved and imported sessions (SPEC §8), one HAR file each. `save` keeps measurements
 * (the live ones, or a run of `measure`) under a name; `importHar` takes any tool's HAR;
 * a session reopens as the same connections and events the live report showed.
 */
import { Context, type Effect } from "effect"
import type {
  HarDocumentError,
  Measurements,
  Session,
  SessionInfo,
  SessionNotFound,
  SessionStorageError
} from "../domain/Session.js"

export interface SessionsService {
  /** Keeps the measurements as a new session. */
  readonly save: (name: string, measurements: Measurements) => Effect.Effect<SessionInfo, SessionStorageError>
  /** Keeps a HAR document as a new session; refused with its first problem when it is not HAR. */
  readonly importHar: (
    document: unknown,
    name?: string
  ) => Effect.Effect<SessionInfo, HarDocumentError | SessionStorageError>
  /** Every session, newest first. */
  readonly list: Effect.Effect<ReadonlyArray<SessionInfo>, SessionStorageError>
  readonly get: (id: string) => Effect.Effect<Session, SessionNotFound | SessionStorageError>
  /** The session's HAR file as it is kept (JSON text). */
  readonly har: (id: string) => Effect.Effect<string, SessionNotFound | SessionStorageError>
  readonly remove: (id: string) => Effect.Effect<void, SessionNotFound | SessionStorageError>
}

export class Sessions extends Context.Tag("mitm/Sessions")<Sessions, SessionsService>() {}
