/**
 * Where a browser's stream goes next: Tor (or any SOCKS server), or straight
 * to the target ("internal SOCKS"). Which one runs is one Layer.
 */
import { Context, type Effect } from "effect"
import type * as net from "node:net"
import type { UpstreamError } from "../domain/Errors.js"
import type { SocksAddress, SocksRequest } from "../domain/SocksRequest.js"

export interface UpstreamStream {
  /** Connected, paused, with `allowHalfOpen`; the caller owns it and destroys it. */
  readonly socket: net.Socket
  /** The reply code the browser gets, in the browser's SOCKS version (0x00 or 0x5A). */
  readonly replyCode: number
  /** The bound address the upstream reported, passed on in the reply. */
  readonly bound: (SocksAddress & { readonly port: number }) | undefined
}

/** What the caller learns while an upstream connection is made. */
export interface UpstreamWatch {
  /**
   * The TCP connection to the SOCKS server is up and nothing is written yet: its local
   * address is what Tor reports as the stream's SOURCE_ADDR. Never called for direct.
   */
  readonly connected: (localHost: string, localPort: number) => void
}

/** One upstream: a SOCKS server at an address, or direct. */
export interface UpstreamRoute {
  /** How the upstream reads in the report: `socks5://127.0.0.1:9050` or `direct`. */
  readonly name: string
  /** CONNECT: a stream to the request's target. Host names are never resolved here for a SOCKS upstream. */
  readonly connect: (request: SocksRequest, watch?: UpstreamWatch) => Effect.Effect<UpstreamStream, UpstreamError>
  /** Tor's RESOLVE (0xF0) and RESOLVE_PTR (0xF1): the answer address. */
  readonly resolve: (request: SocksRequest, watch?: UpstreamWatch) => Effect.Effect<SocksAddress, UpstreamError>
}

export interface UpstreamService {
  /** The route for a connection opened now; a settings change applies to later connections. */
  readonly current: Effect.Effect<UpstreamRoute>
}

export class Upstream extends Context.Tag("mitm/Upstream")<Upstream, UpstreamService>() {}
