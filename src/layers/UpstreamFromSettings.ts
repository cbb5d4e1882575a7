/**
 * The Upstream that follows the settings: each new connection goes where the
 * settings say at the moment it is opened (Tor/SOCKS5 or direct).
 */
import { Effect, Layer } from "effect"
import { formatUpstream, type UpstreamTarget } from "../domain/Settings.js"
import { Deadlines, type DeadlinesService } from "../services/Deadlines.js"
import { SettingsStore } from "../services/Settings.js"
import { Upstream, type UpstreamRoute } from "../services/Upstream.js"
import * as InternalSocksUpstream from "./InternalSocksUpstream.js"
import * as SocksUpstream from "./SocksUpstream.js"

export const routeFor = (target: UpstreamTarget, deadlines: DeadlinesService): UpstreamRoute =>
  target._tag === "Direct" ? InternalSocksUpstream.make(deadlines) : SocksUpstream.make(target, deadlines)

export const layer: Layer.Layer<Upstream, never, SettingsStore | Deadlines> = Layer.effect(
  Upstream,
  Effect.gen(function*() {
    const settings = yield* SettingsStore
    const deadlines = yield* Deadlines
    let cached: { readonly target: UpstreamTarget; readonly key: string; readonly route: UpstreamRoute } | undefined
    return {
      current: Effect.map(settings.get, ({ upstream }) => {
        if (cached?.target === upstream) return cached.route
        const key = formatUpstream(upstream)
        cached = { target: upstream, key, route: cached?.key === key ? cached.route : routeFor(upstream, deadlines) }
        return cached.route
      })
    }
  })
)
