/**
 * The live Proxy: a SOCKS4/4a/5 listener. Each accepted connection runs in its
 * own fiber: SOCKS handshake, upstream connect, then the relay with the
 * decoder observing on the side. Everything it learns goes to the Store.
 */
import { Cause, Duration, Effect, FiberSet, Layer, Runtime } from "effect"
import * as net from "node:net"
import type { ConnectionProtocol } from "../domain/Connection.js"
import { describeDecodeError, type SocksParseError, UpstreamError } from "../domain/Errors.js"
import type { DecoderEvent, Direction } from "../domain/Event.js"
import { isLoopback } from "../domain/Flags.js"
import { formatHostPort } from "../domain/Settings.js"
import {
  failureCode,
  feedSocksServer,
  initialSocksServer,
  socksReply,
  SocksReplyCode,
  socksReplyName
} from "../domain/SocksProtocol.js"
import { formatTarget, type SocksAddress, type SocksRequest } from "../domain/SocksRequest.js"
import { Deadlines } from "../services/Deadlines.js"
import { Decoder } from "../services/Decoder.js"
import { type ConnectionDelays, DelayPolicy } from "../services/DelayPolicy.js"
import { Proxy, type ProxyService } from "../services/Proxy.js"
import { type ListenAddress, ReportServer } from "../services/ReportServer.js"
import { SessionClock } from "../services/SessionClock.js"
import { type ConnectionRecorder, Store } from "../services/Store.js"
import { Throttle } from "../services/Throttle.js"
import { Upstream, type UpstreamRoute } from "../services/Upstream.js"
import { type Hold, relay } from "./Relay.js"

const noRequests: ReadonlyArray<number> = []

/** The in-band report's host: answered by MITM itself, never sent upstream, never measured. */
export const reportHost = "mitm.proxy"

/** A client that has not finished its SOCKS request by then is closed (slowloris). */
const handshakeTimeout = Duration.seconds(30)

type Handshake =
  | { readonly _tag: "Request"; readonly request: SocksRequest; readonly rest: Uint8Array }
  | { readonly _tag: "Refused"; readonly error: SocksParseError; readonly reply: Uint8Array | undefined }
  | { readonly _tag: "Abandoned" }

const abandoned: Handshake = { _tag: "Abandoned" }

/** Writes the last bytes and half-closes; waits (bounded) until they are flushed. */
const endWith = (socket: net.Socket, bytes: Uint8Array | undefined): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.destroyed) return resume(Effect.void)
    socket.end(bytes ?? Buffer.alloc(0), () => resume(Effect.void))
  }).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)

/** What Tor isolates streams by, as text: the SOCKS5 username or SOCKS4 user id (never the password). */
const isolationKey = (request: SocksRequest): string | null => {
  const key = request.credentials?.username ?? request.userId
  return key === undefined || key.length === 0 ? null : Buffer.from(key).toString("latin1")
}

const isReportHost = (host: string): boolean => host.toLowerCase().replace(/\.$/, "") === reportHost

export interface SocksProxyConfig {
  readonly listen: ListenAddress
  /** Client connections served at once; more get a SOCKS failure reply, not a hang. */
  readonly maxClients: number
  /** Serve clients from beyond loopback; otherwise they are closed at once. */
  readonly allowRemoteClients: boolean
}

export const make = (config: SocksProxyConfig) =>
  Effect.gen(function*() {
    const store = yield* Store
    const sessionClock = yield* SessionClock
    const upstream = yield* Upstream
    const decoder = yield* Decoder
    const delays = yield* DelayPolicy
    const report = yield* ReportServer
    const throttles = yield* Throttle
    const deadlines = yield* Deadlines
    /** Runs the relay's holds (delays, bandwidth waits); the relay cancels them when it ends. */
    const runHold = Runtime.runCallback(yield* Effect.runtime<never>())
    const clock = yield* Effect.clock

    /**
     * Reads the SOCKS handshake from the paused socket in one callback chain (no fiber per
     * chunk): answers the greeting and ends with the request, a refusal to send, or nothing
     * when the client leaves or has not finished within the handshake timeout.
     */
    const handshake = (socket: net.Socket, firstByte: (at: bigint) => void) =>
      Effect.async<Handshake>((resume) => {
        let state = initialSocksServer
        let first = true
        const cleanup = () => {
          cancelDeadline()
          socket.off("data", onData)
          socket.off("end", onEnd)
          socket.off("close", onEnd)
        }
        const finish = (result: Handshake) => {
          cleanup()
          socket.pause()
          resume(Effect.succeed(result))
        }
        const onData = (chunk: Buffer) => {
          if (first) {
            first = false
            firstByte(clock.unsafeCurrentTimeNanos())
          }
          const [next, steps] = feedSocksServer(state, chunk)
          state = next
          for (const step of steps) {
            switch (step._tag) {
              case "Reply":
                socket.write(step.bytes)
                break
              case "Request":
                return finish({ _tag: "Request", request: step.request, rest: step.rest })
              case "Refuse":
                return finish({ _tag: "Refused", error: step.error, reply: step.reply })
            }
          }
        }
        const onEnd = () => finish(abandoned)
        const cancelDeadline = deadlines.schedule(handshakeTimeout, onEnd)
        if (socket.destroyed || socket.readableEnded) return finish(abandoned)
        socket.on("data", onData)
        socket.once("end", onEnd)
        socket.once("close", onEnd)
        socket.resume()
        return Effect.sync(cleanup)
      })

    /** Holds for `delay`, recorded as DelayStart/DelayEnd so injected time reads apart from Tor's own. */
    const hold = (recorder: ConnectionRecorder, what: string, delay: Duration.Duration) =>
      Effect.gen(function*() {
        recorder.record({ time: sessionClock.unsafeNow(), type: "DelayStart", detail: `${what} held ${Duration.format(delay)}` })
        yield* Effect.sleep(delay)
        recorder.record({ time: sessionClock.unsafeNow(), type: "DelayEnd", detail: `${what} released` })
      })

    /**
     * Records decoder events with the time the chunk arrived (read once per chunk that has
     * events). Holds a chunk that starts an HTTP request when an HTTP delay is set, and
     * a chunk over the bandwidth limit until its bytes are paid for.
     */
    const observe = (recorder: ConnectionRecorder, httpRequestDelay: ConnectionDelays["httpRequest"]) => {
      const observer = decoder.observe()
      const throttle = throttles.forConnection()
      let protocol: ConnectionProtocol = "pending"
      const recordAll = (events: ReadonlyArray<DecoderEvent>, time: number) => {
        for (const event of events) recorder.record({ time, ...event })
        const now = observer.protocol()
        if (now !== protocol) recorder.setProtocol(protocol = now)
      }
      return {
        mayHold: (direction: Direction) => (httpRequestDelay !== undefined && direction === "up") || throttle.active(),
        now: sessionClock.unsafeNow,
        chunk: (direction: Direction, chunk: Buffer, arrivedAt: number): ReadonlyArray<Hold> | undefined => {
          recorder.addBytes(direction, chunk.length)
          const events = observer.feed(direction, chunk)
          if (events.length > 0 || protocol === "pending") recordAll(events, arrivedAt)
          const throttled = throttle.take(direction, chunk.length)
          const requests = httpRequestDelay !== undefined && direction === "up" ? observer.requestOffsets() : noRequests
          // The common case, nothing held, allocates nothing.
          if (throttled === undefined && requests.length === 0) return undefined
          const holds: Array<Hold> = throttled === undefined ? [] : [{ at: 0, release: Effect.sleep(throttled) }]
          if (httpRequestDelay !== undefined) {
            for (const at of requests) {
              holds.push({ at, release: Effect.flatMap(httpRequestDelay, (delay) => hold(recorder, "HTTP request", delay)) })
            }
          }
          return holds
        },
        ended: (direction: Direction) => recordAll(observer.end(direction), sessionClock.unsafeNow())
      }
    }

    const reply = (
      socket: net.Socket,
      recorder: ConnectionRecorder,
      request: SocksRequest,
      code: number,
      bound?: SocksAddress & { readonly port: number },
      note = ""
    ) => {
      socket.write(socksReply(request.version, code, bound))
      recorder.record({
        time: sessionClock.unsafeNow(),
        type: "SocksResponseEnd",
        detail: socksReplyName(request.version, code) + note
      })
    }

    /** Records the close; the connection leaves the open ones. */
    const closeRecorded = (
      recorder: ConnectionRecorder,
      state: "closed" | "failed",
      closedBy: "client" | "server" | null,
      error: string | null
    ) => {
      const time = sessionClock.unsafeNow()
      const { bytesDown, bytesUp } = recorder.current()
      recorder.record({
        time,
        type: "ConnectionClose",
        detail: `${closedBy === null ? "closed by MITM" : `closed by ${closedBy}`}, ${bytesUp} bytes up, ${bytesDown} bytes down`
      })
      recorder.finish({ state, time, closedBy, error })
    }

    /** A failed connection: its client's socket is half-closed (flushed, bounded) before the close is recorded. */
    const closeFailed = (
      socket: net.Socket,
      recorder: ConnectionRecorder,
      error: string,
      closedBy: "client" | "server" | null = null
    ) => Effect.map(endWith(socket, undefined), () => closeRecorded(recorder, "failed", closedBy, error))

    const failed = (socket: net.Socket, recorder: ConnectionRecorder, request: SocksRequest, error: UpstreamError) => {
      reply(socket, recorder, request, error.replyCode)
      return closeFailed(socket, recorder, error.message)
    }

    const resolve = (socket: net.Socket, route: UpstreamRoute, recorder: ConnectionRecorder, request: SocksRequest) =>
      Effect.gen(function*() {
        const answer = yield* Effect.either(route.resolve(request))
        if (answer._tag === "Left") return yield* failed(socket, recorder, request, answer.left)
        const code = failureCode(request.version, SocksReplyCode.succeeded)
        reply(socket, recorder, request, code, { ...answer.right, port: 0 }, `: ${answer.right.host}`)
        closeRecorded(recorder, "closed", null, null)
      })

    let clients = 0
    /**
     * One connection, in one fiber and one generator: a connection held open waits in the
     * relay, and every frame on its stack is memory held per connection.
     */
    const serve = (socket: net.Socket, client: string) => {
      let upstreamSocket: net.Socket | undefined
      return Effect.gen(function*() {
        let firstByteAt = 0n
        const result = yield* handshake(socket, (at) => {
          firstByteAt = at
        })
        if (result._tag === "Abandoned") return
        if (result._tag === "Refused") {
          yield* endWith(socket, result.reply)
          const recorder = yield* store.open({
            client,
            host: "",
            port: 0,
            socksVersion: 5,
            command: "invalid",
            isolation: null,
            upstream: "",
            openedAt: sessionClock.unsafeAt(firstByteAt)
          })
          recorder.record({ time: sessionClock.unsafeNow(), type: "DecodeError", detail: describeDecodeError(result.error) })
          return closeRecorded(recorder, "failed", null, describeDecodeError(result.error))
        }
        const { request, rest } = result
        if (isReportHost(request.host)) {
          socket.write(socksReply(request.version, failureCode(request.version, SocksReplyCode.succeeded)))
          return yield* report.serveInBand(socket, rest)
        }
        const route = yield* upstream.current
        const openedAt = sessionClock.unsafeAt(firstByteAt)
        const recorder = yield* store.open({
          client,
          host: request.host,
          port: request.port,
          socksVersion: request.version,
          command: request.command,
          isolation: isolationKey(request),
          upstream: route.name,
          openedAt
        })
        recorder.record({ time: openedAt, type: "SocksRequestStart", detail: formatTarget(request, request.port) })
        if (clients > config.maxClients) {
          return yield* failed(socket, recorder, request, new UpstreamError({
            reason: "Refused",
            replyCode: failureCode(request.version, SocksReplyCode.generalFailure),
            detail: `too many clients: ${config.maxClients} connections are served at once (--max-clients)`
          }))
        }
        switch (request.command) {
          case "connect": {
            const connectionDelays = yield* delays.forConnection(request.host)
            if (Duration.greaterThan(connectionDelays.socks, Duration.zero)) {
              yield* hold(recorder, "SOCKS connect", connectionDelays.socks)
            }
            const opened = yield* Effect.either(route.connect(request))
            if (opened._tag === "Left") return yield* failed(socket, recorder, request, opened.left)
            const stream = opened.right
            upstreamSocket = stream.socket
            stream.socket.on("error", () => {}) // the relay reports errors; none may go unheard before it starts
            reply(socket, recorder, request, stream.replyCode, stream.bound)
            const outcome = yield* relay(socket, stream.socket, rest, observe(recorder, connectionDelays.httpRequest), runHold)
            return outcome.error === null
              ? closeRecorded(recorder, "closed", outcome.closedBy, null)
              : yield* closeFailed(socket, recorder, outcome.error, outcome.closedBy)
          }
          case "resolve":
          case "resolvePtr":
            return yield* resolve(socket, route, recorder, request)
          case "bind":
          case "udpAssociate":
            return yield* failed(socket, recorder, request, new UpstreamError({
              reason: "Refused",
              replyCode: failureCode(request.version, SocksReplyCode.commandNotSupported),
              detail: `${request.command === "bind" ? "BIND" : "UDP ASSOCIATE"} is not supported`
            }))
        }
      }).pipe(
        Effect.ensuring(Effect.sync(() => {
          clients--
          socket.destroy()
          upstreamSocket?.destroy()
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
