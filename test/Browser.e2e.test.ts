/**
 * One real browser: Debian's Chromium, through MITM, loads a page that pulls
 * resources from four loopback origins, then reads the report in-band at
 * http://mitm.proxy/. MITM's upstream is an in-test SOCKS server that reaches
 * only 127.0.0.0/8, so Chromium's own calls to Google go nowhere.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { chromiumThrough } from "./support/Chromium.js"
import { eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { loopbackSocksServer } from "./support/LoopbackSocksServer.js"

const artifacts = path.resolve("test-artifacts")
/** A small asset; the slow origin answers after a pause so the graph has something to show. */
const asset = (name: string, origin: string, pauseMillis: number) => ({ name, origin, pauseMillis })

describe("in a real browser", () => {
  it.scopedLive("a page load through MITM shows in the report: graph, connection page, settings and HAR", () =>
    Effect.gen(function*() {
      const serve = (label: string, pauseMillis: number) =>
        httpOrigin((request, response) => {
          const send = () => {
            const url = request.url ?? "/"
            if (url.endsWith(".css")) response.writeHead(200, { "content-type": "text/css" }).end(`/* ${label} */ body{margin:1em}`)
            else if (url.endsWith(".js")) response.writeHead(200, { "content-type": "text/javascript" }).end(`window.loaded=(window.loaded||0)+1`)
            else if (url.endsWith(".svg")) {
              response.writeHead(200, { "content-type": "image/svg+xml", "x-origin": `${label} <script>alert(1)</script> "q" </svg>` })
                .end(`<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20" fill="#4a8"/></svg>`)
            } else response.writeHead(404).end()
          }
          Effect.runFork(Effect.sleep(`${pauseMillis} millis`).pipe(Effect.andThen(send)))
        }, label)
      const origins = [
        yield* serve("127.0.0.2", 0),
        yield* serve("127.0.0.3", 20),
        yield* serve("127.0.0.4", 60),
        yield* serve("127.0.0.5", 250)
      ]
      const assets = origins.flatMap((origin, index) => [
        asset(`style${index}.css`, `${origin.host}:${origin.port}`, 0),
        asset(`script${index}.js`, `${origin.host}:${origin.port}`, 0),
        ...[0, 1, 2, 3].map((n) => asset(`image${index}-${n}.svg`, `${origin.host}:${origin.port}`, 0))
      ])
      const pageHtml = `<!doctype html><html><head><title>page under test</title>
${assets.filter((a) => a.name.endsWith(".css")).map((a) => `<link rel="stylesheet" href="http://${a.origin}/${a.name}">`).join("\n")}
</head><body><h1>Twenty-five resources from four origins</h1>
${assets.filter((a) => a.name.endsWith(".svg")).map((a) => `<img src="http://${a.origin}/${a.name}" width="20" height="20">`).join("\n")}
${assets.filter((a) => a.name.endsWith(".js")).map((a) => `<script src="http://${a.origin}/${a.name}"></script>`).join("\n")}
<img src="http://${origins[1].host}:${origins[1].port}/hostile/%22%3E%3Cscript%3Ealert(2)%3C/script%3E%3C/svg%3E.svg" width="20" height="20">
</body></html>`
      const home = yield* httpOrigin((_request, response) => {
        response.writeHead(200, { "content-type": "text/html" }).end(pageHtml)
      }, "127.0.0.6")

      const upstream = yield* loopbackSocksServer
      const mitm = yield* startMitm({ upstream: { _tag: "Socks5", host: "127.0.0.1", port: upstream.port } })
      const browser = yield* chromiumThrough(mitm.proxy.port)
      const context = yield* Effect.promise(() => browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 1000 } }))
      const page = yield* Effect.promise(() => context.newPage())
      const dialogs: Array<string> = []
      page.on("dialog", (dialog) => {
        dialogs.push(dialog.message())
        void dialog.dismiss()
      })

      yield* Effect.promise(() => page.goto(`http://${home.host}:${home.port}/`, { waitUntil: "load" }))
      expect(yield* Effect.promise(() => page.evaluate("window.loaded"))).toBe(4)

      const loopbackConnections = (yield* mitm.connections).filter((c) => c.host.startsWith("127."))
      expect(new Set(loopbackConnections.map((c) => `${c.host}:${c.port}`)).size).toBe(5)
      const requests = loopbackConnections.flatMap((c) => c.events.filter((e) => e.type === "HttpRequestStart"))
      expect(requests.length).toBeGreaterThanOrEqual(26)

      // The report, in-band through the same proxy.
      yield* Effect.promise(() => page.goto("http://mitm.proxy/", { waitUntil: "load" }))
      const shown = yield* mitm.connections
      const rows = yield* Effect.promise(() => page.locator("svg#timegraph g.row").count())
      expect(rows).toBeGreaterThanOrEqual(loopbackConnections.length)
      expect(rows).toBeLessThanOrEqual(shown.length)
      const linkedBars = yield* Effect.promise(() => page.locator("svg#timegraph g.row a[href^='/connections/'] title").count())
      expect(linkedBars).toBeGreaterThanOrEqual(rows)
      const serverRows = yield* Effect.promise(() => page.locator("#servers tbody tr td:first-child").allInnerTexts())
      for (const host of ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]) expect(serverRows).toContain(host)
      fs.mkdirSync(artifacts, { recursive: true })
      yield* Effect.promise(() => page.screenshot({ path: path.join(artifacts, "report.png"), fullPage: true }))

      // A bar leads to its connection page.
      const slow = shown.find((c) => c.host === "127.0.0.5")!
      // The report updates live, without a reload: a new request from another tab shows up.
      const rowsBefore = yield* Effect.promise(() => page.locator("svg#timegraph g.row").count())
      const other = yield* Effect.promise(() => context.newPage())
      yield* Effect.promise(() => other.goto(`http://${origins[2].host}:${origins[2].port}/late.css`))
      yield* eventually(Effect.map(Effect.promise(() => page.locator("svg#timegraph g.row").count()), (rows) => rows > rowsBefore ? rows : undefined))
      yield* Effect.promise(() => other.close())

      // With live updates paused, a bar leads to its connection page.
      yield* Effect.promise(() => page.goto("http://mitm.proxy/?live=0"))
      yield* Effect.promise(() => page.locator(`svg#timegraph g.row[data-id="${slow.id}"] rect.waiting`).first().click())
      yield* Effect.promise(() => page.waitForURL(`http://mitm.proxy/connections/${slow.id}`, { waitUntil: "commit" }))
      const log = yield* Effect.promise(() => page.locator("#log").innerText())
      expect(log).toMatch(/^000\.\d{3} {2}SocksRequestStart {3,}127\.0\.0\.5:\d+/)
      expect(log).toMatch(/HttpRequestStart {2,}GET \/\S+ HTTP\/1\.1/)
      expect(log).not.toMatch(/User-Agent:/)

      // A setting changes through the settings form, and the log shows all header lines.
      yield* Effect.promise(() => page.goto("http://mitm.proxy/settings"))
      yield* Effect.promise(() => page.selectOption("#headers", "all"))
      yield* Effect.promise(() => page.click("form.settings button[type=submit]"))
      yield* Effect.promise(() => page.waitForURL(/notice=saved/))
      yield* Effect.promise(() => page.goto(`http://mitm.proxy/connections/${slow.id}`))
      expect(yield* Effect.promise(() => page.locator("#log").innerText())).toMatch(/User-Agent: /)
      // An invalid value is refused next to its field.
      yield* Effect.promise(() => page.goto("http://mitm.proxy/settings"))
      yield* Effect.promise(() => page.fill("#socksDelay", "soon"))
      yield* Effect.promise(() => page.click("form.settings button[type=submit]"))
      expect(yield* Effect.promise(() => page.locator("#error-socksDelay").innerText())).toMatch(/socksDelay: expected 0, a duration/)

      // The HAR downloads as a file.
      yield* Effect.promise(() => page.goto("http://mitm.proxy/"))
      const [download] = yield* Effect.promise(() => Promise.all([page.waitForEvent("download"), page.click("header nav a[href='/har']")]))
      const harPath = path.join(artifacts, "report.har")
      yield* Effect.promise(() => download.saveAs(harPath))
      const har = JSON.parse(fs.readFileSync(harPath, "utf8"))
      expect(har.log.version).toBe("1.2")
      expect(har.log.entries.length).toBeGreaterThanOrEqual(26)

      // Hostile content showed as text: nothing ran.
      const hostile = yield* Effect.promise(() => page.content())
      expect(hostile).not.toContain("<script>alert(2)</script>")
      expect(dialogs).toEqual([])
      expect(upstream.refused.every((target) => !target.startsWith("127."))).toBe(true)
    }), { timeout: 120_000 })
})
