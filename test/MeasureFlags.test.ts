import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { isolatedUpstream } from "../src/cli/Measure.js"
import { parseFlags } from "../src/domain/Flags.js"
import { parseMeasureFlags, splitWords } from "../src/domain/MeasureFlags.js"
import { figuresAt, figuresDelta, medianRun, quantile, type Run, runsReport } from "../src/domain/RunStats.js"

const measure = (argv: Array<string>) => {
  const result = Either.getOrThrow(parseMeasureFlags(argv))
  if (result._tag !== "Measure") throw new Error("expected measure flags")
  return result.flags
}
const failure = (argv: Array<string>) => Either.flip(parseMeasureFlags(argv)).pipe(Either.getOrThrow).message

const run = (n: number, loadTime: number | null, error: string | null = null): Run => ({
  run: n,
  loadTime,
  firstByte: loadTime === null ? null : loadTime / 4,
  connections: loadTime === null ? null : n,
  requests: loadTime === null ? null : 10,
  bytesDown: loadTime === null ? null : 1000 * n,
  meanSocksSetup: null,
  session: null,
  error,
  sessionError: null,
  startedAt: new Date(n * 1000).toISOString()
})

describe("measure's flags", () => {
  it("defaults follow SPEC §9, and MITM flags go through the proxy's own parser", () => {
    const flags = measure(["http://example.com/"])
    expect(flags).toMatchObject({ url: "http://example.com/", runs: 5, json: false, chromium: "/usr/bin/chromium", runTimeoutMillis: 120_000, compareWith: undefined })
    const proxy = Either.getOrThrow(parseFlags(["--socks-delay", "300ms", "--tor-control", "off"]))
    expect(measure(["--socks-delay=300ms", "http://example.com/", "--tor-control", "off"]).flags).toEqual(proxy._tag === "Run" ? proxy.flags : undefined)
    expect(measure(["https://example.com/a", "--runs", "3", "--json", "--run-timeout", "90s", "--chromium", "/opt/c"])).toMatchObject({
      runs: 3, json: true, runTimeoutMillis: 90_000, chromium: "/opt/c"
    })
  })

  it("--compare-with is B: A's flags with its settings flags on top", () => {
    const flags = measure(["http://example.com/", "--http-delay", "100ms", "--compare-with", "--socks-delay '500ms'"])
    expect(flags.compareWith?.text).toBe("--socks-delay 500ms")
    expect(flags.compareWith?.flags.settings.socksDelay).toEqual({ _tag: "Fixed", millis: 500 })
    expect(flags.compareWith?.flags.settings.httpDelay).toEqual({ _tag: "Fixed", millis: 100 })
    expect(flags.flags.settings.socksDelay).toEqual({ _tag: "None" })
    expect(splitWords(`--a "b c" 'd'`)).toEqual(["--a", "b c", "d"])
  })

  it("refuses what it cannot do, in one line naming the flag", () => {
    expect(failure([])).toMatch(/^measure: expected a URL/)
    expect(failure(["ftp://example.com/"])).toBe(`measure: expected an http:// or https:// URL, got "ftp://example.com/"`)
    expect(failure(["http://a/", "http://b/"])).toMatch(/^measure: one URL only/)
    expect(failure(["http://a/", "--runs", "0"])).toMatch(/^--runs: expected a whole number from 1 to 1000/)
    expect(failure(["http://a/", "--run-timeout", "soon"])).toMatch(/^--run-timeout: expected a duration/)
    expect(failure(["http://a/", "--listen", "127.0.0.1:0"])).toMatch(/^--listen: not a measure flag/)
    expect(failure(["http://a/", "--socks-delay", "fast"])).toMatch(/^--socks-delay: expected 0, a duration/)
    expect(failure(["http://a/", "--compare-with", "--tor-control off"])).toMatch(/^--compare-with: --tor-control cannot differ/)
    expect(failure(["http://a/", "--compare-with", "--http-delay slow"])).toMatch(/^--http-delay: expected/)
    expect(failure(["http://a/", "--compare-with"])).toMatch(/^--compare-with: needs a value/)
  })

  it("each run's upstream is the same SOCKS server with the run's username, unless the URL brought credentials", () => {
    const tor = { _tag: "Socks5" as const, host: "127.0.0.1", port: 9050 }
    expect(isolatedUpstream(tor, "mitm-measure-1-run2")).toEqual({ ...tor, username: "mitm-measure-1-run2", password: "" })
    expect(isolatedUpstream({ ...tor, username: "me", password: "pw" }, "x")).toEqual({ ...tor, username: "me", password: "pw" })
    expect(isolatedUpstream({ _tag: "Direct" }, "x")).toEqual({ _tag: "Direct" })
  })
})

describe("run statistics", () => {
  it("quantiles interpolate between the closest ranks", () => {
    expect(quantile([], 0.5)).toBeNull()
    expect(quantile([3], 0.25)).toBe(3)
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5)
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2)
    expect(quantile([1, 2, 3, 4], 0.75)).toBe(3.25)
  })

  it("failed runs are left out; the median run is the loaded one closest to the median", () => {
    const runs = [run(1, 2), run(2, null, "net::ERR_TIMED_OUT"), run(3, 1), run(4, 4)]
    const report = runsReport(runs)
    expect(report.median.loadTime).toBe(2)
    expect(report.median.bytesDown).toBe(3000)
    expect(report.p25.loadTime).toBe(1.5)
    expect(report.p75.loadTime).toBe(3)
    expect(report.median.meanSocksSetup).toBeNull()
    expect(medianRun(report)?.run).toBe(1)
    expect(figuresAt([run(1, null, "x")], 0.5).loadTime).toBeNull()
    expect(figuresDelta(report.median, figuresAt([run(5, 3)], 0.5))).toMatchObject({ loadTime: 1, connections: 2, meanSocksSetup: null })
  })
})
