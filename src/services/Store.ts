/**
 * Where measurements live: every measured connection and its event log,
 * bounded by `maxConnections` (the oldest closed connections are evicted first).
 */
import { Context, type Effect } from "effect"
import type { Connection, ConnectionProtocol, ConnectionState } from "../domain/Connection.js"
import type { ConnectionEvent, Direction } from "../domain/Event.js"

/** What is known of a connection when it opens. */
export type ConnectionInit = Pick<
  Connection,
  "client" | "host" | "port" | "socksVersion" | "command" | "isolation" | "upstream" | "openedAt"
>

/**
 * One connection's recorder. Its methods are plain functions because the relay
 * calls them from socket callbacks, once per chunk.
 */
export interface ConnectionRecorder {
  readonly id: number
  readonly record: (event: ConnectionEvent) => void
  readonly addBytes: (direction: Direction, count: number) => void
  /** The connection as recorded so far (still readable after a reset forgot it). */
  readonly current: () => Connection
  readonly setProtocol: (protocol: ConnectionProtocol) => void
  readonly finish: (finish: {
    readonly state: Exclude<ConnectionState, "open">
    readonly time: number
    readonly closedBy: "client" | "server" | null
    readonly error: string | null
  }) => void
}

export interface StoreCounts {
  /** Connections recorded in this session, evicted ones included. */
  readonly total: number
  /** Closed connections evicted to stay within maxConnections. */
  readonly evicted: number
  /** Events cut from event logs that reached the per-connection cap. */
  readonly eventsCut: number
}

export interface StoreService {
  readonly open: (init: ConnectionInit) => Effect.Effect<ConnectionRecorder>
  /** Connections in id order. The values are live views: serialize them, don't keep them. */
  readonly list: Effect.Effect<ReadonlyArray<Connection>>
  readonly get: (id: number) => Effect.Effect<Connection | undefined>
  readonly counts: Effect.Effect<StoreCounts>
  /** Grows with every change to the measurements: a cheap "anything new?" for live pages. */
  readonly version: Effect.Effect<number>
  /** Calls `listener` with the id of each connection evicted from now on; returns the unsubscribe. */
  readonly onEvicted: (listener: (id: number) => void) => () => void
  /**
   * Calls `listener` with each connection that closes (or fails) from now on, right after its
   * ConnectionClose is recorded, on the closing path: a listener must return at once.
   * Returns the unsubscribe.
   */
  readonly onClosed: (listener: (connection: Connection) => void) => () => void
  /** Forget every measurement; ids start again from 1. */
  readonly reset: Effect.Effect<void>
}

export class Store extends Context.Tag("mitm/Store")<Store, StoreService>() {}
