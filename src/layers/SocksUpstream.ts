/**
 * The upstream is a SOCKS server: Tor at socks5://127.0.0.1:9050, or any other.
 * The browser's request goes upstream as it came: same SOCKS version, host names
 * as names, credentials byte for byte, and the upstream's reply code comes back
 * unchanged. Never resolves a name locally, never falls back to direct.
 *
 * Gaps found in the `socks` package (2.8, build/client/socksclient.js), and how
 * each is covered here:
 *
 * 1. Credentials are JS strings written as UTF-8: bytes that are not valid
 *    UTF-8 are changed. Covered: the package gets credentials only when
 *    `Buffer.from(text, "utf8")` round-trips to the raw bytes; otherwise our own
 *    handshake writes the raw bytes.
 * 2. Method 0x02 is offered only when `userId || password`, so an empty username
 *    with an empty password (a distinct Tor isolation key) is never sent.
 *    Covered: our own handshake when both are empty.
 * 3. A SOCKS5 domain's length byte is `host.length` (UTF-16 units) while the
 *    name is written as UTF-8, and a domain that looks like an IP is sent as an
 *    IP (SOCKS5 ATYP 1/4; SOCKS4 instead of SOCKS4a). Covered: the package gets
 *    only ASCII names that are not IP literals; others go through our handshake,
 *    which sends the name's bytes as received (latin1).
 * 4. The numeric reply code is hidden: a rejection is an error message with the
 *    enum name only ("undefined" for Tor's 0xF0-0xF7), and auth failure, garbage
 *    and rejection are told apart only by message text. Covered: we read every
 *    byte the upstream sends with our own 'data' listener and a small reply
 *    reader (`readStage`), which is authoritative for the code and the outcome.
 * 5. After success it re-emits bytes read past the reply as a synthetic 'data'
 *    event and calls `resume()` on a setImmediate: with no listener yet, those
 *    bytes and whatever follows are lost. Covered: the package never sees the
 *    TCP socket. It gets a shim Duplex (`existing_socket`) whose writes go to the
 *    socket and into which we push only the upstream's bytes up to the end of
 *    the reply; bytes past it are `unshift`ed back onto the paused socket.
 * 6. Its own 30 s timeout (a setTimeout, never cleared) destroys the socket while
 *    Tor may still be building a circuit, and holds the client (and all it
 *    references) until it fires. Covered: the Effect clock owns the timeouts
 *    (10 s TCP connect, 120 s reply); the package's timer is set past ours, only
 *    ever hits the shim, and is cleared when our handshake ends.
 * 7. Only CONNECT/BIND/ASSOCIATE: no RESOLVE (0xF0) or RESOLVE_PTR (0xF1).
 *    Covered: our own handshake.
 * 8. Auth reply and command reply arriving in one TCP chunk make it fail with
 *    "InternalError" (its auth handler is async and the read loop runs on). Not
 *    reachable with a conforming server, which replies to our request only after
 *    it has been sent; if it happens, the error is reported as "Protocol".
 */
import { Duration, Effect, Layer } from "effect"
import * as net from "node:net"
import { Duplex } from "node:stream"
import { SocksClient, type SocksClientOptions } from "socks"
import { UpstreamError } from "../domain/Errors.js"
import { formatHostPort, formatIPv4, formatIPv6, hexByte as hex, parseIPv6 } from "../domain/Address.js"
import { failureCode, SocksReplyCode } from "../domain/SocksProtocol.js"
import type { SocksAddress, SocksCommand, SocksRequest, SocksVersion } from "../domain/SocksRequest.js"
import { Deadlines, type DeadlinesService } from "../services/Deadlines.js"
import { Upstream, type UpstreamRoute, type UpstreamWatch, type UpstreamStream } from "../services/Upstream.js"

/** From `socks5://[user:pass@]HOST:PORT`; the URL is parsed by the settings schema. */
export interface SocksUpstreamConfig {
  readonly host: string
  readonly port: number
  readonly username?: string
  readonly password?: string
}

const connectTimeout = Duration.seconds(10)
/** Tor answers after building a circuit, which can take long. */
const replyTimeout = Duration.seconds(120)

type Bound = SocksAddress & { readonly port: number }

const commandByte: Record<SocksCommand, number> = {
  connect: 0x01,
  bind: 0x02,
  udpAssociate: 0x03,
  resolve: 0xf0,
  resolvePtr: 0xf1
}

const methodNoAuth = 0x00
const methodUserPass = 0x02

// ---------------------------------------------------------------------------
// Reading the upstream's replies (pure: bytes in, a step out)

/** Where the upstream's byte stream is: SOCKS5 method choice, RFC 1929 status, or the reply. */
type Stage = "method" | "auth" | "reply"

type Step =
  | { readonly _tag: "More" }
  /** A method was chosen or auth accepted: the client sends what `stage` waits for. */
  | { readonly _tag: "Next"; readonly stage: "auth" | "reply"; readonly size: number }
  | { readonly _tag: "Reply"; readonly code: number; readonly bound: Bound | undefined; readonly size: number }
  | { readonly _tag: "Refused"; readonly reason: "Rejected" | "Protocol"; readonly code: number; readonly detail: string }

const more: Step = { _tag: "More" }
/** One step of reading `bytes` (everything unread so far) in `stage`. */
const readStage = (version: SocksVersion, offered: ReadonlyArray<number>, stage: Stage, bytes: Buffer): Step => {
  const protocol = (detail: string): Step => ({
    _tag: "Refused",
    reason: "Protocol",
    code: failureCode(version, SocksReplyCode.generalFailure),
    detail
  })
  if (version === 4) {
    if (bytes.length < 8) return more
    if (bytes[0] !== 0x00) return protocol(`SOCKS4 reply version ${hex(bytes[0])}`)
    const code = bytes[1]
    if (code === 0x5a) {
      const bound = { addressType: "ipv4" as const, host: formatIPv4(bytes.subarray(4, 8)), port: bytes.readUInt16BE(2) }
      return { _tag: "Reply", code, bound, size: 8 }
    }
    if (code >= 0x5b && code <= 0x5d) return { _tag: "Refused", reason: "Rejected", code, detail: `replied ${hex(code)}` }
    return protocol(`SOCKS4 reply code ${hex(code)}`)
  }
  switch (stage) {
    case "method": {
      if (bytes.length < 2) return more
      if (bytes[0] !== 0x05) return protocol(`method reply version ${hex(bytes[0])}`)
      const method = bytes[1]
      if (method === 0xff) {
        return { _tag: "Refused", reason: "Rejected", code: SocksReplyCode.generalFailure, detail: "accepted none of the offered methods" }
      }
      if (!offered.includes(method)) return protocol(`chose method ${hex(method)}, which was not offered`)
      return { _tag: "Next", stage: method === methodUserPass ? "auth" : "reply", size: 2 }
    }
    case "auth": {
      if (bytes.length < 2) return more
      if (bytes[0] !== 0x01) return protocol(`auth reply version ${hex(bytes[0])}`)
      if (bytes[1] !== 0x00) {
        return { _tag: "Refused", reason: "Rejected", code: SocksReplyCode.generalFailure, detail: "refused the username/password" }
      }
      return { _tag: "Next", stage: "reply", size: 2 }
    }
    case "reply": {
      if (bytes.length < 2) return more
      if (bytes[0] !== 0x05) return protocol(`reply version ${hex(bytes[0])}`)
      const code = bytes[1]
      if (code !== 0x00) return { _tag: "Refused", reason: "Rejected", code, detail: `replied ${hex(code)}` }
      if (bytes.length < 5) return more
      const addressType = bytes[3]
      const start = addressType === 0x03 ? 5 : 4
      const length = addressType === 0x01 ? 4 : addressType === 0x04 ? 16 : addressType === 0x03 ? bytes[4] : -1
      if (length < 0) return protocol(`reply address type ${hex(addressType)}`)
      const size = start + length + 2
      if (bytes.length < size) return more
      const port = bytes.readUInt16BE(start + length)
      const bound: Bound =
        addressType === 0x01
          ? { addressType: "ipv4", host: formatIPv4(bytes.subarray(4, 8)), port }
          : addressType === 0x04
          ? { addressType: "ipv6", host: formatIPv6(bytes.subarray(4, 20)), port }
          : { addressType: "domain", host: bytes.toString("latin1", 5, 5 + length), port }
      return { _tag: "Reply", code, bound, size }
    }
  }
}

// ---------------------------------------------------------------------------
// Writing requests (our own handshake)

/** IPv6 text as the browser's request carried it (formatted by the SOCKS decoder), back to 16 bytes. */
const ipv6Bytes = (text: string): Buffer => Buffer.from(parseIPv6(text) ?? Array<number>(16).fill(0))

const portBytes = (port: number) => Buffer.from([port >> 8, port & 0xff])

const greeting = (offered: ReadonlyArray<number>) => Buffer.from([0x05, offered.length, ...offered])

const userPass = (credentials: Credentials) =>
  Buffer.concat([
    Buffer.from([0x01, credentials.username.length]),
    credentials.username,
    Buffer.from([credentials.password.length]),
    credentials.password
  ])

const request5 = (request: SocksRequest) => {
  const address =
    request.addressType === "ipv4"
      ? Buffer.from([0x01, ...request.host.split(".").map(Number)])
      : request.addressType === "ipv6"
      ? Buffer.concat([Buffer.from([0x04]), ipv6Bytes(request.host)])
      : Buffer.concat([Buffer.from([0x03, request.host.length]), Buffer.from(request.host, "latin1")])
  return Buffer.concat([Buffer.from([0x05, commandByte[request.command], 0x00]), address, portBytes(request.port)])
}

/** SOCKS4, or SOCKS4a (IP 0.0.0.1 and the name after the user id) for a domain. */
const request4 = (request: SocksRequest, userId: Uint8Array) =>
  Buffer.concat([
    Buffer.from([0x04, commandByte[request.command]]),
    portBytes(request.port),
    Buffer.from(request.addressType === "domain" ? [0, 0, 0, 1] : request.host.split(".").map(Number)),
    userId,
    Buffer.from([0x00]),
    ...(request.addressType === "domain" ? [Buffer.from(request.host, "latin1"), Buffer.from([0x00])] : [])
  ])

// ---------------------------------------------------------------------------
// The conversation on the socket

interface Credentials {
  readonly username: Uint8Array
  readonly password: Uint8Array
}

interface Reply {
  readonly socket: net.Socket
  readonly code: number
  readonly bound: Bound | undefined
}

/** Who speaks for MITM on one upstream socket: our own handshake or the `socks` package. */
interface Conversation {
  /** SOCKS5 methods offered in the greeting. */
  readonly offered: ReadonlyArray<number>
  /** Writes the first message; nothing when the package drives. */
  readonly start: () => void
  /** Writes what the upstream waits for next. */
  readonly send: (stage: "auth" | "reply") => void
  /** Sees the upstream's bytes up to the end of its reply, never past it. */
  readonly observe: (bytes: Buffer) => void
  /** Once our reader has the reply: calls back with the package's disagreement, if any. */
  readonly agree: (done: (disagreement: string | undefined) => void) => void
  /** Lets go of everything the conversation holds; called once, however it ended. */
  readonly dispose: () => void
}

interface Exchange {
  readonly config: SocksUpstreamConfig
  readonly version: SocksVersion
  readonly label: string
  /** Keep the socket open after a successful reply (CONNECT); destroy it otherwise (RESOLVE). */
  readonly keep: boolean
  readonly conversation: (socket: net.Socket) => Conversation
  readonly watch: UpstreamWatch | undefined
}

/**
 * One upstream socket from TCP connect to the final reply, in one callback chain
 * with deadlines on the clock service (10 s to connect, 120 s to reply) and no
 * fiber of its own. On success the socket is left paused with no listener of ours
 * but a silent 'error' one, and bytes read past the reply are put back in front of
 * its buffer. On failure or interruption the socket is destroyed.
 */
const converse = (deadlines: DeadlinesService, exchange: Exchange): Effect.Effect<Reply, UpstreamError> =>
  Effect.async<Reply, UpstreamError>((resume) => {
    const { config, label, version } = exchange
    const where = formatHostPort(config.host, config.port)
    const generalFailure = failureCode(version, SocksReplyCode.generalFailure)
    const socket = new net.Socket({ allowHalfOpen: true })
    // An error with no step listening must not crash the process; the relay reports its own.
    socket.on("error", () => {})
    let conversation: Conversation | undefined
    let stage: Stage = version === 5 ? "method" : "reply"
    let unread: Buffer = Buffer.alloc(0)
    let done = false

    const detach = () => {
      cancelDeadline()
      socket.off("connect", onConnect)
      socket.off("data", onData)
      socket.off("end", onEnd)
      socket.off("close", onEnd)
      socket.off("error", onError)
      conversation?.dispose()
      conversation = undefined
      unread = Buffer.alloc(0)
    }
    const finish = (result: Effect.Effect<Reply, UpstreamError>, destroy: boolean) => {
      if (done) return
      done = true
      detach()
      if (destroy) socket.destroy()
      resume(result)
    }
    const fail = (reason: UpstreamError["reason"], replyCode: number, detail: string) =>
      finish(Effect.fail(new UpstreamError({ reason, replyCode, detail })), true)

    const onConnectTimeout = () =>
      fail("Timeout", generalFailure, `cannot reach SOCKS upstream ${where}: no connection within ${Duration.format(connectTimeout)}`)
    const onReplyTimeout = () =>
      fail("Timeout", generalFailure, `SOCKS upstream ${label} did not reply within ${Duration.format(replyTimeout)}`)
    let cancelDeadline = deadlines.schedule(connectTimeout, onConnectTimeout)

    const onError = (error: NodeJS.ErrnoException) =>
      conversation === undefined
        ? fail("Unreachable", generalFailure, `cannot reach SOCKS upstream ${where}: ${error.code ?? error.message}`)
        : fail("Unreachable", generalFailure, `SOCKS upstream ${label} failed: ${error.code ?? error.message}`)
    const onEnd = () => fail("Protocol", generalFailure, `SOCKS upstream ${label} closed the connection before its reply`)

    const onConnect = () => {
      exchange.watch?.connected(socket.localAddress ?? "", socket.localPort ?? 0)
      cancelDeadline()
      cancelDeadline = deadlines.schedule(replyTimeout, onReplyTimeout)
      conversation = exchange.conversation(socket)
      socket.on("data", onData)
      socket.once("end", onEnd)
      socket.once("close", onEnd)
      conversation.start()
    }

    const onData = (chunk: Buffer) => {
      const talk = conversation!
      unread = unread.length === 0 ? chunk : Buffer.concat([unread, chunk])
      for (;;) {
        const step = readStage(version, talk.offered, stage, unread)
        switch (step._tag) {
          case "More":
            return talk.observe(chunk)
          case "Refused":
            return fail(step.reason, step.code, `SOCKS upstream ${label} ${step.detail}`)
          case "Next":
            unread = unread.subarray(step.size)
            stage = step.stage
            talk.send(stage)
            continue
          case "Reply": {
            // The reply ends in this chunk; what follows it belongs to the stream.
            const rest = unread.subarray(step.size)
            socket.pause()
            socket.off("data", onData)
            talk.observe(chunk.subarray(0, chunk.length - rest.length))
            if (rest.length > 0) socket.unshift(rest)
            const reply: Reply = { socket, code: step.code, bound: step.bound }
            return talk.agree((disagreement) =>
              disagreement === undefined
                ? finish(Effect.succeed(reply), !exchange.keep)
                : fail("Protocol", generalFailure, `SOCKS upstream ${label}: ${disagreement}`)
            )
          }
        }
      }
    }

    socket.once("connect", onConnect)
    socket.once("error", onError)
    socket.connect({ host: config.host, port: config.port, noDelay: true })
    return Effect.sync(() => {
      if (done) return
      done = true
      detach()
      socket.destroy()
    })
  })

const agreeAlways = (done: (disagreement: string | undefined) => void) => done(undefined)

/** Our own handshake: greeting, RFC 1929 auth, request, written byte for byte. */
const ownConversation = (request: SocksRequest, credentials: Credentials | undefined, userId: Uint8Array) =>
(socket: net.Socket): Conversation => {
  const offered = credentials === undefined ? [methodNoAuth] : [methodNoAuth, methodUserPass]
  return {
    offered,
    start: () => socket.write(request.version === 4 ? request4(request, userId) : greeting(offered)),
    // "auth" is reached only when 0x02 was offered, that is with credentials.
    send: (stage) => socket.write(stage === "auth" ? userPass(credentials!) : request5(request)),
    observe: () => {},
    agree: agreeAlways,
    dispose: () => {}
  }
}

/**
 * Runs `start` and returns the first timer it sets with `setTimeout`, so that it can be
 * cleared. The `socks` package starts one timer per connection and never clears it; the
 * timer holds the client, its options, its 4 KiB receive buffer and the shim (gap 6).
 * `start` is synchronous and the global is restored after its first call or its return.
 */
const firstTimerOf = (start: () => void): NodeJS.Timeout | undefined => {
  const setTimer = globalThis.setTimeout
  let timer: NodeJS.Timeout | undefined
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    globalThis.setTimeout = setTimer
    return (timer = setTimer(...args))
  }) as typeof setTimeout
  try {
    start()
  } finally {
    globalThis.setTimeout = setTimer
  }
  return timer
}

/**
 * CONNECT through the `socks` package. It talks to a shim, not to the socket: the
 * shim's writes go to the socket, and it reads only the upstream's bytes up to the
 * end of the reply (gap 5). Our reader decides the outcome and the code (gap 4).
 * When the conversation ends, nothing of the package keeps memory: its timer is
 * cleared and the shim lets go of the socket, whose listeners hold the connection.
 */
const packageConversation = (options: Omit<SocksClientOptions, "existing_socket">, offered: ReadonlyArray<number>) =>
(socket: net.Socket): Conversation => {
  let target: net.Socket | undefined = socket
  const shim = new Duplex({
    read() {},
    write(chunk, _encoding, done) {
      if (target !== undefined && !target.destroyed) target.write(chunk)
      done()
    }
  })
  let settled: Promise<Error | undefined> = Promise.resolve(undefined)
  let timer: NodeJS.Timeout | undefined
  return {
    offered,
    start: () => {
      timer = firstTimerOf(() => {
        settled = SocksClient.createConnection({ ...options, existing_socket: shim }).then(
          () => undefined,
          (error: Error) => error
        )
      })
    },
    send: () => {},
    observe: (bytes) => shim.push(bytes),
    // By the time our reader has the reply, the package has every byte it needs to agree.
    agree: (done) => void settled.then((error) => done(error?.message)),
    dispose: () => {
      clearTimeout(timer)
      target = undefined
      shim.destroy()
    }
  }
}

const utf8 = (text: string | undefined) => Buffer.from(text ?? "", "utf8")
/** The string the package would write back as exactly these bytes, if there is one. */
const asUtf8 = (bytes: Uint8Array): string | undefined => {
  const text = Buffer.from(bytes).toString("utf8")
  return Buffer.from(text, "utf8").equals(bytes) ? text : undefined
}
/** A name the package writes unchanged: ASCII (gap 3) and not an IP literal. */
const packageWritesName = (request: SocksRequest) =>
  request.addressType !== "domain" || (/^[\x01-\x7f]*$/.test(request.host) && net.isIP(request.host) === 0)

/** Builds the route for one SOCKS upstream. */
export const make = (config: SocksUpstreamConfig, deadlines: DeadlinesService): UpstreamRoute => {
  const label = formatHostPort(config.host, config.port)
  const configured: Credentials | undefined = config.username !== undefined || config.password !== undefined
    ? { username: utf8(config.username), password: utf8(config.password) }
    : undefined
  // What the browser sent, byte for byte; the URL's credentials when it sent none.
  const credentialsFor = (request: SocksRequest) => request.credentials ?? configured
  const userIdFor = (request: SocksRequest) =>
    request.userId !== undefined && request.userId.length > 0 ? request.userId : configured?.username ?? new Uint8Array(0)

  /** The package's options when it would send exactly what we would; undefined otherwise. */
  const packageOptions = (request: SocksRequest): Omit<SocksClientOptions, "existing_socket"> | undefined => {
    if (request.command !== "connect" || !packageWritesName(request)) return undefined
    const proxy = { host: config.host, port: config.port, type: request.version }
    // Past our own timeout: the package's timer must never decide (gap 6).
    const common = { command: "connect" as const, destination: { host: request.host, port: request.port }, timeout: 2 * Duration.toMillis(replyTimeout) }
    if (request.version === 4) {
      const userId = asUtf8(userIdFor(request))
      return userId === undefined ? undefined : { ...common, proxy: { ...proxy, userId } }
    }
    const credentials = credentialsFor(request)
    if (credentials === undefined) return { ...common, proxy }
    const userId = asUtf8(credentials.username)
    const password = asUtf8(credentials.password)
    if (userId === undefined || password === undefined || (userId === "" && password === "")) return undefined
    return { ...common, proxy: { ...proxy, userId, password } }
  }

  const conversationFor = (request: SocksRequest) => {
    const options = packageOptions(request)
    if (options === undefined) return ownConversation(request, credentialsFor(request), userIdFor(request))
    const offered = options.proxy.userId || options.proxy.password ? [methodNoAuth, methodUserPass] : [methodNoAuth]
    return packageConversation(options, offered)
  }

  const connect = (request: SocksRequest, watch?: UpstreamWatch): Effect.Effect<UpstreamStream, UpstreamError> =>
    Effect.map(
      converse(deadlines, { config, version: request.version, label, keep: true, conversation: conversationFor(request), watch }),
      (reply): UpstreamStream => ({ socket: reply.socket, replyCode: reply.code, bound: reply.bound })
    )

  const resolve = (request: SocksRequest, watch?: UpstreamWatch): Effect.Effect<SocksAddress, UpstreamError> =>
    converse(deadlines, {
      config,
      version: request.version,
      label,
      keep: false,
      watch,
      conversation: ownConversation(request, credentialsFor(request), userIdFor(request))
    }).pipe(
      Effect.flatMap((reply) =>
        reply.bound === undefined
          ? Effect.fail(
            new UpstreamError({
              reason: "Protocol",
              replyCode: failureCode(request.version, SocksReplyCode.generalFailure),
              detail: `SOCKS upstream ${label} gave no address`
            })
          )
          : Effect.succeed<SocksAddress>({ addressType: reply.bound.addressType, host: reply.bound.host })
      )
    )

  return { name: `socks5://${label}`, connect, resolve }
}

/** The Upstream service with one fixed SOCKS upstream. */
export const layer = (config: SocksUpstreamConfig): Layer.Layer<Upstream, never, Deadlines> =>
  Layer.effect(Upstream, Effect.map(Deadlines, (deadlines) => ({ current: Effect.succeed(make(config, deadlines)) })))
