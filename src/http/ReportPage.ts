/**
 * `GET /`: the report a person reads. The page-load summary, the time graph
 * (filterable by time window and server), the server table, Tor's circuits
 * and the connection list. Its live part refreshes while a page loads.
 */
import type { Connection, ServerStats } from "../domain/Connection.js"
import { serverStats } from "../domain/Connection.js"
import type { TorAttribution, TorCircuit } from "../domain/TorCircuits.js"
import type { TorRelay } from "../domain/TorControlProtocol.js"
import type { StoreCounts } from "../services/Store.js"
import type { TorStatus } from "../services/TorControl.js"
import { summarize, type Summary } from "../domain/Summary.js"
import { type Html, html } from "./Html.js"
import { circuitColour, relayName, renderTimeGraph } from "./TimeGraph.js"

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

const summaryView = (summary: Summary, base: string) => html`
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
  <table><tbody>${summary.slowestSocksSetups.map((s) => html`<tr><td class="n">${seconds(s.seconds)}</td><td><a href="${base}/connections/${s.id}">#${s.id}</a> ${s.host}:${s.port}</td></tr>`)}</tbody></table></div>
  <div><h2>Slowest responses <span class="muted">(request → first response byte)</span></h2>
  <table><tbody>${summary.slowestResponses.map((r) => html`<tr><td class="n">${seconds(r.seconds)}</td><td><a href="${base}/connections/${r.id}">#${r.id}</a> ${r.host} <span class="muted">${r.requestLine}</span></td></tr>`)}</tbody></table></div>
</div>`

const serverTable = (servers: ReadonlyArray<ServerStats>, base: string) => html`
<table class="sortable" id="servers"><thead><tr>
<th data-sort="s">Server</th><th>Ports</th><th data-sort="n" class="n">Connections</th><th data-sort="n" class="n">Requests</th><th data-sort="n" class="n">Responses</th><th data-sort="n" class="n" title="client burst then server burst, on TLS or unknown connections">Inferred exchanges</th><th data-sort="n" class="n">MeanResponseTime</th><th data-sort="n" class="n">TotalConnectionTime</th>
</tr></thead><tbody>
${servers.map((s) => html`<tr>
<td><a href="${base}/?host=${encodeURIComponent(s.host)}">${s.host}</a></td><td>${s.ports.join(", ")}</td>
<td class="n" data-value="${s.connections}">${s.connections}${s.openConnections > 0 ? html` <span class="muted">(still open: ${s.openConnections})</span>` : ""}</td>
<td class="n">${s.requests}</td><td class="n">${s.responses}</td><td class="n">${s.inferredExchanges}</td>
<td class="n" data-value="${s.meanResponseTime ?? -1}">${s.meanResponseTime === null ? "–" : seconds(s.meanResponseTime)}</td>
<td class="n" data-value="${s.totalConnectionTime ?? -1}">${s.totalConnectionTime === null ? html`<span class="muted">there are still open connections</span>` : seconds(s.totalConnectionTime)}</td>
</tr>`)}
</tbody></table>`

/** What Tor's control port told: whether it is connected, its circuits, and each connection's stream and circuit. */
export interface TorView {
  readonly status: TorStatus
  readonly circuits: ReadonlyArray<TorCircuit>
  readonly torOf: (connectionId: number) => TorAttribution | null
}

/** A square in the circuit's colour, as its rows have in the time graph. */
export const circuitSwatch = (id: string): Html => html`<span class="swatch" style="background:${circuitColour(id)}"></span>`

/** A link to the circuit's row in the report's circuits table (`page`: "/" from another page). */
export const circuitLink = (id: string, page = ""): Html => html`<a href="${page}#circuit-${id}">${circuitSwatch(id)}${id}</a>`

/** The relays' nicknames, each with its fingerprint as a tooltip. */
export const pathView = (path: ReadonlyArray<TorRelay>): Html =>
  path.length === 0
    ? html`<span class="muted">not known</span>`
    : html`${path.map((relay, index) => html`${index > 0 ? " → " : ""}<span title="${relay.fingerprint ?? "fingerprint not known"}">${relayName(relay)}</span>`)}`

/** Why Tor's circuits are missing, in one line; null while the control port is connected. */
export const torMissingReason = (status: TorStatus): string | null => {
  const at = status.address ?? "its address"
  const because = status.error === null ? "" : ` (${status.error})`
  switch (status.control) {
    case "connected":
      return null
    case "off":
      return "Tor's control port is off (--tor-control off, or the upstream is direct), so circuits are not known."
    case "unreachable":
      return `Tor's control port is unreachable at ${at}${because}: circuits are not known until it answers. Measuring goes on without it.`
    case "auth-failed":
      return `Tor's control port at ${at} refused authentication${because}: set --tor-control-password (or MITM_TOR_CONTROL_PASSWORD), or let MITM read Tor's cookie file.`
  }
}

const connectionTable = (connections: ReadonlyArray<Connection>, tor: TorView | undefined, base: string) => html`
<table class="sortable" id="connections"><thead><tr>
<th data-sort="n" class="n">ID</th><th data-sort="s">Server</th><th data-sort="n" class="n">Port</th><th data-sort="s">State</th><th data-sort="s">Protocol</th><th data-sort="n" class="n">Opened</th><th data-sort="n" class="n">Duration</th><th data-sort="n" class="n">Up</th><th data-sort="n" class="n">Down</th><th data-sort="s">Isolation</th>${tor === undefined ? "" : html`<th data-sort="n" class="n">Circuit</th>`}<th>Error</th>
</tr></thead><tbody>
${connections.map((c) => {
  const circuit = tor?.torOf(c.id)?.circuit ?? null
  return html`<tr>
<td class="n" data-value="${c.id}"><a href="${base}/connections/${c.id}">${c.id}</a></td><td>${c.host}</td><td class="n">${c.port}</td>
<td>${c.state}</td><td>${c.protocol}</td><td class="n" data-value="${c.openedAt}">${seconds(c.openedAt)}</td>
<td class="n" data-value="${c.closedAt === null ? "" : c.closedAt - c.openedAt}">${c.closedAt === null ? "open" : seconds(c.closedAt - c.openedAt)}</td>
<td class="n" data-value="${c.bytesUp}">${bytes(c.bytesUp)}</td><td class="n" data-value="${c.bytesDown}">${bytes(c.bytesDown)}</td>
<td>${c.isolation ?? ""}</td>
${tor === undefined ? "" : html`<td class="n" data-value="${circuit ?? -1}">${circuit === null ? "" : circuitLink(circuit)}</td>`}
<td class="error">${c.error ?? ""}${c.eventsCut > 0 ? ` (${c.eventsCut} events cut)` : ""}</td></tr>`
})}
</tbody></table>`

/** Connection links shown per circuit; the rest are counted. */
const maxCircuitLinks = 50

/** Launch order: those launched before MITM was watching first, then by launch, ties by id. */
const byLaunch = (a: TorCircuit, b: TorCircuit) =>
  (a.launchedAt ?? -Infinity) - (b.launchedAt ?? -Infinity) || a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** The circuits that belong to the filtered view: that carried a selected connection (with a server chosen), alive in the time window. */
const circuitsIn = (circuits: ReadonlyArray<TorCircuit>, selected: ReadonlyArray<Connection>, filter: ReportFilter) => {
  const ids = filter.host === undefined ? undefined : new Set(selected.map((c) => c.id))
  return circuits.filter((circuit) =>
    (ids === undefined || circuit.connections.some((id) => ids.has(id))) &&
    (filter.to === undefined || circuit.launchedAt === null || circuit.launchedAt <= filter.to) &&
    // Ended while MITM was not watching (no close time): kept, as when is not known.
    (filter.from === undefined || circuit.state === "launched" || circuit.state === "built" || circuit.closedAt === null ||
      circuit.closedAt >= filter.from)
  ).sort(byLaunch)
}

const circuitState = (circuit: TorCircuit): Html =>
  html`${circuit.state === "failed" ? html`<span class="error">failed</span>` : circuit.state}${circuit.reason === null ? "" : html` <span class="muted">(${circuit.reason})</span>`}`

const buildTimeCell = (circuit: TorCircuit): Html =>
  circuit.buildTime !== null
    ? html`${seconds(circuit.buildTime)}`
    : circuit.launchedAt === null
    ? html`<span class="muted">built before MITM was watching</span>`
    : circuit.state === "launched"
    ? html`<span class="muted">building</span>`
    : html`<span class="muted">not built</span>`

const connectionLinks = (ids: ReadonlyArray<number>, base: string): Html => {
  const shown = ids.length > maxCircuitLinks ? ids.slice(0, maxCircuitLinks) : ids
  return html`${shown.map((id, index) => html`${index > 0 ? " " : ""}<a href="${base}/connections/${id}">#${id}</a>`)}${
    ids.length > shown.length ? html` <span class="muted">and ${ids.length - shown.length} more</span>` : ""
  }`
}

const circuitTable = (circuits: ReadonlyArray<TorCircuit>, base: string) => html`
<table class="sortable" id="circuits"><thead><tr>
<th data-sort="n" class="n">Circuit</th><th data-sort="s">Purpose</th><th data-sort="s">State</th><th>Path (guard → … → exit)</th><th data-sort="n" class="n">Launched</th><th data-sort="n" class="n">Build time</th><th data-sort="n" class="n">RTT</th><th data-sort="n" class="n">Connections</th><th>Conflux legs</th>
</tr></thead><tbody>
${circuits.map((circuit) => html`<tr id="circuit-${circuit.id}">
<td class="n" data-value="${circuit.id}">${circuitSwatch(circuit.id)}${circuit.id}</td><td>${circuit.purpose ?? ""}</td><td>${circuitState(circuit)}</td>
<td>${pathView(circuit.path)}</td>
<td class="n" data-value="${circuit.launchedAt ?? -1}">${circuit.launchedAt === null ? "–" : seconds(circuit.launchedAt)}</td>
<td class="n" data-value="${circuit.buildTime ?? -1}">${buildTimeCell(circuit)}</td>
<td class="n" data-value="${circuit.rttMs ?? -1}">${circuit.rttMs === null ? "–" : `${circuit.rttMs} ms`}</td>
<td class="n" data-value="${circuit.connections.length}">${connectionLinks(circuit.connections, base)}</td>
<td>${circuit.conflux.map((id, index) => html`${index > 0 ? ", " : ""}<a href="#circuit-${id}">${id}</a>`)}</td></tr>`)}
</tbody></table>`

/** The circuits section: the table, or one line saying why there is none. */
const torSection = (tor: TorView, selected: ReadonlyArray<Connection>, filter: ReportFilter, base: string): Html => {
  const missing = torMissingReason(tor.status)
  if (missing !== null) return html`<h2>Tor circuits</h2>
<p class="muted" id="tor-missing">${missing}</p>`
  const filtered = filter.from !== undefined || filter.to !== undefined || filter.host !== undefined
  const all = circuitsIn(tor.circuits, selected, filter)
  const shown = all.length > maxRows ? all.slice(all.length - maxRows) : all
  return html`<h2>Tor circuits <span class="muted">${filtered ? `(filtered: ${all.length} of ${tor.circuits.length}) ` : ""}Tor ${tor.status.version ?? ""} at ${tor.status.address ?? ""}</span></h2>
${shown.length < all.length ? html`<p class="warn">Showing the latest ${shown.length} of ${all.length} circuits: narrow the time window or pick a server.</p>` : ""}
${all.length === 0 ? html`<p class="muted">Tor has reported no circuits${filtered ? " in this view" : " yet"}.</p>` : circuitTable(shown, base)}`
}

export interface ReportView {
  readonly connections: ReadonlyArray<Connection>
  readonly counts: StoreCounts
  readonly now: number
  readonly version: number
  readonly filter: ReportFilter
  /** Tor's control port; without it the page has no circuits section. */
  readonly tor?: TorView
  /** Where the page's links go: "" for the live report, `/sessions/ID` for a saved session. */
  readonly base?: string
}

/** The part of the page that updates live. */
export const reportLive = (view: ReportView): Html => {
  const selected = view.connections.filter(matches(view.filter, view.now))
  const shown = selected.length > maxRows ? selected.slice(selected.length - maxRows) : selected
  const filtered = view.filter.from !== undefined || view.filter.to !== undefined || view.filter.host !== undefined
  const base = view.base ?? ""
  return html`
<h2>Page load</h2>
${summaryView(summarize(selected), base)}
${view.counts.evicted > 0 || view.counts.eventsCut > 0 ? html`<p class="warn">Memory bound: ${view.counts.evicted} oldest closed connections evicted, ${view.counts.eventsCut} events cut from long event logs.</p>` : ""}
<h2>Time graph <span class="muted">${filtered ? "(filtered)" : ""} now ${seconds(view.now)}</span></h2>
${shown.length < selected.length ? html`<p class="warn">Showing the latest ${shown.length} of ${selected.length} connections: narrow the time window or pick a server.</p>` : ""}
<div class="graph">${renderTimeGraph(shown, { now: view.now, from: view.filter.from, to: view.filter.to, host: view.filter.host, torOf: view.tor?.torOf, circuits: view.tor?.circuits, base })}</div>
<h2>Servers</h2>
${serverTable(serverStats(selected), base)}
${view.tor === undefined ? "" : torSection(view.tor, selected, view.filter, base)}
<h2>Connections</h2>
${connectionTable(shown, view.tor, base)}`
}

export const reportBody = (view: ReportView): Html => {
  const hosts = Array.from(new Set(view.connections.map((c) => c.host).filter((host) => host !== "")))
  return html`
<form class="filter" method="get" action="${view.base ?? ""}/">
  <label>From (s)<input name="from" inputmode="decimal" size="7" value="${view.filter.from ?? ""}"></label>
  <label>To (s)<input name="to" inputmode="decimal" size="7" value="${view.filter.to ?? ""}"></label>
  <label>Server<select name="host"><option value="">all servers</option>${hosts.map((host) => html`<option${host === view.filter.host ? html` selected` : ""}>${host}</option>`)}</select></label>
  <label>Live<select name="live"><option value="1">updating</option><option value="0"${view.filter.live ? "" : html` selected`}>paused</option></select></label>
  <button>Show</button> <a href="${view.base ?? ""}/">reset view</a>
  <span class="muted">${view.counts.total} connections in this session</span>
</form>
<div id="live"${view.filter.live ? html` data-version="${view.version}"` : ""}>${reportLive(view)}</div>`
}
