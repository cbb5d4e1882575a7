/**
 * `GET /connections/:id`: one connection, the Tor stream and circuit that
 * carried it, and its event log in the seed's layout
 * (`000.249  HttpRequestStart  GET / HTTP/1.1`), with the first line or all
 * header lines per the `headers` setting.
 */
import type { Connection } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"
import { socksSetupTime } from "../domain/Summary.js"
import type { TorAttribution, TorCircuit } from "../domain/TorCircuits.js"
import type { TorRelay } from "../domain/TorControlProtocol.js"
import { type Html, html } from "./Html.js"
import { circuitLink, seconds, torMissingReason, type TorView } from "./ReportPage.js"
import { renderTimeGraph } from "./TimeGraph.js"

const typeWidth = 18

/** One event as a log line; header lines follow indented when all headers are shown. */
export const formatEvent = (event: ConnectionEvent, headers: "first" | "all"): string => {
  const time = event.time.toFixed(3).padStart(7, "0")
  const line = `${time}  ${event.type.padEnd(typeWidth)}  ${event.detail}`
  if (headers === "first" || !("headers" in event) || event.headers.length === 0) return line
  const indent = " ".repeat(time.length + typeWidth + 4)
  return [line, ...event.headers.map((header) => indent + header)].join("\n")
}

export const eventLog = (connection: Connection, headers: "first" | "all"): string =>
  connection.events.map((event) => formatEvent(event, headers)).join("\n")

export interface ConnectionView {
  readonly connection: Connection
  readonly headers: "first" | "all"
  readonly now: number
  readonly version: number
  /** Tor's control port; without it the page says nothing about circuits. */
  readonly tor?: TorView
  /** Where the page's links go: "" for the live report, `/sessions/ID` for a saved session. */
  readonly base?: string
}

/** A hop's part in the circuit: guard first, exit last (an onion service circuit ends elsewhere). */
const hopRole = (index: number, length: number, purpose: string | null): string =>
  index === 0 ? "guard" : index < length - 1 ? "middle" : purpose?.startsWith("HS_") ? "last hop" : "exit"

const hopsView = (path: ReadonlyArray<TorRelay>, purpose: string | null): Html =>
  path.length === 0
    ? html`<span class="muted">not known</span>`
    : html`<ol class="path">${path.map((relay, index) => html`<li><span class="muted">${hopRole(index, path.length, purpose)}</span> <b>${relay.nickname ?? "(no nickname)"}</b> <code>${relay.fingerprint ?? "fingerprint not known"}</code></li>`)}</ol>`

/** Why no circuit is known for the connection, from the control port's state and the connection's own events. */
const noCircuitReason = (c: Connection, tor: TorView, attribution: TorAttribution | null): string => {
  const missing = torMissingReason(tor.status)
  if (missing !== null) return missing
  const failed = c.events.find((event) => event.type === "TorStreamFailed")
  if (failed !== undefined) return `Tor's stream failed: ${failed.detail}.`
  if (attribution !== null) return `Tor has not attached stream ${attribution.stream} to a circuit${c.state === "open" ? " yet" : ""}.`
  if (c.upstream === "direct") return "this connection went direct, not through Tor."
  return `Tor reported no stream for this connection${c.state === "open" ? " yet" : ""}.`
}

const buildTimeView = (attribution: TorAttribution, circuit: TorCircuit | undefined): Html =>
  attribution.circuitBuildTime === null
    ? html`<span class="muted">${circuit?.state === "launched" ? "still building" : "not known: built before MITM was watching"}</span>`
    : html`${seconds(attribution.circuitBuildTime)}${
      circuit === undefined || circuit.launchedAt === null || circuit.builtAt === null
        ? ""
        : html` <span class="muted">(launched ${seconds(circuit.launchedAt)}, built ${seconds(circuit.builtAt)})</span>`
    }`

/** The Tor stream, circuit and path that carried the connection, or why none is known. */
const torView = (c: Connection, tor: TorView, base: string): Html => {
  const attribution = tor.torOf(c.id)
  if (attribution === null || attribution.circuit === null) {
    return html`<h2>Tor circuit</h2>
<p class="muted" id="tor-none">No Tor circuit known: ${noCircuitReason(c, tor, attribution)}</p>`
  }
  const id = attribution.circuit
  const circuit = tor.circuits.find((known) => known.id === id)
  return html`<h2>Tor circuit</h2>
<table id="tor">
<tr><th>Stream</th><td>${attribution.stream}</td></tr>
<tr><th>Circuit</th><td>${circuitLink(id, `${base}/`)}${circuit === undefined ? html` <span class="muted">(no longer listed by Tor)</span>` : html` <span class="muted">${circuit.purpose ?? ""} · ${circuit.state}${circuit.reason === null ? "" : ` (${circuit.reason})`}${circuit.rttMs === null ? "" : ` · RTT ${circuit.rttMs} ms`}${circuit.conflux.length === 0 ? "" : ` · conflux legs ${circuit.conflux.join(", ")}`}</span>`}</td></tr>
<tr><th>Path</th><td>${hopsView(attribution.path, circuit?.purpose ?? null)}</td></tr>
<tr><th>Circuit build</th><td>${buildTimeView(attribution, circuit)}</td></tr>
</table>`
}

export const connectionLive = ({ base = "", connection: c, headers, now, tor }: ConnectionView): Html => {
  const setup = socksSetupTime(c)
  const decodeErrors = c.events.filter((event) => event.type === "DecodeError")
  return html`
<table>
<tr><th>ID</th><td>${c.id}</td></tr>
<tr><th>Server</th><td><a href="${base}/?host=${encodeURIComponent(c.host)}">${c.host}</a></td></tr>
<tr><th>Server port</th><td>${c.port}</td></tr>
<tr><th>Client</th><td>${c.client}</td></tr>
<tr><th>SOCKS</th><td>SOCKS${c.socksVersion} ${c.command}</td></tr>
<tr><th>Upstream</th><td>${c.upstream}</td></tr>
<tr><th>Isolation</th><td>${c.isolation === null ? html`<span class="muted">none (no SOCKS username)</span>` : c.isolation} <span class="muted">(the SOCKS username Tor isolates streams by; passwords are never kept)</span></td></tr>
<tr><th>State</th><td>${c.state}${c.closedBy === null ? "" : `, closed by ${c.closedBy} first`}</td></tr>
<tr><th>Protocol</th><td>${c.protocol}</td></tr>
<tr><th>Opened</th><td>${seconds(c.openedAt)}${setup === undefined ? "" : html` <span class="muted">(SOCKS setup ${seconds(setup)})</span>`}</td></tr>
<tr><th>Closed</th><td>${c.closedAt === null ? "still open" : html`${seconds(c.closedAt)} <span class="muted">(after ${seconds(c.closedAt - c.openedAt)})</span>`}</td></tr>
<tr><th>Bytes</th><td>${c.bytesUp} up, ${c.bytesDown} down</td></tr>
${c.error === null ? "" : html`<tr><th>Error</th><td class="error">${c.error}</td></tr>`}
</table>
${decodeErrors.map((event) => html`<p class="warn">Decoding stopped at ${seconds(event.time)}: ${event.detail}. The bytes kept flowing unchanged.</p>`)}
${c.eventsCut > 0 ? html`<p class="warn">${c.eventsCut} events were cut: this event log reached its cap.</p>` : ""}
${tor === undefined ? "" : torView(c, tor, base)}
<div class="graph">${renderTimeGraph([c], { now, torOf: tor?.torOf, circuits: tor?.circuits, base })}</div>
<h2>Event log <span class="muted">(${headers === "all" ? "all header lines" : "first line of each request and response"}; <a href="/settings">change</a>)</span></h2>
<pre class="log" id="log">${eventLog(c, headers)}</pre>`
}

export const connectionBody = (view: ConnectionView): Html => html`
<p><a href="${view.base ?? ""}/">← report</a> · <a href="/api${view.base ?? ""}/connections/${view.connection.id}">JSON</a></p>
<h2>Connection ${view.connection.id}: ${view.connection.host}:${view.connection.port}</h2>
<div id="live"${view.connection.state === "open" ? html` data-version="${view.version}"` : ""}>${connectionLive(view)}</div>`
