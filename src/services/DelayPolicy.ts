/**
 * How long to hold a SOCKS connect or an HTTP request before it goes
 * upstream, to simulate a slow Tor.
 */
import { Context, type Duration, type Effect } from "effect"

export interface DelayPolicyService {
  /** The delay for a SOCKS connect to `host` opened now (zero when none is set). */
  readonly socksDelay: (host: string) => Effect.Effect<Duration.Duration>
  /** The delay for an HTTP request to `host` (zero when none is set). */
  readonly httpDelay: (host: string) => Effect.Effect<Duration.Duration>
}

export class DelayPolicy extends Context.Tag("mitm/DelayPolicy")<DelayPolicy, DelayPolicyService>() {}
