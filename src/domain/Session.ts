/**
 * Sessions (SPEC §8): a set of measurements kept beyond the running MITM. The live
 * one is `current`; saved and imported ones live as HAR files. Whatever the source,
 * a session's measurements are the same connections with typed events that the live
 * report reads, so every page and route works on them unchanged.
 */
import { Data } from "effect"
import type { Connection } from "./Connection.js"
import type { TorAttribution, TorCircuit } from "./TorCircuits.js"

/** What was measured: the connections and what Tor said about them, at one moment. */
export interface Measurements {
  readonly connections: ReadonlyArray<Connection>
  /** Tor's stream and circuit of each connection that has one (by connection id). */
  readonly tor: ReadonlyMap<number, TorAttribution>
  readonly circuits: ReadonlyArray<TorCircuit>
  /** Wall-clock epoch milliseconds of session time 0 (for HAR dates). */
  readonly sessionStartMillis: number
  /** Session seconds when the measurements were taken: open connections end here in the graph. */
  readonly now: number
}

/** A connection's `tor` field, as the JSON API shows it. */
export const torOf = (measurements: Measurements) => (connectionId: number): TorAttribution | null =>
  measurements.tor.get(connectionId) ?? null

/** Where a session's measurements came from: MITM itself, or a HAR another tool wrote. */
export type SessionSource = "mitm" | "har"

/** A saved or imported session as `GET /api/sessions` lists it. */
export interface SessionInfo {
  readonly id: string
  readonly name: string
  /** ISO 8601. */
  readonly savedAt: string
  readonly connections: number
  readonly source: SessionSource
}

/** A session: what it is, and what it holds. */
export interface Session {
  readonly info: SessionInfo
  readonly measurements: Measurements
}

/** Session ids are file names too: letters, digits, `-` and `_`. */
export const sessionIdPattern = /^[A-Za-z0-9_-]{1,80}$/

/** No session with that id. */
export class SessionNotFound extends Data.TaggedError("SessionNotFound")<{ readonly id: string }> {
  override get message() {
    return `no session with id ${JSON.stringify(this.id)}`
  }
}

/** Sessions could not be read or written where they live. */
export class SessionStorageError extends Data.TaggedError("SessionStorageError")<{
  readonly reason: "Read" | "Write" | "Remove" | "List"
  /** The session, or null for the whole directory. */
  readonly id: string | null
  readonly detail: string
}> {
  override get message() {
    const what = this.id === null ? "the sessions" : `session ${this.id}`
    const verb = { Read: "read", Write: "write", Remove: "remove", List: "list" }[this.reason]
    return `could not ${verb} ${what}: ${this.detail}`
  }
}

/** A document that is not a HAR MITM can read: the first problem, where it is and what was expected. */
export class HarDocumentError extends Data.TaggedError("HarDocumentError")<{
  /** Where in the document: `log.entries[3].request.url`; empty for the document itself. */
  readonly path: string
  /** What is wrong there: `expected a string, got 5`. */
  readonly problem: string
}> {
  override get message() {
    return `not a HAR document: ${this.path === "" ? "" : `${this.path}: `}${this.problem}`
  }
}
