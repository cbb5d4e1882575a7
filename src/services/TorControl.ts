/**
 * Tor's control port, read only: which stream and circuit carried each of
 * MITM's upstream connections, the circuits Tor built, and whether the control
 * port is reachable. Measuring never waits for it: every method is a cheap
 * read, and a control port that is off, missing or gone changes only what
 * these reads return.
 *
 * - `status`: `/api/tor`.
 * - `circuits`: `/api/circuits`.
 * - `upstreamOpened(connectionId, localAddress)`: call from the socket's
 *   "connect" callback of every upstream connection to Tor's SOCKS port,
 *   before the SOCKS request is written, with the socket's local address as
 *   Tor writes SOURCE_ADDR (`sourceAddress(socket.localAddress, socket.localPort)`
 *   from domain/TorCircuits). Earlier is better: Tor's events are matched by it.
 * - `upstreamClosed(connectionId)`: when that socket closed.
 * - `forgetConnection(connectionId)`: when the store evicted the connection.
 * - `torOf(connectionId)`: the connection's `tor` field (null when unknown).
 * - `onNotice(listener)`: TorStreamAttached / TorStreamFailed for the
 *   connection's event log, with session times; returns an unsubscribe function.
 * - `reset`: with `POST /api/reset`: forget connections and ended circuits.
 */
import { Context, Data, type Effect } from "effect"
import type { TorAttribution, TorCircuit, TorNotice } from "../domain/TorCircuits.js"

/** `/api/tor`. */
export interface TorStatus {
  readonly control: "connected" | "off" | "unreachable" | "auth-failed"
  /** `127.0.0.1:9051`; null when off. */
  readonly address: string | null
  /** Tor's version once connected (`0.4.9.11`). */
  readonly version: string | null
  /** Why it is not connected, for people; never contains the password or the cookie. */
  readonly error: string | null
}

/** Why a control connection ended or never started. */
export class TorControlError extends Data.TaggedError("TorControlError")<{
  readonly reason:
    /** Nothing answers at the address, or the connection attempt failed. */
    | "Unreachable"
    /** Tor (or whatever answers) closed the connection. */
    | "Closed"
    /** What answered does not speak the control protocol. */
    | "Protocol"
    /** No offered method worked: wrong password, unreadable cookie, bad SAFECOOKIE proof. */
    | "Auth"
    /** Tor refused a command (GETINFO, SETEVENTS). */
    | "Command"
    /** Tor did not answer a command in time. */
    | "Timeout"
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

export interface TorControlService {
  readonly status: Effect.Effect<TorStatus>
  readonly circuits: Effect.Effect<ReadonlyArray<TorCircuit>>
  readonly upstreamOpened: (connectionId: number, localAddress: string) => void
  readonly upstreamClosed: (connectionId: number) => void
  readonly forgetConnection: (connectionId: number) => void
  readonly torOf: (connectionId: number) => TorAttribution | null
  readonly onNotice: (listener: (notice: TorNotice) => void) => () => void
  readonly reset: Effect.Effect<void>
}

export class TorControl extends Context.Tag("mitm/TorControl")<TorControl, TorControlService>() {}
