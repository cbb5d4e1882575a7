/**
 * Debian's Chromium, headless, with MITM as its SOCKS5 proxy for every
 * address (loopback included), closed with the test's scope. The flags keep
 * it from calling home; what it calls anyway goes through MITM's upstream.
 */
import { Effect } from "effect"
import { chromium } from "playwright-core"

export const chromiumThrough = (proxyPort: number) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
        headless: true,
        args: [
          `--proxy-server=socks5://127.0.0.1:${proxyPort}`,
          "--proxy-bypass-list=<-loopback>",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-features=OptimizationHints,MediaRouter,Translate"
        ]
      })
    ),
    (browser) => Effect.promise(() => browser.close())
  )
