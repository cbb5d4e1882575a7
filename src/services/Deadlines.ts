/**
 * Timeouts on the clock service without a fiber each: a connection's
 * handshake or connect registers a deadline (a set insert) instead of racing
 * a sleeping fiber, which cost more than the rest of a short connection.
 */
import { Context, type Duration } from "effect"

export interface DeadlinesService {
  /**
   * Calls `onExpire` once `after` has passed on the clock service (at most one
   * `resolution` late), unless the returned function cancels it first.
   */
  readonly schedule: (after: Duration.Duration, onExpire: () => void) => () => void
  /** How late a deadline may fire. */
  readonly resolution: Duration.Duration
}

export class Deadlines extends Context.Tag("mitm/Deadlines")<Deadlines, DeadlinesService>() {}
