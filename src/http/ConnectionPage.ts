/**
 * `GET /connections/:id`: one connection, and its event log in the seed's
 * layout (`000.249  HttpRequestStart  GET / HTTP/1.1`), with the first line
 * or all header lines per the `headers` setting.
 */
import type { Connection } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"
import { socksSetupTime } from "../domain/Summary.js"
import { type Html, html } from "./Html.js"
import { seconds } from "./ReportPage.js"
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
}

export const connectionLive = ({ connection: c, headers, now }: ConnectionView): Html => {
  const setup = socksSetupTime(c)
  const decodeErrors = c.events.filter((event) => event.type === "DecodeError")
  return html`
<table>
<tr><th>ID</th><td>${c.id}</td></tr>
<tr><th>Server</th><td><a href="/?host=${encodeURIComponent(c.host)}">${c.host}</a></td></tr>
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
<div class="graph">${renderTimeGraph([c], { now })}</div>
<h2>Event log <span class="muted">(${headers === "all" ? "all header lines" : "first line of each request and response"}; <a href="/settings">change</a>)</span></h2>
<pre class="log" id="log">${eventLog(c, headers)}</pre>`
}

export const connectionBody = (view: ConnectionView): Html => html`
<p><a href="/">← report</a> · <a href="/api/connections/${view.connection.id}">JSON</a></p>
<h2>Connection ${view.connection.id}: ${view.connection.host}:${view.connection.port}</h2>
<div id="live"${view.connection.state === "open" ? html` data-version="${view.version}"` : ""}>${connectionLive(view)}</div>`
