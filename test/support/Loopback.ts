/**
 * Test peers on loopback: origin servers, a SOCKS client, a running MITM.
 * Every server a test starts is closed by the test's scope.
 */
import { Context, Effect, Layer, Schedule, type Scope } from "effect"
import * as http from "node:http"
import * as net from "node:net"
import type { Settings } from "../../src/domain/Settings.js"
import { defaultSettings } from "../../src/domain/Settings.js"
import * as App from "../../src/layers/App.js"
import { Proxy } from "../../src/services/Proxy.js"
import { Reporter } from "../../src/services/Reporter.js"
import { ReportServer } from "../../src/services/ReportServer.js"
import type { Deadlines } from "../../src/services/Deadlines.js"
import type { SettingsStore } from "../../src/services/Settings.js"
import type { Upstream } from "../../src/services/Upstream.js"
import * as UpstreamFromSettings from "../../src/layers/UpstreamFromSettings.js"
import type { Connection } from "../../src/domain/Connection.js"

export interface Address {
  readonly host: string
  readonly port: number
}

const listen = (server: net.Server, host = "127.0.0.1"): Effect.Effect<Address, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Address>((resume) => {
      server.listen(0, host, () => {
        const address = server.address() as net.AddressInfo
        resume(Effect.succeed({ host: address.address, port: address.port }))
      })
    }),
    () =>
      Effect.async<void>((resume) => {
        if ("closeAllConnections" in server) (server as http.Server).closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** A TCP server on 127.0.0.1:0 whose sockets are all destroyed when the scope closes. */
export const tcpServer = (onSocket: (socket: net.Socket) => void, options: net.ServerOpts = {}) =>
  Effect.gen(function*() {
    const sockets = new Set<net.Socket>()
    const server = net.createServer(options, (socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => {})
      onSocket(socket)
    })
    const address = yield* listen(server)
    // Registered after listen, so it runs first: close waits for open sockets to go.
    yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((socket) => socket.destroy())))
    return address
  })

/** An HTTP origin on 127.0.0.1:0 (or another loopback address). */
export const httpOrigin = (handler: http.RequestListener, host = "127.0.0.1") =>
  Effect.gen(function*() {
    const server = http.createServer(handler)
    return yield* listen(server, host)
  })

/** A port that nothing listens on (bound, then closed). */
export const closedPort = Effect.gen(function*() {
  const server = net.createServer()
  const address = yield* Effect.scoped(listen(server))
  return address.port
})

export class Mitm extends Context.Tag("test/Mitm")<Mitm, {
  readonly proxy: Address
  readonly report: Address
  readonly connections: Effect.Effect<ReadonlyArray<Connection>>
  readonly clients: Effect.Effect<number>
}>() {}

/**
 * A running MITM on ephemeral ports; the upstream follows the settings unless another layer is given.
 * `torControl`: Tor's control port to read circuits from (default off); `telemetry`: how the
 * telemetry export batches and bounds (the collector itself is a setting).
 */
export const startMitm = (
  settings: Partial<Settings> = {},
  upstream: Layer.Layer<Upstream, never, SettingsStore | Deadlines> = UpstreamFromSettings.layer,
  maxClients?: number,
  torControl?: App.AppConfig["torControl"],
  telemetry?: App.AppConfig["telemetry"]
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(App.layerWith({
      listen: { host: "127.0.0.1", port: 0 },
      report: { host: "127.0.0.1", port: 0 },
      settings: { ...defaultSettings, ...settings },
      maxClients,
      torControl,
      telemetry
    }, upstream))
    const reporter = Context.get(context, Reporter)
    const proxy = Context.get(context, Proxy)
    return {
      proxy: proxy.address,
      clients: proxy.clients,
      report: Context.get(context, ReportServer).address!,
      connections: reporter.connections,
      /** Wall-clock epoch milliseconds of session time 0. */
      sessionStartMillis: reporter.sessionStartMillis
    }
  })

/** Waits (real time, bounded) until the store holds what the test expects. */
export const eventually = <A>(effect: Effect.Effect<A | undefined>): Effect.Effect<A, Error> =>
  effect.pipe(
    Effect.flatMap((value) => (value === undefined ? Effect.fail(new Error("not yet")) : Effect.succeed(value))),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("10 seconds")))
  )
