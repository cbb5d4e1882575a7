/**
 * The SOCKS listener browsers connect to.
 */
import { Context } from "effect"
import type { ListenAddress } from "./ReportServer.js"

export interface ProxyService {
  /** The real address it listens on (the chosen port when asked for port 0). */
  readonly address: ListenAddress
}

export class Proxy extends Context.Tag("mitm/Proxy")<Proxy, ProxyService>() {}
