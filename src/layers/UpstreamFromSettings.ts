/**
 * The Upstream that follows the settings: each new connection goes where the
 * settings say at the moment it is opened (Tor/SOCKS5 or direct).
 */
import { Effect, Layer } from "effect"
import { formatUpstream, type UpstreamTarget } from "../domain/Settings.js"
import { SettingsStore } from "../services/Settings.js"
import { Upstream, type UpstreamRoute } from "../services/Upstream.js"
import * as InternalSocksUpstream from "./InternalSocksUpstream.js"
import * as SocksUpstream from "./SocksUpstream.js"

export const routeFor = (target: UpstreamTarget): UpstreamRoute =>
  target._tag === "Direct" ? InternalSocksUpstream.make() : SocksUpstream.make(target)

export const layer: Layer.Layer<Upstream, never, SettingsStore> = Layer.effect(
  Upstream,
  Effect.map(SettingsStore, (settings) => {
    let cached: { readonly key: string; readonly route: UpstreamRoute } | undefined
    return {
      current: Effect.map(settings.get, ({ upstream }) => {
        const key = formatUpstream(upstream)
        if (cached?.key !== key) cached = { key, route: routeFor(upstream) }
        return cached.route
      })
    }
  })
)
