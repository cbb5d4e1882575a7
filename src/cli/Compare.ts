/**
 * `npm start -- compare A.har B.har [--json]` (SPEC §8): the comparison of two HAR files
 * (MITM's sessions or any tool's HARs), printed as a table of the summaries of a, b and
 * b − a, then where a large difference came from, the servers and the requests only one
 * made; with `--json`, the `/api/compare` document.
 */
import { Console, Effect } from "effect"
import type { ServerStats } from "../domain/Connection.js"
import { type Comparison, compareSessions, explainDifference, type SessionSummary } from "../domain/Comparison.js"
import { type Command, readHarFile, usage } from "./Command.js"

const rows: ReadonlyArray<readonly [keyof SessionSummary, "count" | "seconds"]> = [
  ["connections", "count"],
  ["requests", "count"],
  ["responses", "count"],
  ["bytesDown", "count"],
  ["firstRequestToLastByte", "seconds"],
  ["meanSocksSetup", "seconds"],
  ["meanWait", "seconds"]
]

const cell = (value: number | null, kind: "count" | "seconds", signed = false): string => {
  if (value === null) return "–"
  const text = kind === "seconds" ? `${Math.abs(value).toFixed(3)} s` : String(Math.abs(value))
  // What rounds to zero is shown as zero, never as "-0.000 s".
  const sign = Number(text.replace(" s", "")) === 0 ? 0 : Math.sign(value)
  return signed ? `${sign > 0 ? "+" : sign < 0 ? "-" : "±"}${text}` : `${sign < 0 ? "-" : ""}${text}`
}

const table = (lines: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = lines[0].map((_, column) => Math.max(...lines.map((line) => line[column].length)))
  return lines.map((line) => line.map((text, column) => (column === 0 ? text.padEnd(widths[column]) : text.padStart(widths[column]))).join("  ")).join("\n")
}

const stat = (stats: ServerStats | null, pick: (s: ServerStats) => number | null, kind: "count" | "seconds"): string =>
  stats === null ? "–" : cell(pick(stats), kind)

const minus = (b: number | null | undefined, a: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined ? null : Math.round((b - a) * 1e6) / 1e6

/** The comparison for people. */
export const comparisonText = (comparison: Comparison, explanation: ReadonlyArray<string>, a: string, b: string): string => {
  const summary = table([
    ["", "a", "b", "b − a"],
    ...rows.map(([field, kind]) => [field, cell(comparison.a[field], kind), cell(comparison.b[field], kind), cell(comparison.delta[field], kind, true)])
  ])
  const servers = table([
    ["server", "connections a", "b", "requests a", "b", "meanResponseTime a", "b", "b − a"],
    ...comparison.servers.map(({ a: sa, b: sb, host }) => [
      host,
      stat(sa, (s) => s.connections, "count"),
      stat(sb, (s) => s.connections, "count"),
      stat(sa, (s) => s.requests, "count"),
      stat(sb, (s) => s.requests, "count"),
      stat(sa, (s) => s.meanResponseTime, "seconds"),
      stat(sb, (s) => s.meanResponseTime, "seconds"),
      cell(minus(sb?.meanResponseTime, sa?.meanResponseTime), "seconds", true)
    ])
  ])
  const only = (label: string, urls: ReadonlyArray<string>) =>
    urls.length === 0 ? [] : [`${label} (${urls.length}):`, ...urls.slice(0, 20).map((url) => `  ${url}`), ...(urls.length > 20 ? [`  and ${urls.length - 20} more`] : [])]
  return [
    `a: ${a}`,
    `b: ${b}`,
    "",
    summary,
    ...(explanation.length === 0 ? [] : ["", ...explanation]),
    "",
    servers,
    ...(comparison.onlyInA.length + comparison.onlyInB.length === 0 ? [] : [""]),
    ...only("only in a", comparison.onlyInA),
    ...only("only in b", comparison.onlyInB)
  ].join("\n")
}

export const compare: Command = (args) =>
  Effect.gen(function*() {
    const json = args.includes("--json")
    const unknown = args.find((arg) => arg.startsWith("--") && arg !== "--json")
    if (unknown !== undefined) return yield* usage("compare", `${unknown}: unknown flag; compare takes A.har B.har [--json]`)
    const files = args.filter((arg) => arg !== "--json")
    if (files.length !== 2) return yield* usage("compare", `expected two HAR files (compare A.har B.har [--json]), got ${files.length}`)
    const a = yield* readHarFile("compare", files[0])
    const b = yield* readHarFile("compare", files[1])
    const comparison = compareSessions(a.measurements.connections, b.measurements.connections)
    yield* Console.log(
      json
        ? JSON.stringify(comparison, null, 2)
        : comparisonText(comparison, explainDifference(a.measurements.connections, b.measurements.connections), files[0], files[1])
    )
  })
