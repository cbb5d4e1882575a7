/**
 * The live Proxy: a SOCKS4/4a/5 listener that accepts clients, turns strangers
 * away, keeps the number served at once within `maxClients`, and runs each
 * client's session (ClientSession) in its own fiber.
 */
import { Cause, Effect, FiberSet, Layer, Runtime } from "effect"
import * as net from "node:net"
import { formatHostPort, isLoopback } from "../domain/Address.js"
import { SocksRefusal } from "../domain/Errors.js"
import { failureCode, SocksReplyCode } from "../domain/SocksProtocol.js"
import { Deadlines } from "../services/Deadlines.js"
import { Decoder } from "../services/Decoder.js"
import { DelayPolicy } from "../services/DelayPolicy.js"
import { Proxy, type ProxyService } from "../services/Proxy.js"
import { type ListenAddress, ReportServer } from "../services/ReportServer.js"
import { SessionClock } from "../services/SessionClock.js"
import { Store } from "../services/Store.js"
import { Throttle } from "../services/Throttle.js"
import { TorControl } from "../services/TorControl.js"
import { Upstream } from "../services/Upstream.js"
import { makeClientSession } from "./ClientSession.js"

export { reportHost } from "./ClientSession.js"

export interface SocksProxyConfig {
  readonly listen: ListenAddress
  /** Client connections served at once; more get a SOCKS failure reply, not a hang. */
  readonly maxClients: number
  /** Serve clients from beyond loopback; otherwise they are closed at once. */
  readonly allowRemoteClients: boolean
}

export const make = (config: SocksProxyConfig) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const tor = yield* TorControl
    const store = yield* Store
    const session = makeClientSession({
      store,
      clock: yield* SessionClock,
      upstream: yield* Upstream,
      decoder: yield* Decoder,
      delays: yield* DelayPolicy,
      report: yield* ReportServer,
      throttles: yield* Throttle,
      deadlines: yield* Deadlines,
      tor,
      // The relay's holds (delays, bandwidth waits) run on the proxy's runtime; the relay cancels them when it ends.
      runHold: Runtime.runCallback(yield* Effect.runtime<never>()),
      nanos: () => clock.unsafeCurrentTimeNanos()
    })

    yield* Effect.acquireRelease(Effect.sync(() => tor.onNotice(session.recordTorNotice)), (unsubscribe) => Effect.sync(unsubscribe))
    // Tor's facts about a connection go with it when the store evicts it.
    yield* Effect.acquireRelease(Effect.sync(() => store.onEvicted(tor.forgetConnection)), (unsubscribe) => Effect.sync(unsubscribe))

    let clients = 0
    /** Whether the proxy refuses a client whose request is known: more are served than allowed. */
    const refuse = (version: 4 | 5) =>
      clients > config.maxClients
        ? new SocksRefusal({
          reason: "TooManyClients",
          replyCode: failureCode(version, SocksReplyCode.generalFailure),
          detail: `too many clients: ${config.maxClients} connections are served at once (--max-clients)`
        })
        : undefined

    const serve = (socket: net.Socket, client: string) => {
      const own: { upstream?: net.Socket } = {}
      return session.serve(socket, client, refuse, own).pipe(
        Effect.ensuring(Effect.sync(() => {
          clients--
          socket.destroy()
          own.upstream?.destroy()
        })),
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("connection failed", cause)
        )
      )
    }

    const run = yield* FiberSet.makeRuntime<never>()
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => {
      const remote = socket.remoteAddress ?? ""
      // An open SOCKS proxy is an abuse magnet: strangers are turned away unless asked for.
      if (!config.allowRemoteClients && !isLoopback(remote)) return void socket.destroy()
      socket.on("error", () => {}) // errors surface where the socket is read; an unheard 'error' would crash Node
      clients++
      run(serve(socket, formatHostPort(remote, socket.remotePort ?? 0)))
    })
    const address = yield* Effect.async<ListenAddress, Error>((resume) => {
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen(config.listen.port, config.listen.host, () => {
        const bound = server.address() as net.AddressInfo
        resume(Effect.succeed({ host: bound.address, port: bound.port }))
      })
    })
    server.on("error", (error) => run(Effect.logError("SOCKS listener", error)))
    // Stop accepting first; the FiberSet's finalizer then interrupts the open connections.
    yield* Effect.addFinalizer(() => Effect.sync(() => server.close()))
    return { address, clients: Effect.sync(() => clients) } satisfies ProxyService
  })

export const layer = (config: SocksProxyConfig) => Layer.scoped(Proxy, make(config))
