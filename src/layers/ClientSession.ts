/**
 * One client's session, recorded: the SOCKS handshake, the way upstream (with
 * the SOCKS delay), the relay with its meter, and the close. Every step's
 * outcome becomes typed events in the connection's recorder.
 */
import { Duration, Effect } from "effect"
import type * as net from "node:net"
import { decodeFailureOf, type SocksParseError, SocksRefusal, type UpstreamError } from "../domain/Errors.js"
import { stamp } from "../domain/Event.js"
import {
  failureCode,
  feedSocksServer,
  initialSocksServer,
  socksReply,
  SocksReplyCode,
  socksReplyName
} from "../domain/SocksProtocol.js"
import { commandName, type SocksAddress, type SocksRequest } from "../domain/SocksRequest.js"
import type { DeadlinesService } from "../services/Deadlines.js"
import type { DecoderService } from "../services/Decoder.js"
import type { DelayPolicyService } from "../services/DelayPolicy.js"
import type { ReportServerService } from "../services/ReportServer.js"
import type { SessionClockService } from "../services/SessionClock.js"
import type { ConnectionRecorder, StoreService } from "../services/Store.js"
import type { ThrottleService } from "../services/Throttle.js"
import type { TorControlService } from "../services/TorControl.js"
import { sourceAddress, type TorNotice } from "../domain/TorCircuits.js"
import type { UpstreamRoute, UpstreamService, UpstreamWatch } from "../services/Upstream.js"
import { delayed, makeMeter } from "./Meter.js"
import { relay, type RunHold } from "./Relay.js"

/** The in-band report's host: answered by MITM itself, never sent upstream, never measured. */
export const reportHost = "mitm.proxy"

/** Closed connections whose late Tor notices are still recorded. */
const recentlyClosed = 1024

/** A client that has not finished its SOCKS request by then is closed (slowloris). */
const handshakeTimeout = Duration.seconds(30)

type Handshake =
  | { readonly _tag: "Request"; readonly request: SocksRequest; readonly rest: Uint8Array }
  | { readonly _tag: "Refused"; readonly error: SocksParseError; readonly reply: Uint8Array | undefined; readonly version: 4 | 5 }
  | { readonly _tag: "Abandoned" }

const abandoned: Handshake = { _tag: "Abandoned" }

/** What Tor isolates streams by, as text: the SOCKS5 username or SOCKS4 user id (never the password). */
const isolationKey = (request: SocksRequest): string | null => {
  const key = request.credentials?.username ?? request.userId
  return key === undefined || key.length === 0 ? null : Buffer.from(key).toString("latin1")
}

const isReportHost = (host: string): boolean => host.toLowerCase().replace(/\.$/, "") === reportHost

/** Writes the last bytes and half-closes; waits (bounded) until they are flushed. */
const endWith = (socket: net.Socket, bytes: Uint8Array | undefined): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.destroyed) return resume(Effect.void)
    socket.end(bytes ?? Buffer.alloc(0), () => resume(Effect.void))
  }).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)

/** What a session needs: the services it works with, and a runner for the relay's holds. */
export interface SessionParts {
  readonly store: StoreService
  readonly clock: SessionClockService
  readonly upstream: UpstreamService
  readonly decoder: DecoderService
  readonly delays: DelayPolicyService
  readonly report: ReportServerService
  readonly throttles: ThrottleService
  readonly deadlines: DeadlinesService
  /** Tor's control port: which stream and circuit carried each upstream connection. */
  readonly tor: TorControlService
  readonly runHold: RunHold
  /** Reads Effect's clock in nanoseconds from a socket callback. */
  readonly nanos: () => bigint
}

/** A request MITM will not serve: answered by the caller with its reply code. */
export type Refusal = UpstreamError | SocksRefusal

/** BIND and UDP ASSOCIATE are answered "command not supported" (SPEC §2). */
const commandNotSupported = (request: SocksRequest) =>
  new SocksRefusal({
    reason: "CommandNotSupported",
    replyCode: failureCode(request.version, SocksReplyCode.commandNotSupported),
    detail: `${request.command === "bind" ? "BIND" : "UDP ASSOCIATE"} is not supported`
  })

export const makeClientSession = (parts: SessionParts) => {
  const { clock, deadlines, store, tor } = parts
  /**
   * Connections open or recently closed, by id: where Tor's notices about them are recorded.
   * Tor's events may come after a short connection closed; the last `recentlyClosed` stay.
   */
  const known = new Map<number, ConnectionRecorder>()
  /** The ids of the last `recentlyClosed` closed connections, as a ring. */
  const closedIds = new Array<number | undefined>(recentlyClosed)
  let nextClosed = 0
  const forget = (id: number) => {
    const oldest = closedIds[nextClosed]
    if (oldest !== undefined) known.delete(oldest)
    closedIds[nextClosed] = id
    nextClosed = (nextClosed + 1) % recentlyClosed
  }

  /** Records what Tor's control port reported about a connection's stream. */
  const recordTorNotice = (notice: TorNotice) => {
    const recorder = known.get(notice.connectionId)
    if (recorder === undefined) return
    recorder.record(stamp(notice.time, notice._tag === "TorStreamAttached"
      ? { type: "TorStreamAttached", stream: notice.stream, circuit: notice.circuit, path: notice.path }
      : { type: "TorStreamFailed", stream: notice.stream, reason: notice.reason, remoteReason: notice.remoteReason }))
  }

  /** Tells the control port which local address this connection's upstream socket has. */
  const watchFor = (recorder: ConnectionRecorder): UpstreamWatch => ({
    connected: (host, port) => tor.upstreamOpened(recorder.id, sourceAddress(host, port))
  })

  /**
   * Reads the SOCKS handshake from the paused socket in one callback chain (no fiber per
   * chunk): answers the greeting and ends with the request, a refusal to send, or nothing
   * when the client leaves or has not finished within the handshake timeout.
   */
  const handshake = (socket: net.Socket, firstByte: (at: bigint) => void) =>
    Effect.async<Handshake>((resume) => {
      let state = initialSocksServer
      let version: 4 | 5 | undefined
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
        if (version === undefined) {
          firstByte(parts.nanos())
          version = chunk[0] === 0x04 ? 4 : 5
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
              return finish({ _tag: "Refused", error: step.error, reply: step.reply, version })
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

  /** Writes the SOCKS reply and records it. */
  const reply = (
    socket: net.Socket,
    recorder: ConnectionRecorder,
    request: SocksRequest,
    code: number,
    bound?: SocksAddress & { readonly port: number },
    address: string | null = null
  ) => {
    socket.write(socksReply(request.version, code, bound))
    recorder.record(stamp(clock.unsafeNow(), {
      type: "SocksResponseEnd",
      reply: code,
      replyName: socksReplyName(request.version, code),
      address
    }))
  }

  /** Records the close; the connection leaves the open ones. */
  const closeRecorded = (
    recorder: ConnectionRecorder,
    state: "closed" | "failed",
    closedBy: "client" | "server" | null,
    error: string | null
  ) => {
    const time = clock.unsafeNow()
    const { bytesDown, bytesUp } = recorder.current()
    recorder.record(stamp(time, { type: "ConnectionClose", closedBy, bytesUp, bytesDown }))
    recorder.finish({ state, time, closedBy, error })
    forget(recorder.id)
    tor.upstreamClosed(recorder.id)
  }

  /** A failed connection: its client's socket is half-closed (flushed, bounded) before the close is recorded. */
  const closeFailed = (
    socket: net.Socket,
    recorder: ConnectionRecorder,
    error: string,
    closedBy: "client" | "server" | null = null
  ) => Effect.map(endWith(socket, undefined), () => closeRecorded(recorder, "failed", closedBy, error))

  const refused = (socket: net.Socket, recorder: ConnectionRecorder, request: SocksRequest, refusal: Refusal) => {
    reply(socket, recorder, request, refusal.replyCode)
    return closeFailed(socket, recorder, refusal.message)
  }

  /** A handshake MITM could not understand: the client got its reply (if any) and is closed. */
  const recordRefusedHandshake = (client: string, openedAt: number, result: Extract<Handshake, { _tag: "Refused" }>) =>
    Effect.gen(function*() {
      const recorder = yield* store.open({
        client,
        host: "",
        port: 0,
        socksVersion: result.version,
        command: "invalid",
        isolation: null,
        upstream: "",
        openedAt
      })
      recorder.record(stamp(openedAt, { type: "SocksRequestStart", host: "", port: 0, command: "invalid", version: result.version }))
      const failure = decodeFailureOf(result.error)
      recorder.record(stamp(clock.unsafeNow(), { type: "DecodeError", error: failure }))
      closeRecorded(recorder, "failed", null, `${failure._tag}: ${failure.message}`)
    })

  const resolve = (socket: net.Socket, route: UpstreamRoute, recorder: ConnectionRecorder, request: SocksRequest) =>
    Effect.gen(function*() {
      const answer = yield* Effect.either(route.resolve(request, watchFor(recorder)))
      if (answer._tag === "Left") return yield* refused(socket, recorder, request, answer.left)
      const code = failureCode(request.version, SocksReplyCode.succeeded)
      reply(socket, recorder, request, code, { ...answer.right, port: 0 }, answer.right.host)
      closeRecorded(recorder, "closed", null, null)
    })

  const connect = (socket: net.Socket, route: UpstreamRoute, recorder: ConnectionRecorder, request: SocksRequest, rest: Uint8Array, own: { upstream?: net.Socket }) =>
    Effect.gen(function*() {
      const connectionDelays = yield* parts.delays.forConnection(request.host)
      if (connectionDelays.socks !== undefined) yield* delayed(recorder, clock, "socks", null, connectionDelays.socks)
      const opened = yield* Effect.either(route.connect(request, watchFor(recorder)))
      if (opened._tag === "Left") return yield* refused(socket, recorder, request, opened.left)
      const stream = opened.right
      own.upstream = stream.socket
      stream.socket.on("error", () => {}) // the relay reports errors; none may go unheard before it starts
      reply(socket, recorder, request, stream.replyCode, stream.bound)
      const meter = makeMeter({
        recorder,
        clock,
        decoder: parts.decoder.observe(),
        throttle: parts.throttles.forConnection(),
        httpDelay: connectionDelays.httpRequest
      })
      const outcome = yield* relay(socket, stream.socket, rest, meter, parts.runHold)
      return outcome.error === null
        ? closeRecorded(recorder, "closed", outcome.closedBy, null)
        : yield* closeFailed(socket, recorder, outcome.error, outcome.closedBy)
    })

  /**
   * Serves one client, in one fiber and one generator: a connection held open waits in the
   * relay, and every frame on its stack is memory held per connection. `refuse` says why the
   * proxy will not serve it (too many clients), asked once its request is known. The upstream
   * socket is put in `own`, for the caller to destroy however the session ends.
   */
  const serve = (
    socket: net.Socket,
    client: string,
    refuse: (version: 4 | 5) => SocksRefusal | undefined,
    own: { upstream?: net.Socket }
  ) =>
    Effect.gen(function*() {
      let firstByteAt = 0n
      const result = yield* handshake(socket, (at) => {
        firstByteAt = at
      })
      if (result._tag === "Abandoned") return
      if (result._tag === "Refused") {
        yield* endWith(socket, result.reply)
        return yield* recordRefusedHandshake(client, clock.unsafeAt(firstByteAt), result)
      }
      const { request, rest } = result
      if (isReportHost(request.host)) {
        socket.write(socksReply(request.version, failureCode(request.version, SocksReplyCode.succeeded)))
        return yield* parts.report.serveInBand(socket, rest)
      }
      const route = yield* parts.upstream.current
      const openedAt = clock.unsafeAt(firstByteAt)
      const command = commandName(request.command)
      const recorder = yield* store.open({
        client,
        host: request.host,
        port: request.port,
        socksVersion: request.version,
        command,
        isolation: isolationKey(request),
        upstream: route.name,
        openedAt
      })
      recorder.record(stamp(openedAt, { type: "SocksRequestStart", host: request.host, port: request.port, command, version: request.version }))
      known.set(recorder.id, recorder)
      const refusal = refuse(request.version)
      if (refusal !== undefined) return yield* refused(socket, recorder, request, refusal)
      switch (request.command) {
        case "connect":
          return yield* connect(socket, route, recorder, request, rest, own)
        case "resolve":
        case "resolvePtr":
          return yield* resolve(socket, route, recorder, request)
        case "bind":
        case "udpAssociate":
          return yield* refused(socket, recorder, request, commandNotSupported(request))
      }
    })

  return { serve, recordTorNotice }
}
