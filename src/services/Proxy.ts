/**
 * The SOCKS listener browsers connect to.
 */
import { Context, type Effect } from "effect"
import type { ListenAddress } from "./ReportServer.js"

export interface ProxyService {
  /** The real address it listens on (the chosen port when asked for port 0). */
  readonly address: ListenAddress
  /** Connection fibers running now (each client connection has one until it is fully closed). */
  readonly clients: Effect.Effect<number>
}

export class Proxy extends Context.Tag("mitm/Proxy")<Proxy, ProxyService>() {}
