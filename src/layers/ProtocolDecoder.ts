/**
 * The live Decoder: sniffs the client's first bytes, then runs the pure HTTP/1.x
 * or TLS handshake decoder over both directions. On TLS and unknown connections
 * it also infers exchanges from the direction of the bytes.
 * A decoder that throws is switched off for that connection and reported as
 * a DecodeError; the traffic never notices.
 */
import { Layer } from "effect"
import type { ConnectionProtocol } from "../domain/Connection.js"
import type { DecoderEvent, Direction } from "../domain/Event.js"
import { decodeFailureOf, HttpParseError, TlsParseError } from "../domain/Errors.js"
import { endHttp, feedHttp, type HttpDecoderState, httpDecoderMode, initialHttpDecoder } from "../domain/HttpDecoder.js"
import { type BurstState, feedBurst, initialBursts } from "../domain/BurstTracker.js"
import { sniffProtocol } from "../domain/ProtocolSniffer.js"
import { feedTls, initialTlsDecoder, type TlsDecoderState, tlsDecoderDone } from "../domain/TlsDecoder.js"
import { Decoder, type ConnectionObserver } from "../services/Decoder.js"

const none: ReadonlyArray<DecoderEvent> = []

export const observe = (): ConnectionObserver => {
  let protocol: ConnectionProtocol = "pending"
  /** Decoding stops after a tunnel, an error, or for anything but HTTP. */
  let decoding = true
  let http: HttpDecoderState = initialHttpDecoder
  let tls: TlsDecoderState = initialTlsDecoder
  /** TLS and unknown connections: exchanges inferred from direction changes, to the end. */
  let bursts: BurstState = initialBursts
  let inferring = false

  const burst = (direction: Direction, chunk: Uint8Array, events: ReadonlyArray<DecoderEvent>): ReadonlyArray<DecoderEvent> => {
    const [next, event] = feedBurst(bursts, direction, chunk.length)
    bursts = next
    return event === undefined ? events : [...events, event]
  }
  let sniffed: Array<Uint8Array> = []

  /** A decoder's verdict after a step: it stops after a tunnel, an error, or the TLS handshake. */
  const checkDone = (): void => {
    if (protocol === "http" ? httpDecoderMode(http) !== "decoding" : tlsDecoderDone(tls)) decoding = false
  }

  const defect = (error: unknown): ReadonlyArray<DecoderEvent> => {
    decoding = false
    const detail = `decoder defect: ${error instanceof Error ? error.message : String(error)}`
    const failure = protocol === "http"
      ? new HttpParseError({ reason: "Defect", detail, offset: null })
      : new TlsParseError({ reason: "Defect", detail, offset: null })
    return [{ type: "DecodeError", error: decodeFailureOf(failure) }]
  }

  /** Feeds the sniffed protocol's decoder; a decoder that throws is switched off for the connection. */
  const guardedFeed = (direction: Direction, chunk: Uint8Array): ReadonlyArray<DecoderEvent> => {
    try {
      const events = feedDecoder(direction, chunk)
      checkDone()
      return events
    } catch (error) {
      return defect(error)
    }
  }

  const feedHttpChunk = (direction: Direction, chunk: Uint8Array): ReadonlyArray<DecoderEvent> => {
    const [next, events] = feedHttp(http, direction, chunk)
    http = next
    return events
  }

  const feedTlsChunk = (direction: Direction, chunk: Uint8Array): ReadonlyArray<DecoderEvent> => {
    const [next, events] = feedTls(tls, direction, chunk)
    tls = next
    return events
  }

  /** The decoder of the sniffed protocol. */
  const feedDecoder = (direction: Direction, chunk: Uint8Array) =>
    protocol === "http" ? feedHttpChunk(direction, chunk) : feedTlsChunk(direction, chunk)

  const sniff = (direction: Direction, chunk: Uint8Array): ReadonlyArray<DecoderEvent> => {
    if (direction === "down") {
      // The server spoke first: neither HTTP nor TLS, whose clients speak first.
      protocol = "unknown"
      decoding = false
      inferring = true
      const events = sniffed.flatMap((piece) => burst("up", piece, none))
      sniffed = []
      return burst("down", chunk, events)
    }
    sniffed.push(chunk)
    const head = sniffed.length === 1 ? chunk : Buffer.concat(sniffed)
    const found = sniffProtocol(head)
    if (found === undefined) return none
    protocol = found
    const chunks = sniffed
    sniffed = []
    inferring = found !== "http"
    const inferred = inferring ? chunks.flatMap((piece) => burst("up", piece, none)) : none
    if (found === "unknown") {
      decoding = false
      return inferred
    }
    if (chunks.length === 1) {
      const events = guardedFeed("up", chunk)
      return inferred.length === 0 ? events : [...inferred, ...events]
    }
    const decoded: Array<DecoderEvent> = []
    try {
      for (const piece of chunks) decoded.push(...feedDecoder("up", piece))
      checkDone()
    } catch (error) {
      decoded.push(...defect(error))
    }
    // Earlier pieces already went upstream while the protocol was undecided: hold at the start.
    const atStart = decoded.map((event) => (event.type === "HttpRequestStart" ? { ...event, offset: 0 } : event))
    return [...inferred, ...atStart]
  }

  return {
    feed: (direction, chunk) => {
      if (protocol === "pending") return decoding ? sniff(direction, chunk) : none
      const decoded = decoding ? guardedFeed(direction, chunk) : none
      return inferring ? burst(direction, chunk, decoded) : decoded
    },
    end: (direction) => {
      if (protocol === "pending") {
        protocol = "unknown"
        decoding = false
      }
      if (!decoding || protocol !== "http") return none
      try {
        const [next, events] = endHttp(http, direction)
        http = next
        checkDone()
        return events
      } catch (error) {
        return defect(error)
      }
    },
    protocol: () => protocol
  }
}

export const layer: Layer.Layer<Decoder> = Layer.succeed(Decoder, { observe })
