/**
 * A browser that loads a page through a SOCKS proxy and says how long it took:
 * what `measure` (SPEC §9) repeats.
 */
import { Context, type Effect } from "effect"
import type { PageLoadError } from "../domain/Errors.js"
import type { PageTiming } from "../domain/RunStats.js"

export interface PageLoadRequest {
  readonly url: string
  /** MITM's SOCKS port on 127.0.0.1: every connection of the page goes through it. */
  readonly proxyPort: number
  /** The most the load may take, launch to network quiet. */
  readonly timeoutMillis: number
}

export interface PageLoadsService {
  /** One cold page load: a fresh browser profile, the load event, then network quiet (bounded). */
  readonly load: (request: PageLoadRequest) => Effect.Effect<PageTiming, PageLoadError>
}

export class PageLoads extends Context.Tag("mitm/PageLoads")<PageLoads, PageLoadsService>() {}
