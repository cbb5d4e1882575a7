/**
 * How long to hold a SOCKS connect or an HTTP request before it goes
 * upstream, to simulate a slow Tor. Each hold is a Schedule on the clock
 * service, so TestClock drives it.
 */
import { Context, type Duration, type Effect, type Schedule } from "effect"

/** One hold: how long it was planned to last (for the event log), and the Schedule that waits it out. */
export interface PlannedDelay {
  readonly duration: Duration.Duration
  readonly schedule: Schedule.Schedule<unknown>
}

/** The delays of one connection, fixed by the settings in force when it opened. */
export interface ConnectionDelays {
  /** The hold before the SOCKS connect goes upstream; undefined when none. */
  readonly socks: PlannedDelay | undefined
  /** Plans the hold of each HTTP request (a range is drawn anew each time); undefined when none is set. */
  readonly httpRequest: Effect.Effect<PlannedDelay> | undefined
}

export interface DelayPolicyService {
  readonly forConnection: (host: string) => Effect.Effect<ConnectionDelays>
}

export class DelayPolicy extends Context.Tag("mitm/DelayPolicy")<DelayPolicy, DelayPolicyService>() {}
