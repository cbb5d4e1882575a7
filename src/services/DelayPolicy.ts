/**
 * How long to hold a SOCKS connect or an HTTP request before it goes
 * upstream, to simulate a slow Tor.
 */
import { Context, type Duration, type Effect } from "effect"

/** The delays of one connection, fixed by the settings in force when it opened. */
export interface ConnectionDelays {
  /** The hold before the SOCKS connect goes upstream (zero: none). */
  readonly socks: Duration.Duration
  /** Draws the hold for each HTTP request; undefined when no HTTP delay is set. */
  readonly httpRequest: Effect.Effect<Duration.Duration> | undefined
}

export interface DelayPolicyService {
  readonly forConnection: (host: string) => Effect.Effect<ConnectionDelays>
}

export class DelayPolicy extends Context.Tag("mitm/DelayPolicy")<DelayPolicy, DelayPolicyService>() {}
