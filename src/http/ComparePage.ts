/**
 * `GET /compare?a=ID&b=ID` (SPEC §8): two sessions side by side. Where a difference is
 * large, the page says first where it came from; then the summary of each and b − a,
 * the servers, the requests only one of them made, and the two time graphs one above
 * the other on one time scale, each shifted so that its first request is at 0 s.
 */
import type { ServerStats } from "../domain/Connection.js"
import {
  type Comparison,
  compareSessions,
  explainDifference,
  firstRequestOf,
  type SessionSummary,
  shiftedConnections
} from "../domain/Comparison.js"
import type { Measurements, SessionInfo } from "../domain/Session.js"
import { type Html, html } from "./Html.js"
import { seconds } from "./ReportPage.js"
import { compareForm } from "./SessionsPage.js"
import { renderTimeGraph } from "./TimeGraph.js"

/** One side of the comparison. */
export interface CompareSide {
  /** `current` or the session's id. */
  readonly id: string
  readonly name: string
  readonly measurements: Measurements
  /** Where its links go: "" for the live report, `/sessions/ID` for a session. */
  readonly base: string
}

export interface CompareView {
  readonly a: CompareSide
  readonly b: CompareSide
  readonly sessions: ReadonlyArray<SessionInfo>
}

type Field = keyof SessionSummary

const fields: ReadonlyArray<readonly [Field, string, "count" | "bytes" | "seconds"]> = [
  ["connections", "Connections", "count"],
  ["requests", "Requests", "count"],
  ["responses", "Responses", "count"],
  ["bytesDown", "Bytes down", "bytes"],
  ["firstRequestToLastByte", "First request → last byte", "seconds"],
  ["meanSocksSetup", "Mean SOCKS setup (Tor's stream setup)", "seconds"],
  ["meanWait", "Mean wait (request → first response byte)", "seconds"]
]

const valueText = (value: number | null, kind: "count" | "bytes" | "seconds"): string =>
  value === null ? "–" : kind === "seconds" ? seconds(value) : String(value)

const deltaText = (value: number | null, kind: "count" | "bytes" | "seconds"): Html => {
  if (value === null) return html`–`
  const text = valueText(Math.abs(value), kind)
  // A difference too small to show is shown as none: "±0.000 s", never "−0.000 s".
  const sign = /^[0.]+( s)?$/.test(text) ? 0 : Math.sign(value)
  return html`<span class="${sign > 0 ? "more" : sign < 0 ? "less" : ""}">${sign > 0 ? "+" : sign < 0 ? "−" : "±"}${text}</span>`
}

const summaryTable = (comparison: Comparison, a: CompareSide, b: CompareSide): Html => html`
<table id="summary"><thead><tr><th></th><th class="n">A: ${a.name}</th><th class="n">B: ${b.name}</th><th class="n">B − A</th></tr></thead><tbody>
${fields.map(([field, label, kind]) => html`<tr data-field="${field}"><th>${label}</th><td class="n">${valueText(comparison.a[field], kind)}</td><td class="n">${valueText(comparison.b[field], kind)}</td><td class="n">${deltaText(comparison.delta[field], kind)}</td></tr>`)}
</tbody></table>`

const minus = (b: number | null | undefined, a: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined ? null : Math.round((b - a) * 1e6) / 1e6

const statCells = (a: ServerStats | null, b: ServerStats | null, pick: (s: ServerStats) => number | null, kind: "count" | "seconds"): Html =>
  html`<td class="n">${a === null ? "–" : valueText(pick(a), kind)}</td><td class="n">${b === null ? "–" : valueText(pick(b), kind)}</td><td class="n">${deltaText(minus(b === null ? null : pick(b), a === null ? null : pick(a)), kind)}</td>`

const serverTable = (comparison: Comparison): Html => html`
<table id="compare-servers"><thead>
<tr><th rowspan="2">Server</th><th colspan="3" class="n">Connections</th><th colspan="3" class="n">Requests</th><th colspan="3" class="n">MeanResponseTime</th><th colspan="3" class="n">TotalConnectionTime</th></tr>
<tr>${[0, 1, 2, 3].map(() => html`<th class="n">A</th><th class="n">B</th><th class="n">B − A</th>`)}</tr>
</thead><tbody>
${comparison.servers.map(({ a, b, host }) => html`<tr><td>${host}${a === null ? html` <span class="muted">(only in B)</span>` : b === null ? html` <span class="muted">(only in A)</span>` : ""}</td>
${statCells(a, b, (s) => s.connections, "count")}${statCells(a, b, (s) => s.requests, "count")}${statCells(a, b, (s) => s.meanResponseTime, "seconds")}${statCells(a, b, (s) => s.totalConnectionTime, "seconds")}</tr>`)}
</tbody></table>`

/** URLs shown per list; the rest are counted. */
const maxUrls = 100

const urlList = (id: string, urls: ReadonlyArray<string>): Html =>
  urls.length === 0
    ? html`<p class="muted" id="${id}">none</p>`
    : html`<ul id="${id}">${urls.slice(0, maxUrls).map((url) => html`<li><code>${url}</code></li>`)}</ul>${urls.length > maxUrls ? html`<p class="muted">and ${urls.length - maxUrls} more</p>` : ""}`

/** The two graphs on one axis: each shifted so that its first request is at 0, both spanning the longer of the two. */
const graphs = (a: CompareSide, b: CompareSide): Html => {
  const shiftedA = shiftedConnections(a.measurements.connections, firstRequestOf(a.measurements.connections))
  const shiftedB = shiftedConnections(b.measurements.connections, firstRequestOf(b.measurements.connections))
  const nowA = a.measurements.now - firstRequestOf(a.measurements.connections)
  const nowB = b.measurements.now - firstRequestOf(b.measurements.connections)
  let from = 0
  let to = 0.001
  for (const [connections, now] of [[shiftedA, nowA], [shiftedB, nowB]] as const) {
    for (const connection of connections) {
      from = Math.min(from, connection.openedAt)
      to = Math.max(to, connection.closedAt ?? now)
    }
  }
  const graph = (side: CompareSide, connections: typeof shiftedA, now: number, id: string) =>
    renderTimeGraph(connections, { now, from, to, base: side.base, id })
  return html`
<h3>A: ${a.name}</h3>
<div class="graph">${graph(a, shiftedA, nowA, "timegraph-a")}</div>
<h3>B: ${b.name}</h3>
<div class="graph">${graph(b, shiftedB, nowB, "timegraph-b")}</div>`
}

export const compareBody = (view: CompareView): Html => {
  const { a, b } = view
  const comparison = compareSessions(a.measurements.connections, b.measurements.connections)
  const explanation = explainDifference(a.measurements.connections, b.measurements.connections)
  return html`
${compareForm(view.sessions, a.id, b.id)}
<h2>A: ${a.name} <span class="muted">vs</span> B: ${b.name}</h2>
${explanation.length === 0
  ? html`<p class="muted" id="explanation">No large difference in the page load's span, SOCKS setup, waiting or transfer.</p>`
  : html`<div class="warn" id="explanation">${explanation.map((line) => html`<p>${line}</p>`)}</div>`}
${summaryTable(comparison, a, b)}
<h2>Servers</h2>
${serverTable(comparison)}
<div class="lists">
<div><h2>Only in A <span class="muted">(${comparison.onlyInA.length} requests, matched by method and URL)</span></h2>${urlList("only-a", comparison.onlyInA)}</div>
<div><h2>Only in B <span class="muted">(${comparison.onlyInB.length})</span></h2>${urlList("only-b", comparison.onlyInB)}</div>
</div>
<h2>Time graphs <span class="muted">one time scale; 0 s is each one's first request</span></h2>
${graphs(a, b)}`
}
