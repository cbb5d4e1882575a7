/**
 * Timeouts on the clock service without a fiber each: a connection's
 * handshake or connect registers a deadline (a set insert) instead of racing
 * a sleeping fiber, which cost more than the rest of a short connection.
 */
import { Context, type Duration } from "effect"

export interface DeadlinesService {
  /**
   * Calls `onExpire` once `after` has passed on the clock service (late by at most
   * the implementation's sweep interval), unless the returned function cancels it first.
   */
  readonly schedule: (after: Duration.Duration, onExpire: () => void) => () => void
}

export class Deadlines extends Context.Tag("mitm/Deadlines")<Deadlines, DeadlinesService>() {}
