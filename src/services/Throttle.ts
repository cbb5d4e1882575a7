/**
 * Bandwidth limits: token buckets per connection and shared by all, on the
 * clock service. A throttled chunk is held, and the relay's backpressure
 * stops the sender meanwhile; nothing is buffered for it.
 */
import { Context, type Duration } from "effect"
import type { Direction } from "../domain/Event.js"

export interface ConnectionThrottle {
  /**
   * Takes `bytes` from the buckets of `direction` and says how long the chunk must
   * wait before it goes on; undefined when it may go now (no limit, or tokens left).
   */
  readonly take: (direction: Direction, bytes: number) => Duration.Duration | undefined
}

export interface ThrottleService {
  readonly forConnection: () => ConnectionThrottle
}

export class Throttle extends Context.Tag("mitm/Throttle")<Throttle, ThrottleService>() {}
