/**
 * Exchanges inferred from the shape of traffic MITM cannot read (TLS after the
 * handshake, unknown protocols): a client burst after silence or after server
 * bytes is taken as a request, a server burst after client bytes as its
 * response. O(1) per chunk, and nothing is kept but two counters.
 */
import type { DecoderEvent, Direction } from "./Event.js"

export interface BurstState {
  /** Who sent the current burst; undefined before any byte. */
  readonly current: Direction | undefined
  /** Bytes of the current burst so far. */
  readonly bytes: number
  readonly exchanges: number
}

export const initialBursts: BurstState = { current: undefined, bytes: 0, exchanges: 0 }

export const feedBurst = (state: BurstState, direction: Direction, length: number): readonly [BurstState, DecoderEvent | undefined] => {
  if (state.current === direction) return [{ ...state, bytes: state.bytes + length }, undefined]
  const before = state.current === undefined ? "" : `, after ${state.bytes} bytes ${state.current}`
  if (direction === "up") {
    const exchanges = state.exchanges + 1
    return [
      { current: "up", bytes: length, exchanges },
      { type: "InferredRequest", detail: `exchange ${exchanges}: client burst${before}` }
    ]
  }
  return [
    { current: "down", bytes: length, exchanges: state.exchanges },
    { type: "InferredResponse", detail: `exchange ${state.exchanges}: server burst${before}` }
  ]
}
