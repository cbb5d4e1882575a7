/**
 * Measured page loads (SPEC §9): what one run measured, and the median and
 * quartiles over the runs that succeeded. Pure: the browser's timings and
 * MITM's connections in, numbers out.
 */
import type { Connection } from "./Connection.js"
import { exchanges } from "./Exchange.js"
import { socksSetupTime } from "./Summary.js"

/** The statistics of one run; null where nothing was there to measure. */
export interface RunFigures {
  /** Navigation start → load event, seconds (the browser's Navigation Timing). */
  readonly loadTime: number | null
  /** The main document's request → its first response byte, seconds. */
  readonly firstByte: number | null
  readonly connections: number | null
  readonly requests: number | null
  readonly bytesDown: number | null
  /** Mean SOCKS request → reply over the run's connections (Tor's stream setup, injected delay included). */
  readonly meanSocksSetup: number | null
}

export const figureNames = ["loadTime", "firstByte", "connections", "requests", "bytesDown", "meanSocksSetup"] as const
export type FigureName = typeof figureNames[number]

/** One run as `--json` prints it. */
export interface Run extends RunFigures {
  readonly run: number
  /** The saved session's id; null when it was not saved (see `sessionError`). */
  readonly session: string | null
  /** Why the run failed (timeout, net error); null when it loaded. A failed run is left out of the statistics. */
  readonly error: string | null
  /** Why saving the run as a session failed; null when it was saved. The run's figures stand either way. */
  readonly sessionError: string | null
  /** When the run began (ISO 8601): the order of interleaved runs. */
  readonly startedAt: string
}

/** What the browser reports about the page load, seconds. */
export interface PageTiming {
  readonly loadTime: number
  readonly firstByte: number | null
}

const roundMillis = (seconds: number): number => Math.round(seconds * 1000) / 1000

/**
 * MITM's side of a run: its connections, the exchanges on them (HTTP requests, and the
 * exchanges inferred on encrypted connections, so an HTTPS page counts too), bytes from
 * servers and the mean SOCKS setup.
 */
export const connectionFigures = (
  connections: ReadonlyArray<Connection>
): Pick<RunFigures, "connections" | "requests" | "bytesDown" | "meanSocksSetup"> => {
  let requests = 0
  let bytesDown = 0
  let setupSum = 0
  let setups = 0
  for (const connection of connections) {
    requests += exchanges(connection).length
    bytesDown += connection.bytesDown
    const setup = socksSetupTime(connection)
    if (setup === undefined) continue
    setupSum += setup
    setups++
  }
  return {
    connections: connections.length,
    requests,
    bytesDown,
    meanSocksSetup: setups === 0 ? null : roundMillis(setupSum / setups)
  }
}

export const runFigures = (timing: PageTiming, connections: ReadonlyArray<Connection>): RunFigures => ({
  loadTime: roundMillis(timing.loadTime),
  firstByte: timing.firstByte === null ? null : roundMillis(timing.firstByte),
  ...connectionFigures(connections)
})

export const noFigures: RunFigures = {
  loadTime: null,
  firstByte: null,
  connections: null,
  requests: null,
  bytesDown: null,
  meanSocksSetup: null
}

/**
 * The q-quantile (0 ≤ q ≤ 1) by linear interpolation between the closest ranks
 * (Hyndman & Fan type 7, what spreadsheets and NumPy do by default); null for no values.
 */
export const quantile = (values: ReadonlyArray<number>, q: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const position = (sorted.length - 1) * q
  const below = Math.floor(position)
  const above = Math.ceil(position)
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below)
}

/** One quantile of each figure over the successful runs. */
export const figuresAt = (runs: ReadonlyArray<Run>, q: number): RunFigures => {
  const loaded = runs.filter((run) => run.error === null)
  const at = (name: FigureName): number | null => {
    const value = quantile(loaded.flatMap((run) => run[name] === null ? [] : [run[name]!]), q)
    return value === null ? null : name === "connections" || name === "requests" || name === "bytesDown" ? value : roundMillis(value)
  }
  return {
    loadTime: at("loadTime"),
    firstByte: at("firstByte"),
    connections: at("connections"),
    requests: at("requests"),
    bytesDown: at("bytesDown"),
    meanSocksSetup: at("meanSocksSetup")
  }
}

/** The SPEC §9 document of one configuration's runs. */
export interface RunsReport {
  readonly runs: ReadonlyArray<Run>
  readonly median: RunFigures
  readonly p25: RunFigures
  readonly p75: RunFigures
}

export const runsReport = (runs: ReadonlyArray<Run>): RunsReport => ({
  runs,
  median: figuresAt(runs, 0.5),
  p25: figuresAt(runs, 0.25),
  p75: figuresAt(runs, 0.75)
})

/** b − a for each figure; null where either is missing. */
export const figuresDelta = (a: RunFigures, b: RunFigures): RunFigures => {
  const minus = (name: FigureName): number | null =>
    a[name] === null || b[name] === null ? null : roundMillis(b[name]! - a[name]!)
  return {
    loadTime: minus("loadTime"),
    firstByte: minus("firstByte"),
    connections: minus("connections"),
    requests: minus("requests"),
    bytesDown: minus("bytesDown"),
    meanSocksSetup: minus("meanSocksSetup")
  }
}

/** The successful run whose load time is closest to the median: the run that stands for the configuration. */
export const medianRun = (report: RunsReport): Run | undefined => {
  const median = report.median.loadTime
  if (median === null) return undefined
  let best: Run | undefined
  for (const run of report.runs) {
    if (run.error !== null || run.loadTime === null) continue
    if (best === undefined || Math.abs(run.loadTime - median) < Math.abs(best.loadTime! - median)) best = run
  }
  return best
}
