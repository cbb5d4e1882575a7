/**
 * The Upstream that follows the settings: each new connection goes where the
 * settings say at the moment it is opened. Each kind of upstream is its own
 * Layer of the Upstream service (SocksUpstream: Tor or another SOCKS5 server;
 * InternalSocksUpstream: direct), built here when the settings first name it.
 */
import { Context, Effect, Layer, Scope } from "effect"
import { formatUpstream, type UpstreamTarget } from "../domain/Settings.js"
import { Deadlines } from "../services/Deadlines.js"
import { SettingsStore } from "../services/Settings.js"
import { Upstream, type UpstreamRoute } from "../services/Upstream.js"
import * as InternalSocksUpstream from "./InternalSocksUpstream.js"
import * as SocksUpstream from "./SocksUpstream.js"

/** The layer of one upstream target: the Tor/SOCKS5 layer or the direct one. */
export const layerFor = (target: UpstreamTarget): Layer.Layer<Upstream, never, Deadlines> =>
  target._tag === "Direct" ? InternalSocksUpstream.layer : SocksUpstream.layer(target)

export const layer: Layer.Layer<Upstream, never, SettingsStore | Deadlines> = Layer.scoped(
  Upstream,
  Effect.gen(function*() {
    const settings = yield* SettingsStore
    const deadlines = yield* Deadlines
    const scope = yield* Effect.scope
    /** Builds a target's layer in this layer's scope and takes the route it offers. */
    const routeOf = (target: UpstreamTarget): Effect.Effect<UpstreamRoute> =>
      Layer.build(layerFor(target)).pipe(
        Scope.extend(scope),
        Effect.provideService(Deadlines, deadlines),
        Effect.flatMap((context) => Context.get(context, Upstream).current)
      )
    let cached: { readonly target: UpstreamTarget; readonly key: string; readonly route: UpstreamRoute } | undefined
    return {
      current: Effect.flatMap(settings.get, (current) => {
        const target = current.upstream
        if (cached?.target === target) return Effect.succeed(cached.route)
        const key = formatUpstream(target)
        if (cached?.key === key) {
          cached = { ...cached, target }
          return Effect.succeed(cached.route)
        }
        return Effect.map(routeOf(target), (route) => {
          cached = { target, key, route }
          return route
        })
      })
    }
  })
)
