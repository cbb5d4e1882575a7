/**
 * The real program as a user starts it (`npm start`: the bundle scripts/build.mjs makes):
 * start-up lines, a bad flag, and SIGTERM in the middle of traffic (listeners close,
 * connections close, exit 0).
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as child from "node:child_process"
import { tcpServer } from "./support/Loopback.js"
import { socks5Open } from "./support/SocksClient.js"

const main = ["dist/mitm.mjs"]

beforeAll(() => {
  child.execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" })
})

const start = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => child.spawn(process.execPath, [...main, ...args], { stdio: ["ignore", "pipe", "pipe"] })),
    (program) => Effect.sync(() => program.kill("SIGKILL"))
  )

/** Everything a program printed so far, kept per program so no line is missed between waits. */
const printed = new WeakMap<child.ChildProcess, { text: string }>()

const output = (program: child.ChildProcess, pattern: RegExp) =>
  Effect.async<RegExpMatchArray, Error>((resume) => {
    let seen = printed.get(program)
    if (seen === undefined) {
      const record = { text: "" }
      printed.set(program, record)
      program.stdout?.on("data", (chunk: Buffer) => {
        record.text += chunk.toString()
      })
      seen = record
    }
    const store = seen
    const check = () => {
      const match = pattern.exec(store.text)
      if (match === null) return false
      program.stdout?.off("data", check)
      resume(Effect.succeed(match))
      return true
    }
    if (check()) return
    program.stdout?.on("data", check)
    program.once("exit", () => resume(Effect.fail(new Error(`exited before printing ${pattern}: ${store.text}`))))
  }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`no ${pattern}`) }))

const exited = (program: child.ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (program.exitCode !== null) return resume(Effect.succeed(program.exitCode))
    program.once("exit", (code) => resume(Effect.succeed(code)))
  })

describe("the program", () => {
  it.scopedLive("prints its listeners with the chosen ports, and SIGTERM during traffic exits 0 within seconds", () =>
    Effect.gen(function*() {
      // An origin that trickles bytes forever: the connection is busy when the signal comes.
      const origin = yield* tcpServer((socket) => {
        socket.write("x".repeat(1000))
        socket.resume()
      })
      const mitm = yield* start(["--listen", "127.0.0.1:0", "--report", "127.0.0.1:0", "--upstream", "direct"])
      const [, port] = yield* output(mitm, /SOCKS proxy listening on 127\.0\.0\.1:(\d+)\n/)
      yield* output(mitm, /report at http:\/\/127\.0\.0\.1:\d+\/ and http:\/\/mitm\.proxy\//)
      const { connection } = yield* socks5Open(Number(port), "127.0.0.1", origin.port)
      yield* connection.read(1000)
      const signalled = process.hrtime.bigint()
      mitm.kill("SIGTERM")
      expect(yield* exited(mitm)).toBe(0)
      expect(Number(process.hrtime.bigint() - signalled) / 1e9).toBeLessThan(5)
      // The client's connection was closed, not left hanging.
      yield* connection.readToEnd
      expect(connection.socket.readableEnded || connection.socket.destroyed).toBe(true)
    }), { timeout: 40_000 })

  it.scopedLive("a bad flag exits 2 with one line naming the flag and what it accepts", () =>
    Effect.gen(function*() {
      const result = child.spawnSync(process.execPath, [...main, "--http-delay", "fast"], { encoding: "utf8" })
      expect(result.status).toBe(2)
      expect(result.stderr.trim().split("\n")).toHaveLength(1)
      expect(result.stderr).toMatch(/^mitm: --http-delay: expected 0, a duration like 250ms/)
    }), { timeout: 40_000 })
})
