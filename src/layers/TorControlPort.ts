/**
 * The live TorControl: one connection to Tor's control port at a time,
 * replies read as a Stream of parsed messages, commands matched to replies in
 * the order they were sent, events fed to the circuit tracker. Authenticates
 * as PROTOCOLINFO offers (NULL; the configured password for HASHEDPASSWORD;
 * SAFECOOKIE, checking Tor's proof; COOKIE), then `GETINFO version`,
 * `SETEVENTS STREAM CIRC CIRC_BW CIRC_MINOR`, `GETINFO circuit-status`.
 * A port that is missing or goes away is retried on the clock service
 * (exponential from 1 s, at most 30 s apart); callers never wait for it.
 * The password and the cookie are held Redacted and never put in a message.
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import type * as Socket from "@effect/platform/Socket"
import {
  Cause,
  type Chunk,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Mailbox,
  Option,
  Redacted,
  Ref,
  Schedule,
  type Scope,
  Stream
} from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import { makeTorCircuits, type TorCircuitsOptions, type TorNotice } from "../domain/TorCircuits.js"
import {
  type AsyncReply,
  type AuthSecret,
  ControlCommand,
  type ControlMessage,
  decodeAuthChallenge,
  decodeCircuitStatus,
  decodeEvent,
  decodeGetInfo,
  decodeProtocolInfo,
  encodeCommand,
  makeControlReplyParser,
  type ProtocolInfo,
  safeCookieClientHash,
  type SyncReply,
  type TorControlParseError,
  type TorEvent,
  verifySafeCookieServerHash
} from "../domain/TorControlProtocol.js"
import { TorControl, TorControlError, type TorControlService, type TorStatus } from "../services/TorControl.js"

export interface TorControlConfig {
  /** Tor's control port, or "off" (then nothing connects and the status says off). */
  readonly address: { readonly host: string; readonly port: number } | "off"
  /** For HASHEDPASSWORD; used only when Tor offers that method. */
  readonly password: string | undefined
  /**
   * Session seconds now, for circuit times and notices. Must not start a session
   * by itself (Tor's events come before the first connection too).
   */
  readonly now: () => number
  /** Waits between failed attempts; default exponential from 1 s, capped at 30 s. */
  readonly retry?: Schedule.Schedule<unknown, TorControlError> | undefined
  /** How long a handshake command may wait for its reply; default 10 s. */
  readonly replyTimeout?: Duration.DurationInput | undefined
  readonly tracker?: TorCircuitsOptions | undefined
}

/** Exponential from 1 s (1, 2, 4 … s), never more than 30 s apart. */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("1 second").pipe(
  Schedule.union(Schedule.spaced("30 seconds"))
)

/** Pause after an established connection ended, before connecting again. */
const pauseAfterLoss = Duration.seconds(1)

const events = ["STREAM", "CIRC", "CIRC_BW", "CIRC_MINOR"] as const

/** `127.0.0.1:9051`, `[::1]:9051`. */
export const formatAddress = (address: { readonly host: string; readonly port: number }): string =>
  address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

const offStatus: TorStatus = { control: "off", address: null, version: null, error: null }

/** The TorControl for `--tor-control off`, and for tests that need none. */
export const off: TorControlService = {
  status: Effect.succeed(offStatus),
  circuits: Effect.succeed([]),
  upstreamOpened: () => {},
  upstreamClosed: () => {},
  forgetConnection: () => {},
  torOf: () => null,
  onNotice: () => () => {},
  reset: Effect.void
}

export const layerOff: Layer.Layer<TorControl> = Layer.succeed(TorControl, off)

// ---------------------------------------------------------------------------
// One connection: commands in order, replies as a Stream

interface ControlConnection {
  /**
   * Sends a command and waits for its reply (whatever the status code). `onReply` runs when the
   * reader meets the reply, before any event that Tor sent after it.
   */
  readonly command: (command: ControlCommand, onReply?: () => void) => Effect.Effect<SyncReply, TorControlError>
  /** Succeeds when Tor closes the connection; fails when it breaks or stops speaking the protocol. */
  readonly closed: Effect.Effect<void, TorControlError>
}

const commandName = (command: ControlCommand): string => {
  switch (command._tag) {
    case "ProtocolInfo":
      return "PROTOCOLINFO"
    case "AuthChallenge":
      return "AUTHCHALLENGE"
    case "Authenticate":
      return "AUTHENTICATE"
    case "GetInfo":
      return `GETINFO ${command.keys.join(" ")}`
    case "SetEvents":
      return "SETEVENTS"
  }
}

const describeSocketError = (error: Socket.SocketError): string => {
  if (error.reason === "Close") return "Tor closed the control connection"
  const cause = "cause" in error && error.cause instanceof Error ? error.cause.message : String(error.reason)
  return error.reason === "Open" || error.reason === "OpenTimeout" ? cause : `${error.reason}: ${cause}`
}

const protocolError = (error: TorControlParseError) =>
  // The offending line is left out: whatever answers might echo what MITM sent.
  new TorControlError({ reason: "Protocol", detail: `not Tor's control protocol (${error.reason})` })

const openConnection = (
  address: { readonly host: string; readonly port: number },
  onEvent: (reply: AsyncReply) => void,
  replyTimeout: Duration.Duration
): Effect.Effect<ControlConnection, TorControlError, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* NodeSocket.makeNet({ host: address.host, port: address.port, openTimeout: replyTimeout }).pipe(
      Effect.mapError((error) => new TorControlError({ reason: "Unreachable", detail: describeSocketError(error) }))
    )
    const parser = makeControlReplyParser()
    const inbound = yield* Mailbox.make<ControlMessage, Socket.SocketError>()
    const opened = yield* Deferred.make<void>()
    yield* socket.run(
      (chunk) => {
        const messages = parser.feed(chunk)
        if (messages.length > 0) inbound.unsafeOfferAll(messages)
      },
      { onOpen: Deferred.succeed(opened, undefined) }
    ).pipe(Mailbox.into(inbound), Effect.forkScoped)
    yield* Effect.raceFirst(
      Deferred.await(opened),
      Effect.flatMap(inbound.await, () =>
        Effect.fail(new TorControlError({ reason: "Closed", detail: "Tor closed the control connection" })))
    ).pipe(
      Effect.catchIf(
        (error): error is Socket.SocketError => !(error instanceof TorControlError),
        (error) => Effect.fail(new TorControlError({ reason: "Unreachable", detail: describeSocketError(error) }))
      )
    )
    const write = yield* socket.writer

    const pending: Array<{ readonly reply: Deferred.Deferred<SyncReply, TorControlError>; readonly onReply?: () => void }> = []
    const route = (messages: Chunk.Chunk<ControlMessage>): Effect.Effect<void, TorControlError> => {
      for (const message of messages) {
        switch (message._tag) {
          case "AsyncReply":
            onEvent(message)
            break
          case "SyncReply": {
            const waiting = pending.shift()
            if (waiting === undefined) {
              return Effect.fail(new TorControlError({ reason: "Protocol", detail: "a reply to no command" }))
            }
            waiting.onReply?.()
            Deferred.unsafeDone(waiting.reply, Effect.succeed(message))
            break
          }
          case "TorControlParseError":
            return Effect.fail(protocolError(message))
        }
      }
      return Effect.void
    }
    const reader = yield* Stream.runForEachChunk(Mailbox.toStream(inbound), route).pipe(
      Effect.catchIf(
        (error): error is Socket.SocketError => !(error instanceof TorControlError),
        (error) => Effect.fail(new TorControlError({ reason: "Closed", detail: describeSocketError(error) }))
      ),
      // Commands still waiting get the reason the connection ended.
      Effect.onExit((exit) =>
        Effect.sync(() => {
          const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          const error = Option.getOrElse(
            failure,
            () => new TorControlError({ reason: "Closed", detail: "Tor closed the control connection" })
          )
          for (const waiting of pending.splice(0)) Deferred.unsafeDone(waiting.reply, Effect.fail(error))
        })
      ),
      Effect.forkScoped
    )

    const command = (command: ControlCommand, onReply?: () => void): Effect.Effect<SyncReply, TorControlError> =>
      Effect.gen(function*() {
        const reply = yield* Deferred.make<SyncReply, TorControlError>()
        pending.push({ reply, onReply })
        yield* write(encodeCommand(command)).pipe(
          Effect.mapError((error) => new TorControlError({ reason: "Closed", detail: describeSocketError(error) }))
        )
        return yield* Deferred.await(reply)
      }).pipe(
        Effect.timeoutFail({
          duration: replyTimeout,
          onTimeout: () =>
            new TorControlError({
              reason: "Timeout",
              detail: `no answer to ${commandName(command)} in ${Duration.format(replyTimeout)}`
            })
        })
      )

    return { command, closed: Fiber.join(reader) }
  })

// ---------------------------------------------------------------------------
// The handshake

const firstLine = (reply: SyncReply) => `${reply.status} ${reply.lines[0]?.text ?? ""}`.trim()

/** The reply, when Tor said 250; a refusal is a Command error (an Auth error for authentication). */
const expectOk = (
  connection: ControlConnection,
  command: ControlCommand,
  reason: "Command" | "Auth" = "Command",
  onReply?: () => void
): Effect.Effect<SyncReply, TorControlError> =>
  Effect.flatMap(connection.command(command, onReply), (reply) =>
    reply.status === 250 ? Effect.succeed(reply) : Effect.fail(
      new TorControlError({ reason, detail: `Tor refused ${commandName(command)}: ${firstLine(reply)}` })
    ))

const decoded = <A>(value: Either.Either<A, TorControlParseError>): Effect.Effect<A, TorControlError> =>
  Either.match(value, { onLeft: (error) => Effect.fail(protocolError(error)), onRight: Effect.succeed })

const authFailed = (detail: string) => new TorControlError({ reason: "Auth", detail })

/** Tor's cookie (32 bytes), read from the file PROTOCOLINFO named. */
const readCookie = (file: string): Effect.Effect<Redacted.Redacted<Uint8Array>, TorControlError> =>
  Effect.tryPromise({
    try: () => fs.readFile(file),
    catch: (error) =>
      authFailed(
        `cannot read Tor's cookie file ${file}${
          error instanceof Error && "code" in error ? ` (${String(error.code)})` : ""
        }`
      )
  }).pipe(
    Effect.filterOrFail(
      (bytes) => bytes.length === 32,
      () => authFailed(`Tor's cookie file ${file} is not 32 bytes`)
    ),
    Effect.map((bytes) => Redacted.make(new Uint8Array(bytes)))
  )

/**
 * AUTHENTICATE with `secret`. A refusal is told in MITM's words, with Tor's
 * status code only: a peer that is not Tor could echo the secret in its text.
 */
const sendAuthenticate = (connection: ControlConnection, secret: AuthSecret, what: string) =>
  Effect.flatMap(connection.command(ControlCommand.authenticate(secret)), (reply) =>
    reply.status === 250
      ? Effect.void
      : Effect.fail(authFailed(`Tor refused ${what}: status ${reply.status}`)))

const authenticate = (
  connection: ControlConnection,
  info: ProtocolInfo,
  password: Redacted.Redacted<string> | undefined
): Effect.Effect<void, TorControlError> =>
  Effect.gen(function*() {
    const methods = new Set(info.authMethods)
    if (methods.has("NULL")) return yield* sendAuthenticate(connection, { _tag: "None" }, "to let MITM in (NULL)")
    if (password !== undefined && methods.has("HASHEDPASSWORD")) {
      return yield* sendAuthenticate(connection, { _tag: "Password", password }, "the password (HASHEDPASSWORD)")
    }
    const cookieFile = info.cookieFile
    if (cookieFile !== null && methods.has("SAFECOOKIE")) {
      const cookie = yield* readCookie(cookieFile)
      const clientNonce = new Uint8Array(crypto.randomBytes(32))
      const challenge = yield* expectOk(connection, ControlCommand.authChallenge(clientNonce), "Auth").pipe(
        Effect.flatMap((reply) => decoded(decodeAuthChallenge(reply)))
      )
      if (!verifySafeCookieServerHash(Redacted.value(cookie), clientNonce, challenge)) {
        return yield* Effect.fail(authFailed(
          `Tor's SAFECOOKIE proof does not match the cookie file ${cookieFile}: what answers is not the Tor that wrote it`
        ))
      }
      const proof = safeCookieClientHash(Redacted.value(cookie), clientNonce, challenge.serverNonce)
      return yield* sendAuthenticate(connection, { _tag: "Bytes", bytes: Redacted.make(proof) }, "the cookie (SAFECOOKIE)")
    }
    if (cookieFile !== null && methods.has("COOKIE")) {
      const cookie = yield* readCookie(cookieFile)
      return yield* sendAuthenticate(connection, { _tag: "Bytes", bytes: cookie }, "the cookie (COOKIE)")
    }
    return yield* Effect.fail(authFailed(
      methods.has("HASHEDPASSWORD")
        ? "Tor asks for a password (HashedControlPassword): give --tor-control-password or MITM_TOR_CONTROL_PASSWORD"
        : `no authentication method MITM can use (Tor offers ${[...methods].join(", ") || "none"})`
    ))
  })

// ---------------------------------------------------------------------------
// The service

/** The live service; the connection loop runs in the scope. */
export const make = (config: TorControlConfig): Effect.Effect<TorControlService, never, Scope.Scope> =>
  Effect.gen(function*() {
    if (config.address === "off") return off
    const address = config.address
    const addressText = formatAddress(address)
    const password = config.password === undefined ? undefined : Redacted.make(config.password)
    const replyTimeout = Duration.decode(config.replyTimeout ?? "10 seconds")
    const tracker = makeTorCircuits(config.tracker)
    const status = yield* Ref.make<TorStatus>({
      control: "unreachable",
      address: addressText,
      version: null,
      error: "not connected yet"
    })

    const listeners = new Set<(notice: TorNotice) => void>()
    const dispatch = (notices: ReadonlyArray<TorNotice>) => {
      for (const notice of notices) {
        for (const listener of listeners) {
          try {
            listener(notice)
          } catch {
            // A listener records events; one that throws must not stop the control connection.
          }
        }
      }
    }
    /**
     * Events Tor sent after its circuit-status reply, kept until that snapshot is applied: they
     * are newer than it, so they go after it.
     */
    let afterSnapshot: Array<readonly [TorEvent, number]> | undefined
    const onEvent = (reply: AsyncReply) => {
      const event = decodeEvent(reply)
      // An event MITM cannot read is skipped; the next one may be fine.
      if (Either.isLeft(event)) return
      if (afterSnapshot !== undefined) afterSnapshot.push([event.right, config.now()])
      else dispatch(tracker.event(event.right, config.now()))
    }
    const releaseHeld = () => {
      const later = afterSnapshot ?? []
      afterSnapshot = undefined
      for (const [event, at] of later) dispatch(tracker.event(event, at))
    }

    // Defence in depth: no status text ever shows the password, whatever a peer wrote.
    const scrub = (text: string) =>
      config.password === undefined || config.password === "" ? text : text.split(config.password).join("…")
    const failed = (error: TorControlError): TorStatus => ({
      control: error.reason === "Auth" ? "auth-failed" : "unreachable",
      address: addressText,
      version: null,
      error: scrub(error.message)
    })

    /** Connects and watches until the connection ends; fails when it could not get as far as watching. */
    const session = Effect.scoped(
      Effect.gen(function*() {
        const connection = yield* openConnection(address, onEvent, replyTimeout)
        const info = yield* expectOk(connection, ControlCommand.protocolInfo).pipe(
          Effect.flatMap((reply) => decoded(decodeProtocolInfo(reply)))
        )
        yield* authenticate(connection, info, password)
        const version = yield* expectOk(connection, ControlCommand.getInfo("version")).pipe(
          Effect.flatMap((reply) => decoded(decodeGetInfo(reply))),
          Effect.map((values) => values.get("version") ?? info.torVersion)
        )
        tracker.watchStarted()
        yield* expectOk(connection, ControlCommand.setEvents(...events))
        const circuits = yield* expectOk(connection, ControlCommand.getInfo("circuit-status"), "Command", () => {
          afterSnapshot = []
        }).pipe(
          Effect.flatMap((reply) => decoded(decodeGetInfo(reply))),
          Effect.flatMap((values) => decoded(decodeCircuitStatus(values.get("circuit-status") ?? ""))),
          // Without a snapshot, the held events still count.
          Effect.tapError(() => Effect.sync(releaseHeld))
        )
        tracker.circuitStatus(circuits)
        releaseHeld()
        yield* Ref.set(status, { control: "connected", address: addressText, version, error: null })
        const end = yield* Effect.either(connection.closed)
        yield* Ref.set(
          status,
          failed(Either.isLeft(end) ? end.left : new TorControlError({ reason: "Closed", detail: "Tor closed the control connection" }))
        )
      })
    ).pipe(Effect.tapError((error) => Ref.set(status, failed(error))))

    yield* session.pipe(
      Effect.retry(config.retry ?? defaultRetry),
      Effect.zipRight(Effect.sleep(pauseAfterLoss)),
      Effect.forever,
      Effect.forkScoped
    )

    return {
      status: Ref.get(status),
      circuits: Effect.sync(() => tracker.circuits()),
      upstreamOpened: (connectionId, localAddress) =>
        dispatch(tracker.upstreamOpened(connectionId, localAddress, config.now())),
      upstreamClosed: (connectionId) => tracker.upstreamClosed(connectionId, config.now()),
      forgetConnection: (connectionId) => tracker.forgetConnection(connectionId),
      torOf: (connectionId) => tracker.torOf(connectionId),
      onNotice: (listener) => {
        listeners.add(listener)
        return () => {
          listeners.delete(listener)
        }
      },
      reset: Effect.sync(() => tracker.reset())
    } satisfies TorControlService
  })

/** The live TorControl for `config`; the connection lives as long as the layer. */
export const layer = (config: TorControlConfig): Layer.Layer<TorControl> => Layer.scoped(TorControl, make(config))
