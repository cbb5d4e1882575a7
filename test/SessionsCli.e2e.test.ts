/**
 * The commands of SPEC §8 as a user runs them (the bundle `npm start` runs):
 * `compare A.har B.har [--json]` and `view FILE.har`, with one-line errors and
 * exit 1 for missing or invalid files (2 for arguments they do not take).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { compareSessions } from "../src/domain/Comparison.js"
import type { Measurements } from "../src/domain/Session.js"
import { connectionJson } from "../src/domain/Connection.js"
import { sessionHar } from "../src/http/SessionFile.js"
import { closed, connectionWith, delayEnd, delayStart, httpExchange, socksReply, socksRequest } from "./support/Measurements.js"
import { request } from "./support/ReportClient.js"

beforeAll(() => {
  child.execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" })
})

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the program to its end. */
const run = (args: ReadonlyArray<string>) =>
  Effect.async<Ran>((resume) => {
    child.execFile(process.execPath, ["dist/mitm.mjs", ...args], { timeout: 20_000 }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })))
  })

/** A page load of two requests; `delayMillis` held before each, as `--http-delay` does. */
const load = (delayMillis: number): Measurements => {
  const hold = delayMillis / 1000
  const a = httpExchange("GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", [0.3, 0.4 + hold, 0.45 + hold])
  const b = httpExchange("GET /b HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [0.5 + hold, 0.6 + 2 * hold, 0.62 + 2 * hold], a.state)
  const holds = (exchange: number, at: number) => (delayMillis === 0 ? [] : [[at, delayStart("http", delayMillis, exchange)], [at + hold, delayEnd("http", delayMillis, exchange)]] as const)
  const connection = connectionWith(1, "example.com", [
    [0, socksRequest("example.com")],
    [0.25, socksReply()],
    ...a.events.slice(0, 2),
    ...holds(0, 0.3),
    ...a.events.slice(2),
    ...b.events.slice(0, 2),
    ...holds(1, 0.5 + hold),
    ...b.events.slice(2),
    [1 + 2 * hold, closed(200, 300)]
  ])
  return { connections: [connection], tor: new Map(), circuits: [], sessionStartMillis: Date.UTC(2026, 11, 1, 10), now: 2 }
}

const writeSession = (directory: string, name: string, measurements: Measurements) => {
  const file = path.join(directory, `${name}.har`)
  fs.writeFileSync(file, JSON.stringify(sessionHar({ name, savedAt: "2026-12-01T10:00:00.000Z", source: "mitm" }, measurements, "test")))
  return file
}

const temporaryDirectory = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "mitm-cli-"))),
  (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
)

describe("the commands (SPEC §8)", () => {
  it.scopedLive("compare A.har B.har prints the table of a, b and b − a, where the difference came from, and the servers; --json prints /api/compare's document", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const plain = load(0)
      const delayed = load(300)
      const a = writeSession(directory, "plain", plain)
      const b = writeSession(directory, "delayed", delayed)

      const text = yield* run(["compare", a, b])
      expect(text.code).toBe(0)
      expect(text.stderr).toBe("")
      const lines = text.stdout.split("\n")
      expect(lines[0]).toBe(`a: ${a}`)
      expect(lines.find((line) => line.startsWith("meanWait"))).toMatch(/^meanWait\s+0\.100 s\s+0\.400 s\s+\+0\.300 s$/)
      expect(lines.find((line) => line.startsWith("firstRequestToLastByte"))).toMatch(/^firstRequestToLastByte\s+0\.320 s\s+0\.920 s\s+\+0\.600 s$/)
      expect(lines.find((line) => line.startsWith("requests"))).toMatch(/^requests\s+2\s+2\s+±0$/)
      expect(text.stdout).toMatch(/most of it came from more waiting for responses/)
      expect(lines.find((line) => line.startsWith("example.com"))).toMatch(/^example\.com(\s+1){2}(\s+2){2}\s+0\.100 s\s+0\.400 s\s+\+0\.300 s$/)

      const json = yield* run(["compare", a, b, "--json"])
      expect(json.code).toBe(0)
      expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(compareSessions(plain.connections, delayed.connections))))
      expect(JSON.parse(json.stdout).delta.meanWait).toBe(0.3)
    }))

  it.scopedLive("a missing file, a file that is not JSON or not HAR: one line naming it, exit 1; wrong arguments: exit 2", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const good = writeSession(directory, "good", load(0))
      const notJson = path.join(directory, "notes.har")
      fs.writeFileSync(notJson, "these are notes")
      const notHar = path.join(directory, "other.har")
      fs.writeFileSync(notHar, JSON.stringify({ log: { entries: [{ startedDateTime: "2026-12-01T10:00:00Z", request: { method: "GET" } }] } }))
      const missing = path.join(directory, "missing.har")
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, number, RegExp]> = [
        [["compare", good, missing], 1, new RegExp(`^mitm compare: ${missing}: no such file$`)],
        [["compare", notJson, good], 1, new RegExp(`^mitm compare: ${notJson}: not JSON, so not a HAR file \\(`)],
        [["compare", good, notHar], 1, new RegExp(`^mitm compare: ${notHar}: not a HAR document: log\\.entries\\[0\\]\\.request\\.url: is missing \\(expected an absolute URL`)],
        [["compare", good, directory], 1, new RegExp(`^mitm compare: ${directory}: is a directory, not a HAR file$`)],
        [["compare", good], 2, /^mitm compare: expected two HAR files \(compare A\.har B\.har \[--json\]\), got 1 \(see --help\)$/],
        [["compare", good, good, "--csv"], 2, /^mitm compare: --csv: unknown flag/],
        [["view", missing], 1, new RegExp(`^mitm view: ${missing}: no such file$`)],
        [["view", notHar], 1, new RegExp(`^mitm view: ${notHar}: not a HAR document: `)],
        [["view"], 2, /^mitm view: expected one HAR file/],
        [["view", good, "--report", "nowhere"], 2, /^mitm view: --report: expected HOST:PORT/]
      ]
      for (const [args, code, line] of cases) {
        const ran = yield* run(args)
        expect(ran.code, args.join(" ")).toBe(code)
        expect(ran.stdout, args.join(" ")).toBe("")
        expect(ran.stderr.split("\n").filter((text) => text !== ""), args.join(" ")).toHaveLength(1)
        expect(ran.stderr.trim(), args.join(" ")).toMatch(line)
      }
    }))

  it.scopedLive("view FILE.har serves that file's report with the proxy off, prints its address, and stops on SIGTERM with exit 0", () =>
    Effect.gen(function*() {
      const directory = yield* temporaryDirectory
      const measurements = load(300)
      const file = writeSession(directory, "delayed", measurements)
      const program = yield* Effect.acquireRelease(
        Effect.sync(() =>
          child.spawn(process.execPath, ["dist/mitm.mjs", "view", file, "--report", "127.0.0.1:0", "--sessions-dir", path.join(directory, "sessions")], {
            stdio: ["ignore", "pipe", "pipe"]
          })
        ),
        (program) => Effect.sync(() => program.kill("SIGKILL"))
      )
      const line = yield* Effect.async<string, Error>((resume) => {
        let printed = ""
        program.stdout.on("data", (chunk: Buffer) => {
          printed += chunk.toString()
          if (printed.includes("\n")) resume(Effect.succeed(printed.trim()))
        })
        program.once("exit", () => resume(Effect.fail(new Error(`exited: ${printed}`))))
      }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("no address printed") }))
      const match = /^mitm: report of (.+) \(1 connection\) at http:\/\/127\.0\.0\.1:(\d+)\/ \(proxy off; Ctrl-C stops\)$/.exec(line)
      expect(match?.[1]).toBe(file)
      const port = Number(match![2])
      const host = { host: `127.0.0.1:${port}` }
      const connections = yield* request(port, "GET", "/api/connections", { headers: host })
      expect(JSON.parse(connections.body)).toEqual(measurements.connections.map((c) => JSON.parse(JSON.stringify(connectionJson(c, null)))))
      const report = yield* request(port, "GET", "/", { headers: host })
      expect(report.status).toBe(200)
      expect(report.body).toContain(`<svg id="timegraph"`)
      expect(report.body).toMatch(/delay injected by MITM/)
      const exited = yield* Effect.async<number | null>((resume) => {
        program.once("exit", (code) => resume(Effect.succeed(code)))
        program.kill("SIGTERM")
      })
      expect(exited).toBe(0)
    }))
})
