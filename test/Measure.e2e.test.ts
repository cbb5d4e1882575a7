/**
 * `measure` (SPEC §9) end to end: Debian's Chromium loads a page of known shape
 * through measure's own MITM, whose upstream is an in-test SOCKS server that
 * reaches only the page's loopback origins (so Chromium's own calls to Google,
 * if any, would be refused and counted). The command runs in-process for the
 * figures and as the real program (the bundle) for exit codes and messages.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as child from "node:child_process"
import type * as http from "node:http"
import * as path from "node:path"
import { measureCommand } from "../src/cli/Measure.js"
import type { Run, RunFigures } from "../src/domain/RunStats.js"
import { type Address, closedPort, httpOrigin } from "./support/Loopback.js"
import { loopbackSocksServer, loopbackSocksServerWith } from "./support/LoopbackSocksServer.js"

/** The document's origin, and two origins with a stylesheet, a script and an image each; the slow one pauses 200 ms. */
const pauseMillis = 200

const pageOfKnownShape = Effect.gen(function*() {
  const received: Array<string> = []
  const asset = (label: string, pause: number): http.RequestListener => (request, response) => {
    received.push(`${label} ${request.url}`)
    const send = () => {
      const url = request.url ?? "/"
      if (url.endsWith(".css")) response.writeHead(200, { "content-type": "text/css" }).end(`/* ${label} */ body { margin: 1em }`)
      else if (url.endsWith(".js")) response.writeHead(200, { "content-type": "text/javascript" }).end(`window.loaded = (window.loaded || 0) + 1`)
      else if (url.endsWith(".svg")) {
        response.writeHead(200, { "content-type": "image/svg+xml" })
          .end(`<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20" fill="#48a"/></svg>`)
      } else response.writeHead(404).end()
    }
    setTimeout(send, pause)
  }
  const fast = yield* httpOrigin(asset("fast", 0), "127.0.0.2")
  const slow = yield* httpOrigin(asset("slow", pauseMillis), "127.0.0.3")
  const resources = [fast, slow].map((origin) => `http://${origin.host}:${origin.port}`)
  const html = `<!doctype html><html><head><title>known shape</title>
${resources.map((base) => `<link rel="stylesheet" href="${base}/style.css">`).join("\n")}
</head><body><h1>A document and six resources on two origins</h1>
${resources.map((base) => `<img src="${base}/image.svg" width="20" height="20">`).join("\n")}
${resources.map((base) => `<script src="${base}/script.js"></script>`).join("\n")}
</body></html>`
  const home = yield* httpOrigin((request, response) => {
    received.push(`home ${request.url}`)
    if (request.url === "/") response.writeHead(200, { "content-type": "text/html" }).end(html)
    else response.writeHead(404).end()
  }, "127.0.0.4")
  const origins: ReadonlyArray<Address> = [home, fast, slow]
  const allowed = new Set(origins.map((origin) => `${origin.host}:${origin.port}`))
  // Refuses everything but the page's three origins: anything else Chromium asks for shows up in `refused`.
  const upstream = yield* loopbackSocksServerWith({ allow: (host, port) => allowed.has(`${host}:${port}`) })
  return { url: `http://${home.host}:${home.port}/`, origins, allowed, received, upstream }
})

interface Measured {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `npm start -- measure ARGS`, in this process. */
const measured = (argv: ReadonlyArray<string>): Promise<Measured> => {
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  return Effect.runPromise(
    measureCommand(argv, {}, { out: (line) => stdout.push(line), err: (line) => stderr.push(line), progress: undefined })
  ).then((code) => ({ code, stdout: stdout.join("\n"), stderr: stderr.join("\n") }))
}

const opened = () => Effect.runPromise(Scope.make())

interface RunsDocument {
  readonly url: string
  readonly runs: ReadonlyArray<Run>
  readonly median: RunFigures
  readonly p25: RunFigures
  readonly p75: RunFigures
}

const middle = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[(values.length - 1) / 2]

describe("measure URL --runs 3 --json", () => {
  let scope: Scope.CloseableScope
  let page: Effect.Effect.Success<typeof pageOfKnownShape>
  let result: Measured
  let document: RunsDocument

  beforeAll(async () => {
    scope = await opened()
    page = await Effect.runPromise(Scope.extend(pageOfKnownShape, scope))
    result = await measured([
      page.url, "--runs", "3", "--json", "--run-timeout", "60s",
      "--upstream", `socks5://127.0.0.1:${page.upstream.port}`, "--tor-control", "off"
    ])
    document = JSON.parse(result.stdout)
  }, 150_000)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  it("gives 3 runs with the page's requests, connections and a load time above the 200 ms pause", () => {
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(document.url).toBe(page.url)
    expect(document.runs.map((run) => run.run)).toEqual([1, 2, 3])
    for (const run of document.runs) {
      expect(run.error).toBeNull()
      // The document and its six resources, at least (Chromium may ask for /favicon.ico too).
      expect(run.requests).toBeGreaterThanOrEqual(7)
      expect(run.connections).toBeGreaterThanOrEqual(3)
      expect(run.loadTime).toBeGreaterThan(pauseMillis / 1000)
      // Loopback answers in well under a millisecond at times: at least 0, never null.
      expect(run.firstByte).toBeGreaterThanOrEqual(0)
      expect(run.firstByte).toBeLessThan(run.loadTime!)
      expect(run.bytesDown).toBeGreaterThan(0)
      expect(run.meanSocksSetup).toBeGreaterThanOrEqual(0)
    }
    // Every request that reached an origin was counted in its run, and nothing else.
    expect(document.runs.reduce((sum, run) => sum + run.requests!, 0)).toBe(page.received.length)
    expect(page.received.filter((line) => line.startsWith("slow"))).toHaveLength(3 * 3)
    // The statistics are those of the runs.
    expect(document.median.loadTime).toBe(middle(document.runs.map((run) => run.loadTime!)))
    expect(document.median.requests).toBe(middle(document.runs.map((run) => run.requests!)))
    expect(document.p25.loadTime!).toBeLessThanOrEqual(document.median.loadTime!)
    expect(document.p75.loadTime!).toBeGreaterThanOrEqual(document.median.loadTime!)
  })

  it("gives each run its own SOCKS username, and every connection of a run carries it", () => {
    const usernames = page.upstream.accepted.map((request) => request.username)
    expect(new Set(usernames).size).toBe(3)
    document.runs.forEach((run) => {
      const own = usernames.filter((name) => name !== null && name.endsWith(`-run${run.run}`))
      expect(own).toHaveLength(run.connections!)
    })
  })

  it("shows no connection to any host but the page's (Chromium's background traffic is off)", () => {
    expect(page.upstream.refused).toEqual([])
    for (const request of page.upstream.accepted) expect(page.allowed.has(request.target)).toBe(true)
    expect(document.runs.reduce((sum, run) => sum + run.connections!, 0)).toBe(page.upstream.accepted.length)
  })

  // Needs POST /api/sessions (SPEC §8, the sessions branch): until then each run says why it was not saved.
  it("saves each run as a session", () => {
    for (const run of document.runs) {
      expect(run.sessionError).toBeNull()
      expect(typeof run.session).toBe("string")
    }
    expect(new Set(document.runs.map((run) => run.session)).size).toBe(3)
  })
})

describe("measure --socks-delay 300ms --compare-with \"--socks-delay 0\"", () => {
  let scope: Scope.CloseableScope
  let result: Measured
  let document: {
    readonly a: RunsDocument & { readonly flags: string }
    readonly b: RunsDocument & { readonly flags: string }
    readonly delta: RunFigures
    readonly compare: unknown
    readonly compareError: string | null
  }

  beforeAll(async () => {
    scope = await opened()
    const page = await Effect.runPromise(Scope.extend(pageOfKnownShape, scope))
    result = await measured([
      page.url, "--runs", "2", "--json", "--run-timeout", "60s", "--socks-delay", "300ms", "--compare-with", "--socks-delay 0",
      "--upstream", `socks5://127.0.0.1:${page.upstream.port}`, "--tor-control", "off"
    ])
    document = JSON.parse(result.stdout)
  }, 150_000)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  it("--socks-delay 300ms raises meanSocksSetup by at least 0.3 s in every run, above every run without it", () => {
    expect(result.code).toBe(0)
    expect(document.a.flags).toMatch(/socks-delay 300ms/)
    expect(document.b.flags).toBe("--socks-delay 0")
    for (const run of [...document.a.runs, ...document.b.runs]) expect(run.error).toBeNull()
    // Every connection of A was held 300 ms before it went upstream; B's went at once. (How far the
    // medians differ beyond that depends on the machine's load, which the undelayed setups feel too.)
    const delayed = document.a.runs.map((run) => run.meanSocksSetup!)
    const undelayed = document.b.runs.map((run) => run.meanSocksSetup!)
    for (const setup of delayed) expect(setup).toBeGreaterThanOrEqual(0.3)
    expect(Math.min(...delayed)).toBeGreaterThan(Math.max(...undelayed))
    expect(document.delta.meanSocksSetup).toBe(
      Math.round((document.b.median.meanSocksSetup! - document.a.median.meanSocksSetup!) * 1000) / 1000
    )
    // The page waits for two setups in a row (the document's, then another origin's) and the 200 ms pause.
    for (const run of document.a.runs) expect(run.loadTime).toBeGreaterThanOrEqual(0.3 + 0.3 + pauseMillis / 1000)
  })

  it("runs the two configurations interleaved: A, B, A, B", () => {
    const order = [
      ...document.a.runs.map((run) => ({ label: `A${run.run}`, at: Date.parse(run.startedAt) })),
      ...document.b.runs.map((run) => ({ label: `B${run.run}`, at: Date.parse(run.startedAt) }))
    ].sort((x, y) => x.at - y.at)
    expect(order.map((entry) => entry.label)).toEqual(["A1", "B1", "A2", "B2"])
  })

  // Needs the sessions branch (POST /api/sessions and GET /api/compare).
  it("compares the median runs' sessions through /api/compare", () => {
    expect(document.compareError).toBeNull()
    expect(document.compare).toMatchObject({ a: { connections: expect.any(Number) }, b: { connections: expect.any(Number) } })
  })
})

describe("the measure command", () => {
  const bundle = path.resolve("dist/measure-test.mjs")
  beforeAll(() => {
    // Its own bundle, so a parallel test building dist/mitm.mjs is never half-read.
    child.execFileSync(process.execPath, ["scripts/build.mjs", bundle], { stdio: "inherit" })
  }, 60_000)

  const program = (args: ReadonlyArray<string>) =>
    Effect.async<Measured>((resume) => {
      child.execFile(process.execPath, [bundle, "measure", ...args], { timeout: 90_000 }, (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout, stderr })))
    })

  it.scopedLive("a dead URL gives each run its error, no statistics, and exit 1", () =>
    Effect.gen(function*() {
      const upstream = yield* loopbackSocksServer
      const dead = yield* closedPort
      const url = `http://127.0.0.1:${dead}/`
      const result = yield* program([url, "--runs", "2", "--json", "--upstream", `socks5://127.0.0.1:${upstream.port}`, "--tor-control", "off"])
      expect(result.code).toBe(1)
      const document = JSON.parse(result.stdout) as RunsDocument
      expect(document.runs).toHaveLength(2)
      for (const run of document.runs) {
        // Chromium's error, and what MITM saw on the way.
        expect(run.error).toMatch(new RegExp(`^net::ERR_\\w+ at ${url.replace(/[.]/g, "\\.")} \\(MITM: connection \\d+ to 127\\.0\\.0\\.1:${dead}: `))
        expect(run.loadTime).toBeNull()
      }
      expect(document.median).toEqual({ loadTime: null, firstByte: null, connections: null, requests: null, bytesDown: null, meanSocksSetup: null })
      // JSON into a pipe: no progress, only the one line that says why it failed.
      expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^mitm: measure: every run failed \(net::ERR_/)])
    }), { timeout: 120_000 })

  it.scopedLive("without Chromium it exits 1 and says how to install it", () =>
    Effect.gen(function*() {
      const result = yield* program(["http://127.0.0.1:1/", "--chromium", "/nonexistent/chromium"])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe("")
      expect(result.stderr).toBe(
        "mitm: measure: no Chromium at /nonexistent/chromium (ENOENT); install Debian's with: apt-get install -y chromium (or name another with --chromium PATH)\n"
      )
    }), { timeout: 60_000 })

  it.scopedLive("a bad measure flag exits 2 with one line naming it", () =>
    Effect.gen(function*() {
      const result = yield* program(["http://127.0.0.1:1/", "--runs", "many"])
      expect(result.code).toBe(2)
      expect(result.stderr).toBe(`mitm: --runs: expected a whole number from 1 to 1000, got "many"\n`)
    }), { timeout: 60_000 })
})
