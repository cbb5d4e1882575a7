/**
 * The meter of one connection: what the relay asks about each chunk. It feeds
 * the decoder, records what it learns with the chunk's arrival time, counts the
 * bytes, and turns the bandwidth limit and the HTTP request delay into holds:
 * places in the chunk where the relay waits before writing on.
 */
import { Duration, Effect } from "effect"
import type { ConnectionProtocol } from "../domain/Connection.js"
import { type DecoderEvent, type DelayKind, type Direction, stamp } from "../domain/Event.js"
import type { ConnectionObserver } from "../services/Decoder.js"
import type { ConnectionDelays, PlannedDelay } from "../services/DelayPolicy.js"
import type { SessionClockService } from "../services/SessionClock.js"
import type { ConnectionRecorder } from "../services/Store.js"
import type { ConnectionThrottle } from "../services/Throttle.js"
import type { Hold, RelayObserver } from "./Relay.js"

/**
 * Holds as the planned delay's Schedule says, recorded as DelayStart/DelayEnd so injected time
 * reads apart from Tor's own; an HTTP delay names the exchange it holds.
 */
export const delayed = (
  recorder: ConnectionRecorder,
  clock: SessionClockService,
  delay: DelayKind,
  exchange: number | null,
  plan: PlannedDelay
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const ms = Duration.toMillis(plan.duration)
    recorder.record(stamp(clock.unsafeNow(), { type: "DelayStart", delay, ms, exchange }))
    return Effect.map(Effect.schedule(Effect.void, plan.schedule), () => {
      recorder.record(stamp(clock.unsafeNow(), { type: "DelayEnd", delay, ms, exchange }))
    })
  })

export interface MeterParts {
  readonly recorder: ConnectionRecorder
  readonly clock: SessionClockService
  readonly decoder: ConnectionObserver
  readonly throttle: ConnectionThrottle
  /** Draws each HTTP request's hold; undefined when no HTTP delay is set. */
  readonly httpDelay: ConnectionDelays["httpRequest"]
}

/** A connection's meter: the relay's one question per chunk, and the end of each direction. */
export const makeMeter = ({ clock, decoder, httpDelay, recorder, throttle }: MeterParts): RelayObserver => {
  let protocol: ConnectionProtocol = "pending"
  const recordAll = (events: ReadonlyArray<DecoderEvent>, time: number) => {
    for (const event of events) recorder.record(stamp(time, event))
    const now = decoder.protocol()
    if (now !== protocol) recorder.setProtocol(protocol = now)
  }
  const holdRequest = (plan: Effect.Effect<PlannedDelay>, exchange: number) =>
    Effect.flatMap(plan, (planned) => delayed(recorder, clock, "http", exchange, planned))

  const decode = (direction: Direction, chunk: Buffer, arrivedAt: number) => {
    const events = decoder.feed(direction, chunk)
    if (events.length > 0 || protocol === "pending") recordAll(events, arrivedAt)
    return events
  }

  return {
    now: clock.unsafeNow,
    chunk: (direction, chunk, arrivedAt, write) => {
      recorder.addBytes(direction, chunk.length)
      const throttled = throttle.take(direction, chunk.length)
      if (throttled === undefined && (httpDelay === undefined || direction === "down")) {
        // Nothing can hold it: the other side gets it first, the decoder after.
        write(chunk)
        decode(direction, chunk, arrivedAt)
        return undefined
      }
      const events = decode(direction, chunk, arrivedAt)
      // The common case, nothing held, allocates nothing.
      if (throttled === undefined && events.length === 0) {
        write(chunk)
        return undefined
      }
      let holds: Array<Hold> | undefined = throttled === undefined ? undefined : [{ at: 0, release: Effect.sleep(throttled) }]
      if (httpDelay !== undefined && direction === "up") {
        for (const event of events) {
          if (event.type !== "HttpRequestStart") continue
          ;(holds ??= []).push({ at: event.offset, release: holdRequest(httpDelay, event.exchange) })
        }
      }
      if (holds === undefined) write(chunk)
      return holds
    },
    ended: (direction) => recordAll(decoder.end(direction), clock.unsafeNow())
  }
}
