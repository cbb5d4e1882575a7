/**
 * What `measure` prints: a row per run as it finishes, the median and
 * quartiles, and for `--compare-with` both configurations and B − A; or, with
 * `--json`, the SPEC §9 document.
 */
import { figureNames, type FigureName, type Run, type RunFigures, type RunsReport } from "../domain/RunStats.js"

/** One measured configuration: its label, the flags that make it, its runs. */
export interface ConfigurationReport extends RunsReport {
  readonly label: "A" | "B"
  readonly flags: string
}

/** `/api/compare` of the two median runs' sessions, or why there is none. */
export interface SessionComparison {
  readonly a: string | null
  readonly b: string | null
  readonly document: unknown
  readonly error: string | null
}

const seconds = new Set<FigureName>(["loadTime", "firstByte", "meanSocksSetup"])

const formatFigure = (name: FigureName, value: number | null): string =>
  value === null ? "-" : seconds.has(name) ? value.toFixed(3) : Number.isInteger(value) ? String(value) : value.toFixed(1)

const headings: Record<FigureName, string> = {
  loadTime: "loadTime s",
  firstByte: "firstByte s",
  connections: "connections",
  requests: "requests",
  bytesDown: "bytesDown",
  meanSocksSetup: "meanSocksSetup s"
}

const firstWidth = 10
const pad = (text: string, width: number) => text.padStart(width)
const cells = (first: string, values: ReadonlyArray<string>) =>
  [first.padEnd(firstWidth), ...values.map((value, index) => pad(value, headings[figureNames[index]].length))].join("  ")

export const tableHeading = (): string => cells("run", figureNames.map((name) => headings[name])) + "  session"

const runLabel = (run: Run, label: string | undefined) => `${label === undefined ? "" : `${label} `}${run.run}`

/** One run's row; a failed run shows its error instead of figures. */
export const runRow = (run: Run, label?: string): string => {
  if (run.error !== null) return `${runLabel(run, label).padEnd(firstWidth)}  failed: ${run.error}`
  const session = run.session ?? `not saved (${run.sessionError ?? "no id"})`
  return `${cells(runLabel(run, label), figureNames.map((name) => formatFigure(name, run[name])))}  ${session}`
}

export const figuresRow = (title: string, figures: RunFigures): string =>
  cells(title, figureNames.map((name) => formatFigure(name, figures[name])))

/** The median, p25 and p75 rows, and how many runs they stand on. */
export const statisticsRows = (report: RunsReport, label?: string): Array<string> => {
  const prefix = label === undefined ? "" : `${label} `
  const loaded = report.runs.filter((run) => run.error === null).length
  return [
    figuresRow(`${prefix}median`, report.median),
    figuresRow(`${prefix}p25`, report.p25),
    figuresRow(`${prefix}p75`, report.p75),
    `${loaded} of ${report.runs.length} runs loaded${loaded < report.runs.length ? "; failed runs are left out of the statistics" : ""}`
  ]
}

/** The `--json` document of one configuration (SPEC §9). */
export const runsJson = (url: string, report: RunsReport) => ({
  url,
  runs: report.runs,
  median: report.median,
  p25: report.p25,
  p75: report.p75
})

const compareLines = (comparison: SessionComparison): Array<string> => {
  const title = `/api/compare of the median runs' sessions (a=${comparison.a ?? "-"}, b=${comparison.b ?? "-"})`
  if (comparison.error !== null) return [`${title}: not available: ${comparison.error}`]
  const document = comparison.document as { a?: Record<string, unknown>; b?: Record<string, unknown>; delta?: Record<string, unknown> }
  const keys = Object.keys(document.a ?? {})
  const show = (value: unknown) => typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(3)) : value === null ? "-" : JSON.stringify(value)
  return [
    `${title}:`,
    ["", ...keys].map((key, index) => (index === 0 ? key.padEnd(6) : key.padStart(Math.max(key.length, 10)))).join("  "),
    ...(["a", "b", "delta"] as const).map((side) =>
      [side.padEnd(6), ...keys.map((key) => show(document[side]?.[key]).padStart(Math.max(key.length, 10)))].join("  ")
    )
  ]
}

/** After the interleaved rows: each configuration's statistics, B − A of the medians, and /api/compare. */
export const comparisonRows = (
  a: ConfigurationReport,
  b: ConfigurationReport,
  delta: RunFigures,
  comparison: SessionComparison
): Array<string> => [
  ...statisticsRows(a, "A"),
  ...statisticsRows(b, "B"),
  figuresRow("B − A", delta),
  ...compareLines(comparison)
]

/** The `--json` document with `--compare-with`: each configuration as SPEC §9 has it, B − A of the medians, and /api/compare. */
export const comparisonJson = (
  url: string,
  a: ConfigurationReport,
  b: ConfigurationReport,
  delta: RunFigures,
  comparison: SessionComparison
) => ({
  url,
  a: { flags: a.flags, ...runsJson(url, a) },
  b: { flags: b.flags, ...runsJson(url, b) },
  delta,
  compare: comparison.error === null ? comparison.document : null,
  compareError: comparison.error
})
