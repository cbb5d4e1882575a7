/**
 * The measurements as the report shows them: connections, per-server
 * statistics and the store's counters, derived from the Store on demand.
 */
import { Context, type Effect } from "effect"
import type { Connection, ServerStats } from "../domain/Connection.js"
import type { TorAttribution, TorCircuit } from "../domain/TorCircuits.js"
import type { StoreCounts } from "./Store.js"
import type { TorStatus } from "./TorControl.js"

export interface ReporterService {
  readonly connections: Effect.Effect<ReadonlyArray<Connection>>
  readonly connection: (id: number) => Effect.Effect<Connection | undefined>
  readonly servers: Effect.Effect<ReadonlyArray<ServerStats>>
  readonly counts: Effect.Effect<StoreCounts>
  /** Session seconds now (0 before the first connection): where open connections end in the graph. */
  readonly now: Effect.Effect<number>
  /** Wall-clock epoch milliseconds of session time 0, for HAR dates. */
  readonly sessionStartMillis: Effect.Effect<number | undefined>
  readonly version: Effect.Effect<number>
  /** Tor's control port: `/api/tor`. */
  readonly torStatus: Effect.Effect<TorStatus>
  /** The circuits Tor reported: `/api/circuits`. */
  readonly circuits: Effect.Effect<ReadonlyArray<TorCircuit>>
  /** A connection's stream, circuit and path in Tor; null when not known. */
  readonly torOf: (id: number) => TorAttribution | null
  /** Forget all measurements and restart the session clock. */
  readonly reset: Effect.Effect<void>
}

export class Reporter extends Context.Tag("mitm/Reporter")<Reporter, ReporterService>() {}
