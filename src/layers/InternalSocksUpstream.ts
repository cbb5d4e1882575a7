/**
 * The "direct" upstream (the SPEC's internal SOCKS server): MITM connects to
 * the target itself and resolves names itself, because that is what the user
 * chose. `.onion` names are refused without any lookup: they exist only inside
 * Tor, and asking DNS for one leaks it.
 */
import { Duration, Effect, Layer } from "effect"
import * as dns from "node:dns"
import * as net from "node:net"
import { UpstreamError } from "../domain/Errors.js"
import { failureCode, SocksReplyCode } from "../domain/SocksProtocol.js"
import { formatTarget, type SocksAddress, type SocksRequest } from "../domain/SocksRequest.js"
import { Deadlines, type DeadlinesService } from "../services/Deadlines.js"
import { Upstream, type UpstreamRoute, type UpstreamStream } from "../services/Upstream.js"

const connectTimeout = Duration.seconds(10)
const resolveTimeout = Duration.seconds(10)

/** Tor's extended reply "onion service invalid address". */
const onionInvalidAddress = 0xf6

const isOnion = (host: string) => /\.onion\.?$/i.test(host)

const onionRefused = (request: SocksRequest) =>
  new UpstreamError({
    reason: "Refused",
    replyCode: failureCode(request.version, onionInvalidAddress),
    detail: ".onion addresses exist only inside Tor; the direct upstream cannot reach them"
  })

/** How a failed connect reads to the browser, by the system's error code. */
const connectFailure = (error: NodeJS.ErrnoException): [UpstreamError["reason"], number] => {
  switch (error.code) {
    case "ECONNREFUSED":
      return ["Refused", SocksReplyCode.connectionRefused]
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
      return ["Unreachable", SocksReplyCode.hostUnreachable]
    case "ENETUNREACH":
      return ["Unreachable", SocksReplyCode.networkUnreachable]
    case "ETIMEDOUT":
      return ["Timeout", SocksReplyCode.hostUnreachable]
    default:
      return ["Unreachable", SocksReplyCode.generalFailure]
  }
}

const connect = (deadlines: DeadlinesService) => (request: SocksRequest): Effect.Effect<UpstreamStream, UpstreamError> => {
  if (isOnion(request.host)) return Effect.fail(onionRefused(request))
  const target = formatTarget(request, request.port)
  return Effect.async<UpstreamStream, UpstreamError>((resume) => {
    const socket = net.connect({ host: request.host, port: request.port, allowHalfOpen: true, noDelay: true })
    const cleanup = () => {
      cancelDeadline()
      socket.off("connect", onConnect)
      socket.off("error", onError)
    }
    const onTimeout = () => {
      cleanup()
      socket.destroy()
      resume(Effect.fail(
        new UpstreamError({
          reason: "Timeout",
          replyCode: failureCode(request.version, SocksReplyCode.hostUnreachable),
          detail: `cannot connect to ${target}: no connection within ${Duration.format(connectTimeout)}`
        })
      ))
    }
    const cancelDeadline = deadlines.schedule(connectTimeout, onTimeout)
    const onConnect = () => {
      cleanup()
      socket.pause()
      const ipv6 = socket.localFamily === "IPv6"
      resume(Effect.succeed({
        socket,
        replyCode: failureCode(request.version, SocksReplyCode.succeeded),
        bound: { addressType: ipv6 ? "ipv6" : "ipv4", host: socket.localAddress ?? (ipv6 ? "::" : "0.0.0.0"), port: socket.localPort ?? 0 }
      }))
    }
    const onError = (error: NodeJS.ErrnoException) => {
      cleanup()
      socket.destroy()
      const [reason, code] = connectFailure(error)
      resume(Effect.fail(
        new UpstreamError({
          reason,
          replyCode: failureCode(request.version, code),
          detail: `cannot connect to ${target}: ${error.code ?? error.message}`
        })
      ))
    }
    socket.once("connect", onConnect)
    socket.once("error", onError)
    return Effect.sync(() => {
      cleanup()
      socket.destroy()
    })
  })
}

const resolve = (request: SocksRequest): Effect.Effect<SocksAddress, UpstreamError> => {
  if (isOnion(request.host)) return Effect.fail(onionRefused(request))
  const unreachable = (detail: string) =>
    new UpstreamError({
      reason: "Unreachable",
      replyCode: failureCode(request.version, SocksReplyCode.hostUnreachable),
      detail
    })
  const answer: Effect.Effect<SocksAddress, UpstreamError> = request.command === "resolvePtr"
    ? Effect.tryPromise({
      try: () => dns.promises.reverse(request.host),
      catch: (error) => unreachable(`cannot find a name for ${request.host}: ${(error as NodeJS.ErrnoException).code}`)
    }).pipe(
      Effect.flatMap((names) =>
        names.length === 0
          ? Effect.fail(unreachable(`no name for ${request.host}`))
          : Effect.succeed<SocksAddress>({ addressType: "domain", host: names[0] })
      )
    )
    : Effect.tryPromise({
      // A SOCKS4 reply carries only an IPv4 address.
      try: () => dns.promises.lookup(request.host, { family: request.version === 4 ? 4 : 0 }),
      catch: (error) => unreachable(`cannot resolve ${request.host}: ${(error as NodeJS.ErrnoException).code}`)
    }).pipe(
      Effect.map(({ address, family }): SocksAddress => ({ addressType: family === 6 ? "ipv6" : "ipv4", host: address }))
    )
  return answer.pipe(
    Effect.timeoutFail({
      duration: resolveTimeout,
      onTimeout: () =>
        new UpstreamError({
          reason: "Timeout",
          replyCode: failureCode(request.version, SocksReplyCode.hostUnreachable),
          detail: `no answer for ${request.host} within ${Duration.format(resolveTimeout)}`
        })
    })
  )
}

/** The direct route: no SOCKS server in between. */
export const make = (deadlines: DeadlinesService): UpstreamRoute => ({ name: "direct", connect: connect(deadlines), resolve })

/** The Upstream service that always goes direct. */
export const layer: Layer.Layer<Upstream, never, Deadlines> = Layer.effect(
  Upstream,
  Effect.map(Deadlines, (deadlines) => ({ current: Effect.succeed(make(deadlines)) }))
)
