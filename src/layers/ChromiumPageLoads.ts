/**
 * PageLoads on Debian's Chromium, headless, driven by playwright-core (never a
 * downloaded browser). Each load launches its own Chromium: playwright gives
 * every launch a fresh temporary profile, so each run starts with a cold cache,
 * no connections and no DNS answers kept from the run before.
 *
 * Chromium's own background traffic is switched off. Playwright's switches
 * (its `--disable-features` list included, which we leave as it is: replacing
 * it brings calls to clients2.google.com back) still leave calls to
 * update.googleapis.com and accounts.google.com; pointing the component
 * updater and Gaia at a loopback sink stops them (SPEC §9). The sink is a
 * listener of ours that closes whatever connects, and it bypasses the proxy,
 * so even a stray call never shows up as a measured connection.
 */
import { Clock, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import type { Browser, Page } from "playwright-core"
import { BrowserMissing, PageLoadError } from "../domain/Errors.js"
import type { PageTiming } from "../domain/RunStats.js"
import { type PageLoadRequest, PageLoads } from "../services/PageLoads.js"

export interface ChromiumConfig {
  /** The Chromium binary, e.g. /usr/bin/chromium. */
  readonly executablePath: string
}

/** After the load event, the network counts as quiet after this long without a request in flight … */
const quietMillis = 500
/** … and a run waits for that at most this long after the load event. */
const quietLimitMillis = 2000

/** The Chromium switches that make a measured load: through MITM, and nothing of Chromium's own. */
export const chromiumArgs = (proxyPort: number, sinkPort: number): Array<string> => {
  const sink = `http://127.0.0.1:${sinkPort}`
  return [
    `--proxy-server=socks5://127.0.0.1:${proxyPort}`,
    // Loopback goes through the proxy too (a page under test may be local); the sink never does.
    `--proxy-bypass-list=<-loopback>;127.0.0.1:${sinkPort}`,
    `--component-updater=url-source=${sink}`,
    `--gaia-url=${sink}`,
    "--disable-sync",
    "--disable-quic",
    "--disable-gpu",
    "--no-sandbox"
  ]
}

/** A loopback listener that closes every connection at once; held for the layer's lifetime. */
const sinkListener = Effect.acquireRelease(
  Effect.async<net.Server>((resume) => {
    const server = net.createServer((socket) => socket.destroy())
    // Listening on 127.0.0.1:0 fails only on a machine without loopback: nothing can be measured there.
    server.once("error", (error) => resume(Effect.dieMessage(`cannot listen on 127.0.0.1 for Chromium's background calls: ${error.message}`)))
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
)

/** Playwright's messages carry a call log after the first line; the first line says it. */
const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split("\n")[0].replace(/^\w+\.\w+: /, "").trim()

/** Counts the page's requests in flight and when that count last changed (by the Clock service, as `networkQuiet` reads it). */
const trackNetwork = (page: Page) =>
  Effect.map(Effect.clock, (clock) => {
    const state = { inFlight: 0, changedAt: clock.unsafeCurrentTimeMillis() }
    const started = () => {
      state.inFlight++
      state.changedAt = clock.unsafeCurrentTimeMillis()
    }
    const ended = () => {
      state.inFlight = Math.max(0, state.inFlight - 1)
      state.changedAt = clock.unsafeCurrentTimeMillis()
    }
    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)
    return state
  })

/** Returns once nothing has been in flight for `quietMillis`, or `limitMillis` after it was called. */
const networkQuiet = (state: { readonly inFlight: number; readonly changedAt: number }, limitMillis: number) =>
  Effect.gen(function*() {
    const since = yield* Clock.currentTimeMillis
    for (;;) {
      const now = yield* Clock.currentTimeMillis
      if (now - since >= limitMillis) return
      if (state.inFlight === 0 && now - state.changedAt >= quietMillis) return
      yield* Effect.sleep("50 millis")
    }
  })

/** The Navigation Timing fields a run reads, milliseconds from navigation start. */
interface NavigationEntry {
  readonly loadEventStart: number
  readonly requestStart: number
  readonly responseStart: number
}

/** The main document's Navigation Timing, in seconds from navigation start. */
const navigationTiming = (page: Page) =>
  Effect.tryPromise({
    try: () =>
      page.evaluate(() => {
        // Runs in the page, whose `performance` has Navigation Timing entries.
        const entries = (performance as unknown as { getEntriesByType: (type: string) => Array<NavigationEntry> }).getEntriesByType("navigation")
        const entry = entries[0] as NavigationEntry | undefined
        return entry === undefined
          ? undefined
          : { loadEventStart: entry.loadEventStart, requestStart: entry.requestStart, responseStart: entry.responseStart }
      }),
    catch: (error) => new PageLoadError({ reason: "Navigation", detail: `cannot read the page's timing: ${firstLine(error)}` })
  }).pipe(
    Effect.flatMap((entry): Effect.Effect<PageTiming, PageLoadError> =>
      entry === undefined || entry.loadEventStart <= 0
        ? Effect.fail(new PageLoadError({ reason: "Navigation", detail: "the page has no navigation timing (no load event)" }))
        : Effect.succeed({
          loadTime: entry.loadEventStart / 1000,
          firstByte: entry.requestStart > 0 && entry.responseStart >= entry.requestStart
            ? (entry.responseStart - entry.requestStart) / 1000
            : null
        })
    )
  )

export const make = (config: ChromiumConfig) =>
  Effect.gen(function*() {
    const found = yield* Effect.try({
      try: () => fs.accessSync(config.executablePath, fs.constants.X_OK),
      catch: (error) => new BrowserMissing({ path: config.executablePath, detail: (error as NodeJS.ErrnoException).code ?? String(error) })
    }).pipe(Effect.andThen(Effect.tryPromise({
      try: () => import("playwright-core"),
      catch: (error) => new BrowserMissing({ path: config.executablePath, detail: `playwright-core is not installed (npm ci): ${firstLine(error)}` })
    })))
    const sink = yield* sinkListener
    const sinkPort = (sink.address() as net.AddressInfo).port

    const launch = (proxyPort: number) =>
      Effect.acquireRelease(
        Effect.tryPromise({
          try: () => found.chromium.launch({ executablePath: config.executablePath, headless: true, args: chromiumArgs(proxyPort, sinkPort) }),
          catch: (error) => new PageLoadError({ reason: "Launch", detail: `Chromium did not start: ${firstLine(error)}` })
        }),
        (browser: Browser) => Effect.promise(() => browser.close().catch(() => undefined))
      )

    /** Launch to load event: what --run-timeout bounds, with the browser open until the scope closes. */
    const loaded = (request: PageLoadRequest) =>
      Effect.gen(function*() {
        const browser = yield* launch(request.proxyPort)
        const page = yield* Effect.tryPromise({
          try: () => browser.newPage(),
          catch: (error) => new PageLoadError({ reason: "Launch", detail: `Chromium opened no page: ${firstLine(error)}` })
        })
        const network = yield* trackNetwork(page)
        yield* Effect.tryPromise({
          // The run's own timeout decides; playwright's must not come first.
          try: () => page.goto(request.url, { waitUntil: "load", timeout: 0 }),
          catch: (error) => new PageLoadError({ reason: "Navigation", detail: firstLine(error) })
        })
        return { page, network }
      })

    const load = (request: PageLoadRequest) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const { network, page } = yield* loaded(request).pipe(
          Effect.timeoutFail({
            duration: `${request.timeoutMillis} millis`,
            onTimeout: () => new PageLoadError({ reason: "Timeout", detail: `no load event within ${request.timeoutMillis / 1000} s (--run-timeout)` })
          })
        )
        // The page has loaded: the quiet wait takes what is left of the run's time, 2 s at most.
        const left = started + request.timeoutMillis - (yield* Clock.currentTimeMillis)
        yield* networkQuiet(network, Math.max(0, Math.min(quietLimitMillis, left)))
        return yield* navigationTiming(page)
      }).pipe(Effect.scoped)

    return PageLoads.of({ load })
  })

export const layer = (config: ChromiumConfig): Layer.Layer<PageLoads, BrowserMissing> => Layer.scoped(PageLoads, make(config))
