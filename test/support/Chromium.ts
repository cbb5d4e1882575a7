/**
 * Debian's Chromium, headless, with MITM as its SOCKS5 proxy for every
 * address (loopback included), closed with the test's scope. It runs with the
 * switches `measure` uses (SPEC §9): Chromium's own calls home (component
 * updates, Gaia) go to a closed loopback port outside the proxy, so the tests
 * measure only the pages they load.
 */
import { Effect } from "effect"
import { chromium } from "playwright-core"
import { chromiumArgs } from "../../src/layers/ChromiumPageLoads.js"

/** A loopback port nothing listens on (the discard service's): Chromium's calls home are refused there at once. */
const closedPort = 9

export const chromiumThrough = (proxyPort: number) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
        headless: true,
        args: [...chromiumArgs(proxyPort, closedPort), "--no-first-run"]
      })
    ),
    (browser) => Effect.promise(() => browser.close())
  )
