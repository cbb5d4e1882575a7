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
  const afterBytes = state.current === undefined ? null : state.bytes
  if (direction === "up") {
    return [
      { current: "up", bytes: length, exchanges: state.exchanges + 1 },
      { type: "InferredRequest", exchange: state.exchanges, afterBytes }
    ]
  }
  // A server that speaks first answers no request: its burst belongs to exchange 0 all the same.
  return [
    { current: "down", bytes: length, exchanges: state.exchanges },
    { type: "InferredResponse", exchange: Math.max(state.exchanges - 1, 0), afterBytes }
  ]
}
