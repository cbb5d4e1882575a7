/**
 * Decoding on the side of the relay: each connection gets an observer that
 * turns the bytes of both directions into events. It never touches the traffic.
 */
import { Context } from "effect"
import type { ConnectionProtocol } from "../domain/Connection.js"
import type { DecoderEvent, Direction } from "../domain/Event.js"

export interface ConnectionObserver {
  /**
   * The bytes of one chunk, as relayed; the returned events belong to the chunk's arrival time.
   * Each HttpRequestStart says where in the chunk its request began.
   */
  readonly feed: (direction: Direction, chunk: Uint8Array) => ReadonlyArray<DecoderEvent>
  /** That direction's stream ended (FIN). */
  readonly end: (direction: Direction) => ReadonlyArray<DecoderEvent>
  readonly protocol: () => ConnectionProtocol
}

export interface DecoderService {
  readonly observe: () => ConnectionObserver
}

export class Decoder extends Context.Tag("mitm/Decoder")<Decoder, DecoderService>() {}
