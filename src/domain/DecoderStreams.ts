/**
 * The pure decoders as Stream transformations: bytes in, typed events out, and
 * a parse error in the stream's error channel as its tagged error (SPEC §6:
 * `HttpParseError`, `TlsParseError`, `SocksParseError`, each with its reason and
 * offset). They run the same state machines as the relay's meter, one feed per
 * element, so how the bytes are split never changes what comes out.
 */
import { Effect, Stream } from "effect"
import type { DecodeFailure, DecoderEvent, Direction } from "./Event.js"
import { HttpParseError, type ParseError, SocksParseError, TlsParseError } from "./Errors.js"
import { endHttp, feedHttp, initialHttpDecoder } from "./HttpDecoder.js"
import { feedSocksServer, initialSocksServer, type SocksServerStep } from "./SocksProtocol.js"
import { feedTls, initialTlsDecoder } from "./TlsDecoder.js"

/** A chunk of one direction of a connection, in arrival order. */
export type DirectedBytes = readonly [Direction, Uint8Array]

/** The tagged error a DecodeError event carries, back as the error it was made from. */
export const parseErrorOf = (failure: DecodeFailure): ParseError => {
  switch (failure._tag) {
    case "HttpParseError":
      return new HttpParseError({ reason: failure.reason as HttpParseError["reason"], detail: failure.message, offset: failure.offset })
    case "TlsParseError":
      return new TlsParseError({ reason: failure.reason as TlsParseError["reason"], detail: failure.message, offset: failure.offset })
    case "SocksParseError":
      return new SocksParseError({
        reason: failure.reason as SocksParseError["reason"],
        detail: failure.message.slice(failure.reason.length + 2),
        offset: failure.offset
      })
  }
}

/** Events until the first DecodeError, which fails the stream instead of being emitted. */
const failAtDecodeError = <E, R, F extends ParseError>(events: Stream.Stream<DecoderEvent, E, R>) =>
  Stream.mapEffect(events, (event) =>
    event.type === "DecodeError" ? Effect.fail(parseErrorOf(event.error) as F) : Effect.succeed(event))

/**
 * HTTP/1.x over both directions of a connection: request and response events with their
 * exchange indices; at the end of the bytes, what the ends of both directions complete
 * (a body delimited by close). Fails with `HttpParseError` where decoding gives up.
 */
export const decodeHttp = <E, R>(bytes: Stream.Stream<DirectedBytes, E, R>): Stream.Stream<DecoderEvent, E | HttpParseError, R> =>
  Stream.suspend(() => {
    let state = initialHttpDecoder
    const fed = Stream.mapConcat(bytes, ([direction, chunk]) => {
      const [next, events] = feedHttp(state, direction, chunk)
      state = next
      return events
    })
    const ended = Stream.suspend(() => {
      const events: Array<DecoderEvent> = []
      for (const direction of ["up", "down"] as const) {
        const [next, out] = endHttp(state, direction)
        state = next
        events.push(...out)
      }
      return Stream.fromIterable(events)
    })
    return failAtDecodeError<E, R, HttpParseError>(Stream.concat(fed, ended))
  })

/** The TLS hellos and first application data of a connection. Fails with `TlsParseError`. */
export const decodeTls = <E, R>(bytes: Stream.Stream<DirectedBytes, E, R>): Stream.Stream<DecoderEvent, E | TlsParseError, R> =>
  Stream.suspend(() => {
    let state = initialTlsDecoder
    return failAtDecodeError<E, R, TlsParseError>(Stream.mapConcat(bytes, ([direction, chunk]) => {
      const [next, events] = feedTls(state, direction, chunk)
      state = next
      return events
    }))
  })

/**
 * The server side of a SOCKS handshake over the client's bytes: the replies to write, then
 * the request, which ends the stream. A refusal's reply to the client (when it gets one) is
 * the last Reply, and then the stream fails with the `SocksParseError`.
 */
export const decodeSocks = <E, R>(
  bytes: Stream.Stream<Uint8Array, E, R>
): Stream.Stream<Exclude<SocksServerStep, { readonly _tag: "Refuse" }>, E | SocksParseError, R> =>
  Stream.suspend(() => {
    let state = initialSocksServer
    return Stream.mapConcat(bytes, (chunk) => {
      const [next, steps] = feedSocksServer(state, chunk)
      state = next
      return steps
    }).pipe(
      Stream.takeUntil((step) => step._tag !== "Reply"),
      Stream.flatMap((step) =>
        step._tag !== "Refuse"
          ? Stream.succeed(step)
          : Stream.concat(
            step.reply === undefined ? Stream.empty : Stream.succeed({ _tag: "Reply" as const, bytes: step.reply }),
            Stream.fail(step.error)
          )
      )
    )
  })
