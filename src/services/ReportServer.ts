/**
 * The report's HTTP server: on its own port, and in-band on connections a
 * browser opens to `mitm.proxy` through the proxy.
 */
import { Context, type Effect } from "effect"
import type * as net from "node:net"

export interface ListenAddress {
  readonly host: string
  readonly port: number
}

export interface ReportServerService {
  /** The report port's real address, or undefined with `--report off`. */
  readonly address: ListenAddress | undefined
  /** Serves HTTP on a socket whose SOCKS handshake MITM answered itself; ends when it closes. */
  readonly serveInBand: (socket: net.Socket, head: Uint8Array) => Effect.Effect<void>
}

export class ReportServer extends Context.Tag("mitm/ReportServer")<ReportServer, ReportServerService>() {}
