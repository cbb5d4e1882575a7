/**
 * The one time source: seconds since the session start, read from Effect's
 * Clock so that TestClock drives every recorded time.
 */
import { Context, type Effect } from "effect"

export interface SessionClockService {
  /** Seconds since the session start; the first call after start or reset starts the session (time 0). */
  readonly now: Effect.Effect<number>
  /** The same reading for Node callbacks on the relay's path, where no fiber runs. */
  readonly unsafeNow: () => number
  /**
   * Session seconds of an instant read earlier from Effect's Clock (nanoseconds), starting
   * the session there if none runs: a connection's first byte is read before MITM knows
   * whether the connection is measured at all.
   */
  readonly unsafeAt: (nanos: bigint) => number
  /** Seconds since the session start without starting one (0 before the first connection): for the report. */
  readonly elapsed: Effect.Effect<number>
  /** The same reading for callbacks (Tor's control port reports before the first connection too). */
  readonly unsafeElapsed: () => number
  /** The session start as wall-clock epoch milliseconds (for HAR dates); undefined before the first connection. */
  readonly startedAtMillis: Effect.Effect<number | undefined>
  /** Forget the session start: the next reading starts a new session. */
  readonly reset: Effect.Effect<void>
}

export class SessionClock extends Context.Tag("mitm/SessionClock")<SessionClock, SessionClockService>() {}
