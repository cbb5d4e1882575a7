/**
 * `npm start -- measure URL [--runs N] [--json] [flags]` (SPEC §9): a MITM of
 * its own on free loopback ports, built from the same layers as the proxy, and
 * N cold page loads of URL in headless Chromium through it. Each run's figures
 * come from the browser's Navigation Timing and from that run's connections;
 * each run is saved as a session through the MITM's own report API.
 *
 * Stream isolation: Chromium's `--proxy-server` cannot carry SOCKS credentials,
 * so the browser sends none. Instead, before each run the MITM's upstream is
 * set, through the settings service, to the same SOCKS server with a username
 * of that run's own (`mitm-measure-<nonce>-run<i>`): a settings change applies
 * to connections opened after it, which is exactly a run's connections, and the
 * upstream passes it to Tor, whose IsolateSOCKSAuth then builds the run its own
 * circuits. That needs no extra hop between Chromium and MITM (a SOCKS front
 * that adds the username would be one more relay inside what is measured), and
 * the nonce keeps circuits of an earlier `measure` from being reused. An
 * upstream URL with credentials of its own keeps them (the server may need
 * them); `direct` has nothing to isolate.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Clock, Effect, Either, Exit, Layer, Random } from "effect"
import { formatHostPort } from "../domain/Address.js"
import type { Connection } from "../domain/Connection.js"
import type { Flags } from "../domain/Flags.js"
import { torControlAddress } from "../domain/Flags.js"
import { type MeasureFlags, parseMeasureFlags } from "../domain/MeasureFlags.js"
import { figuresDelta, medianRun, noFigures, type Run, runFigures, runsReport } from "../domain/RunStats.js"
import {
  encodeSettings,
  formatDelaySpec,
  formatRate,
  formatUpstream,
  type Settings,
  type UpstreamTarget
} from "../domain/Settings.js"
import * as App from "../layers/App.js"
import * as ChromiumPageLoads from "../layers/ChromiumPageLoads.js"
import { PageLoads, type PageLoadsService } from "../services/PageLoads.js"
import { Proxy } from "../services/Proxy.js"
import { Reporter, type ReporterService } from "../services/Reporter.js"
import { type ListenAddress, ReportServer } from "../services/ReportServer.js"
import { SettingsStore, type SettingsService } from "../services/Settings.js"
import {
  type ConfigurationReport,
  comparisonJson,
  comparisonRows,
  runRow,
  runsJson,
  type SessionComparison,
  statisticsRows,
  tableHeading
} from "./MeasureReport.js"
import { compareSessions, saveSession } from "./ReportApiClient.js"

/** Where `measure` writes: result lines, messages, and (on a terminal only) a progress line. */
export interface MeasureOutput {
  /** One line of the result (stdout). */
  readonly out: (line: string) => void
  /** One line for people (stderr): notices and errors. */
  readonly err: (line: string) => void
  /** Shows where the runs are, in place; undefined when nobody watches (not a TTY, or --json into a pipe). */
  readonly progress: ((text: string) => void) | undefined
}

/** One configuration to measure: A (the flags), and B with `--compare-with`. */
interface Configuration {
  readonly label: "A" | "B"
  /** How the configuration reads: its settings, or the --compare-with flags. */
  readonly flags: string
  readonly settings: Settings
  readonly sessionName: (run: number) => string
  readonly isolationTag: (run: number) => string
}

/** The settings that shape a load, as one line. */
export const describeSettings = (settings: Settings): string =>
  [
    `upstream ${formatUpstream(hidePassword(settings.upstream))}`,
    `socks-delay ${formatDelaySpec(settings.socksDelay)}`,
    `http-delay ${formatDelaySpec(settings.httpDelay)}`,
    `bandwidth ${formatRate(settings.bandwidth)}`,
    `bandwidth-total ${formatRate(settings.bandwidthTotal)}`
  ].join(", ")

const hidePassword = (target: UpstreamTarget): UpstreamTarget =>
  target._tag === "Socks5" && target.password !== undefined && target.password !== "" ? { ...target, password: "***" } : target

/** The upstream of one run: the same SOCKS server, with the run's own username unless the URL brought credentials. */
export const isolatedUpstream = (target: UpstreamTarget, username: string): UpstreamTarget =>
  target._tag === "Direct" || target.username !== undefined ? target : { ...target, username, password: "" }

const isolationNote = (target: UpstreamTarget): string =>
  target._tag === "Direct"
    ? "upstream direct: no SOCKS upstream, so runs are not isolated from each other"
    : target.username !== undefined
    ? "the upstream URL's credentials are used for every run, as given (no per-run stream isolation)"
    : "each run has its own SOCKS username (own Tor circuits under IsolateSOCKSAuth)"

/** The run's connections once the browser has gone: closed, or as they are after 3 s. */
const settledConnections = (reporter: ReporterService) =>
  Effect.gen(function*() {
    for (let waited = 0;; waited += 50) {
      const connections = yield* reporter.connections
      if (waited >= 3000 || connections.every((connection) => connection.state !== "open")) return connections
      yield* Effect.sleep("50 millis")
    }
  })

/** What MITM saw go wrong on the way to the page's host, to put next to the browser's error. */
const mitmView = (url: string, connections: ReadonlyArray<Connection>): string => {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "")
  const failed = connections.find((connection) => connection.host === host && connection.error !== null)
  return failed === undefined ? "" : ` (MITM: connection ${failed.id} to ${formatHostPort(failed.host, failed.port)}: ${failed.error})`
}

const configurations = (measure: MeasureFlags, nonce: string): Array<Configuration> => {
  const name = (run: number) => `measure ${measure.url} run ${run}`
  const a: Configuration = {
    label: "A",
    flags: describeSettings(measure.flags.settings),
    settings: measure.flags.settings,
    sessionName: name,
    isolationTag: (run) => `mitm-measure-${nonce}-${measure.compareWith === undefined ? "" : "a-"}run${run}`
  }
  if (measure.compareWith === undefined) return [a]
  const other = measure.compareWith
  return [a, {
    label: "B",
    flags: other.text,
    settings: other.flags.settings,
    sessionName: (run) => `${name(run)} with ${other.text}`,
    isolationTag: (run) => `mitm-measure-${nonce}-b-run${run}`
  }]
}

/** The measuring MITM: the proxy's own layer graph, on free loopback ports, report port included. */
const mitmLayer = (flags: Flags) =>
  App.layer({
    listen: { host: "127.0.0.1", port: 0 },
    report: { host: "127.0.0.1", port: 0 },
    settings: flags.settings,
    maxClients: flags.maxClients,
    allowRemoteClients: false,
    torControl: { address: torControlAddress(flags), password: flags.torControlPassword }
  })

/** What the runs use of the measuring MITM and the browser. */
interface Bench {
  readonly reporter: ReporterService
  readonly settings: SettingsService
  readonly pages: PageLoadsService
  readonly proxy: ListenAddress
  readonly report: ListenAddress
}

const bench = Effect.gen(function*() {
  const report = (yield* ReportServer).address
  if (report === undefined) return yield* Effect.dieMessage("measure's MITM has no report port")
  return {
    reporter: yield* Reporter,
    settings: yield* SettingsStore,
    pages: yield* PageLoads,
    proxy: (yield* Proxy).address,
    report
  } satisfies Bench
})

/** The lines above the table: what is measured, through what, and how runs are isolated. */
const headerLines = (measure: MeasureFlags, configs: ReadonlyArray<Configuration>, bench: Bench): Array<string> => {
  const compare = configs.length > 1
  return [
    `measure ${measure.url}: ${measure.runs} run${measure.runs === 1 ? "" : "s"}${compare ? " of each configuration, interleaved A, B, A, B" : ""}`,
    `MITM on socks5://${formatHostPort(bench.proxy.host, bench.proxy.port)}, report at http://${formatHostPort(bench.report.host, bench.report.port)}/`,
    ...configs.map((config) => `${compare ? `${config.label}: ` : ""}${config.flags}`),
    isolationNote(measure.flags.settings.upstream),
    "",
    tableHeading()
  ]
}

/**
 * One run: the configuration's settings with the run's own SOCKS username, the
 * measurements reset, one cold page load, that run's connections once the browser
 * has gone, and the run saved as a session (a failure to save is kept on the run).
 */
const runOnce = (bench: Bench, measure: MeasureFlags, config: Configuration, run: number) =>
  Effect.gen(function*() {
    const startedMillis = yield* Clock.currentTimeMillis
    const upstream = isolatedUpstream(config.settings.upstream, config.isolationTag(run))
    yield* Effect.orDie(bench.settings.update(encodeSettings({ ...config.settings, upstream })))
    yield* bench.reporter.reset
    const loaded = yield* Effect.either(bench.pages.load({ url: measure.url, proxyPort: bench.proxy.port, timeoutMillis: measure.runTimeoutMillis }))
    const connections = yield* settledConnections(bench.reporter)
    const saved = yield* Effect.either(saveSession(bench.report, config.sessionName(run)))
    return {
      run,
      ...(Either.isRight(loaded) ? runFigures(loaded.right, connections) : noFigures),
      session: Either.isRight(saved) ? saved.right : null,
      error: Either.isLeft(loaded) ? `${loaded.left.message}${mitmView(measure.url, connections)}` : null,
      sessionError: Either.isLeft(saved) ? saved.left.message : null,
      startedAt: new Date(startedMillis).toISOString()
    } satisfies Run
  })

/** "run 3 of 10 (A 2), 14 s elapsed", every second while `effect` runs, when someone watches. */
const withProgress = <A, E, R>(output: MeasureOutput, began: number, text: string, effect: Effect.Effect<A, E, R>) => {
  const show = output.progress
  if (show === undefined) return effect
  const tick = Effect.map(Clock.currentTimeMillis, (now) => show(`${text}, ${((now - began) / 1000).toFixed(0)} s elapsed`))
  return Effect.raceFirst(effect, Effect.forever(Effect.zipRight(tick, Effect.sleep("1 second"))))
}

/** The runs, interleaved A, B, A, B; each configuration's runs in order. */
const allRuns = (bench: Bench, measure: MeasureFlags, configs: ReadonlyArray<Configuration>, output: MeasureOutput) =>
  Effect.gen(function*() {
    const began = yield* Clock.currentTimeMillis
    const compare = configs.length > 1
    const done = configs.map(() => [] as Array<Run>)
    let step = 0
    for (let run = 1; run <= measure.runs; run++) {
      for (const [index, config] of configs.entries()) {
        const where = `run ${++step} of ${measure.runs * configs.length}${compare ? ` (${config.label} ${run})` : ""}`
        const result = yield* withProgress(output, began, where, runOnce(bench, measure, config, run))
        if (!measure.json) output.out(runRow(result, compare ? config.label : undefined))
        done[index].push(result)
      }
    }
    return configs.map((config, index): ConfigurationReport => ({ label: config.label, flags: config.flags, ...runsReport(done[index]) }))
  })

/** Measures, prints the results, and answers the exit code: 1 when every run (of a configuration) failed. */
const runs = (measure: MeasureFlags, output: MeasureOutput) =>
  Effect.gen(function*() {
    const mitm = yield* bench
    const nonce = (yield* Random.nextIntBetween(0, 0x7fffffff)).toString(16).padStart(8, "0")
    const configs = configurations(measure, nonce)
    if (!measure.json) headerLines(measure, configs, mitm).forEach((line) => output.out(line))
    const reports = yield* allRuns(mitm, measure, configs, output)
    const [a, b] = reports
    if (b === undefined) {
      if (measure.json) output.out(JSON.stringify(runsJson(measure.url, a), null, 2))
      else ["", ...statisticsRows(a)].forEach((line) => output.out(line))
    } else {
      const delta = figuresDelta(a.median, b.median)
      const comparison = yield* compareMedians(mitm.report, a, b)
      if (measure.json) output.out(JSON.stringify(comparisonJson(measure.url, a, b, delta, comparison), null, 2))
      else ["", ...comparisonRows(a, b, delta, comparison)].forEach((line) => output.out(line))
    }
    const allFailed = reports.filter((report) => report.runs.every((run) => run.error !== null))
    for (const failed of allFailed) {
      output.err(`mitm: measure: every run${b === undefined ? "" : ` of ${failed.label}`} failed (${failed.runs[0]?.error ?? "no runs"})`)
    }
    return allFailed.length > 0 ? 1 : 0
  })

/** `/api/compare` of the sessions of the runs whose load times are the medians. */
const compareMedians = (report: ListenAddress, a: ConfigurationReport, b: ConfigurationReport) =>
  Effect.gen(function*() {
    const runA = medianRun(a)
    const runB = medianRun(b)
    const sessions = { a: runA?.session ?? null, b: runB?.session ?? null }
    if (sessions.a === null || sessions.b === null) {
      const why = runA === undefined || runB === undefined
        ? "a configuration has no run that loaded"
        : `the median runs were not saved as sessions (${runA.sessionError ?? runB.sessionError ?? "no id"})`
      return { ...sessions, document: null, error: why } satisfies SessionComparison
    }
    const answer = yield* Effect.either(compareSessions(report, sessions.a, sessions.b))
    return Either.isRight(answer)
      ? { ...sessions, document: answer.right, error: null }
      : { ...sessions, document: null, error: answer.left.message }
  })

/**
 * The whole command: flags, the browser, the MITM, the runs; the exit code as its value
 * (0 measured; 1 every run failed or no Chromium; 2 a bad flag). Never fails.
 */
export const measureCommand = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>,
  output: MeasureOutput
): Effect.Effect<number> => {
  const parsed = parseMeasureFlags(argv, env)
  if (Either.isLeft(parsed)) return Effect.sync(() => (output.err(`mitm: ${parsed.left.message}`), 2))
  const result = parsed.right
  if (result._tag === "Help") return Effect.sync(() => (output.out(result.text), 0))
  const measure = result.flags
  const layer = Layer.mergeAll(
    ChromiumPageLoads.layer({ executablePath: measure.chromium }),
    mitmLayer(measure.flags),
    NodeHttpClient.layer
  )
  return runs(measure, output).pipe(
    Effect.provide(layer),
    Effect.catchTag("BrowserMissing", (error) => Effect.sync(() => (output.err(`mitm: measure: ${error.message}`), 1))),
    Effect.catchAllCause((cause) =>
      Effect.sync(() => {
        output.err(`mitm: measure: cannot start: ${Cause.pretty(cause).split("\n")[0]}`)
        return 1
      })
    )
  )
}

/** stdout, stderr and a progress line on stderr when it is a terminal (none for --json into a pipe). */
export const terminalOutput = (json: boolean): MeasureOutput => {
  let shown = false
  const clear = () => {
    if (shown) process.stderr.write("\r\x1b[K")
    shown = false
  }
  const watched = process.stderr.isTTY === true && !(json && process.stdout.isTTY !== true)
  return {
    out: (line) => {
      clear()
      process.stdout.write(`${line}\n`)
    },
    err: (line) => {
      clear()
      process.stderr.write(`${line}\n`)
    },
    progress: watched
      ? (text) => {
        process.stderr.write(`\r\x1b[K${text}`)
        shown = true
      }
      : undefined
  }
}

/** The entrypoint's `measure`: resolves with the exit code (SIGINT/SIGTERM interrupt the runs and close the browser). */
export const main = (argv: ReadonlyArray<string>): Promise<number> =>
  new Promise((resolve) => {
    const output = terminalOutput(argv.includes("--json"))
    NodeRuntime.runMain(measureCommand(argv, process.env, output), {
      disableErrorReporting: true,
      teardown: (exit) => {
        output.progress?.("")
        resolve(Exit.isSuccess(exit) ? exit.value as number : 130)
      }
    })
  })
