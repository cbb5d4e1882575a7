/**
 * `GET /`: the report a person reads. The page-load summary, the time graph
 * (filterable by time window and server), the server table and the
 * connection list. Its live part refreshes while a page loads.
 */
import type { Connection, ServerStats } from "../domain/Connection.js"
import { serverStats } from "../domain/Connection.js"
import type { StoreCounts } from "../services/Store.js"
import { summarize, type Summary } from "../domain/Summary.js"
import { type Html, html } from "./Html.js"
import { renderTimeGraph } from "./TimeGraph.js"

/** Rows drawn at most (a page load through Tor is tens to a few hundred connections); beyond that the page asks for a narrower window or one server. */
export const maxRows = 500

export interface ReportFilter {
  readonly from?: number
  readonly to?: number
  readonly host?: string
  /** false: the page stays as rendered (live updates paused). */
  readonly live: boolean
}

export const parseFilter = (query: Readonly<Record<string, string | undefined>>): ReportFilter => {
  const seconds = (text: string | undefined) => {
    if (text === undefined || text.trim() === "") return undefined
    const value = Number(text)
    return Number.isFinite(value) && value >= 0 ? value : undefined
  }
  const host = query.host?.trim()
  return { from: seconds(query.from), to: seconds(query.to), host: host === "" ? undefined : host, live: query.live !== "0" }
}

const matches = (filter: ReportFilter, now: number) => (connection: Connection) =>
  (filter.host === undefined || connection.host === filter.host) &&
  (filter.from === undefined || (connection.closedAt ?? now) >= filter.from) &&
  (filter.to === undefined || connection.openedAt <= filter.to)

export const seconds = (value: number | null | undefined) => (value === null || value === undefined ? "" : `${value.toFixed(3)} s`)

const bytes = (count: number) =>
  count < 1024 ? `${count} B` : count < 1024 * 1024 ? `${(count / 1024).toFixed(1)} KiB` : `${(count / 1024 / 1024).toFixed(1)} MiB`

const summaryView = (summary: Summary) => html`
<div class="cards">
  <div class="card">Servers<b>${summary.servers}</b></div>
  <div class="card">Connections<b>${summary.connections}</b>${summary.openConnections > 0 ? html`<span class="muted">${summary.openConnections} open</span>` : ""}${summary.failedConnections > 0 ? html` <span class="error">${summary.failedConnections} failed</span>` : ""}</div>
  <div class="card">Requests<b>${summary.requests}</b></div>
  <div class="card">Responses<b>${summary.responses}</b></div>
  <div class="card">Bytes up<b>${bytes(summary.bytesUp)}</b></div>
  <div class="card">Bytes down<b>${bytes(summary.bytesDown)}</b></div>
  <div class="card">First request → last byte<b>${summary.firstRequestToLastByte === null ? "–" : seconds(summary.firstRequestToLastByte.to - summary.firstRequestToLastByte.from)}</b>${summary.firstRequestToLastByte === null ? "" : html`<span class="muted">${seconds(summary.firstRequestToLastByte.from)} → ${seconds(summary.firstRequestToLastByte.to)}</span>`}</div>
</div>
<div class="lists">
  <div><h2>Slowest SOCKS setups <span class="muted">(Tor's stream setup)</span></h2>
  <table><tbody>${summary.slowestSocksSetups.map((s) => html`<tr><td class="n">${seconds(s.seconds)}</td><td><a href="/connections/${s.id}">#${s.id}</a> ${s.host}:${s.port}</td></tr>`)}</tbody></table></div>
  <div><h2>Slowest responses <span class="muted">(request → first response byte)</span></h2>
  <table><tbody>${summary.slowestResponses.map((r) => html`<tr><td class="n">${seconds(r.seconds)}</td><td><a href="/connections/${r.id}">#${r.id}</a> ${r.host} <span class="muted">${r.requestLine}</span></td></tr>`)}</tbody></table></div>
</div>`

const serverTable = (servers: ReadonlyArray<ServerStats>) => html`
<table class="sortable" id="servers"><thead><tr>
<th data-sort="s">Server</th><th>Ports</th><th data-sort="n" class="n">Connections</th><th data-sort="n" class="n">Requests</th><th data-sort="n" class="n">Responses</th><th data-sort="n" class="n" title="client burst then server burst, on TLS or unknown connections">Inferred exchanges</th><th data-sort="n" class="n">MeanResponseTime</th><th data-sort="n" class="n">TotalConnectionTime</th>
</tr></thead><tbody>
${servers.map((s) => html`<tr>
<td><a href="/?host=${encodeURIComponent(s.host)}">${s.host}</a></td><td>${s.ports.join(", ")}</td>
<td class="n" data-value="${s.connections}">${s.connections}${s.openConnections > 0 ? html` <span class="muted">(still open: ${s.openConnections})</span>` : ""}</td>
<td class="n">${s.requests}</td><td class="n">${s.responses}</td><td class="n">${s.inferredExchanges}</td>
<td class="n" data-value="${s.meanResponseTime ?? -1}">${s.meanResponseTime === null ? "–" : seconds(s.meanResponseTime)}</td>
<td class="n" data-value="${s.totalConnectionTime ?? -1}">${s.totalConnectionTime === null ? html`<span class="muted">there are still open connections</span>` : seconds(s.totalConnectionTime)}</td>
</tr>`)}
</tbody></table>`

const connectionTable = (connections: ReadonlyArray<Connection>) => html`
<table class="sortable" id="connections"><thead><tr>
<th data-sort="n" class="n">ID</th><th data-sort="s">Server</th><th data-sort="n" class="n">Port</th><th data-sort="s">State</th><th data-sort="s">Protocol</th><th data-sort="n" class="n">Opened</th><th data-sort="n" class="n">Duration</th><th data-sort="n" class="n">Up</th><th data-sort="n" class="n">Down</th><th data-sort="s">Isolation</th><th>Error</th>
</tr></thead><tbody>
${connections.map((c) => html`<tr>
<td class="n" data-value="${c.id}"><a href="/connections/${c.id}">${c.id}</a></td><td>${c.host}</td><td class="n">${c.port}</td>
<td>${c.state}</td><td>${c.protocol}</td><td class="n" data-value="${c.openedAt}">${seconds(c.openedAt)}</td>
<td class="n" data-value="${c.closedAt === null ? "" : c.closedAt - c.openedAt}">${c.closedAt === null ? "open" : seconds(c.closedAt - c.openedAt)}</td>
<td class="n" data-value="${c.bytesUp}">${bytes(c.bytesUp)}</td><td class="n" data-value="${c.bytesDown}">${bytes(c.bytesDown)}</td>
<td>${c.isolation ?? ""}</td>
<td class="error">${c.error ?? ""}${c.eventsCut > 0 ? ` (${c.eventsCut} events cut)` : ""}</td></tr>`)}
</tbody></table>`

export interface ReportView {
  readonly connections: ReadonlyArray<Connection>
  readonly counts: StoreCounts
  readonly now: number
  readonly version: number
  readonly filter: ReportFilter
}

/** The part of the page that updates live. */
export const reportLive = (view: ReportView): Html => {
  const selected = view.connections.filter(matches(view.filter, view.now))
  const shown = selected.length > maxRows ? selected.slice(selected.length - maxRows) : selected
  const filtered = view.filter.from !== undefined || view.filter.to !== undefined || view.filter.host !== undefined
  return html`
<h2>Page load</h2>
${summaryView(summarize(selected))}
${view.counts.evicted > 0 || view.counts.eventsCut > 0 ? html`<p class="warn">Memory bound: ${view.counts.evicted} oldest closed connections evicted, ${view.counts.eventsCut} events cut from long event logs.</p>` : ""}
<h2>Time graph <span class="muted">${filtered ? "(filtered)" : ""} now ${seconds(view.now)}</span></h2>
${shown.length < selected.length ? html`<p class="warn">Showing the latest ${shown.length} of ${selected.length} connections: narrow the time window or pick a server.</p>` : ""}
<div class="graph">${renderTimeGraph(shown, { now: view.now, from: view.filter.from, to: view.filter.to, host: view.filter.host })}</div>
<h2>Servers</h2>
${serverTable(serverStats(selected))}
<h2>Connections</h2>
${connectionTable(shown)}`
}

export const reportBody = (view: ReportView): Html => {
  const hosts = Array.from(new Set(view.connections.map((c) => c.host).filter((host) => host !== "")))
  return html`
<form class="filter" method="get" action="/">
  <label>From (s)<input name="from" inputmode="decimal" size="7" value="${view.filter.from ?? ""}"></label>
  <label>To (s)<input name="to" inputmode="decimal" size="7" value="${view.filter.to ?? ""}"></label>
  <label>Server<select name="host"><option value="">all servers</option>${hosts.map((host) => html`<option${host === view.filter.host ? html` selected` : ""}>${host}</option>`)}</select></label>
  <label>Live<select name="live"><option value="1">updating</option><option value="0"${view.filter.live ? "" : html` selected`}>paused</option></select></label>
  <button>Show</button> <a href="/">reset view</a>
  <span class="muted">${view.counts.total} connections in this session</span>
</form>
<div id="live"${view.filter.live ? html` data-version="${view.version}"` : ""}>${reportLive(view)}</div>`
}
