/**
 * `GET /`: a plain page listing the connections and servers with links to the
 * JSON API. The time graph and the full report come with the report issue.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import type { ReporterService } from "../services/Reporter.js"
import { html } from "./Html.js"
import { securityHeaders } from "./Responses.js"

const seconds = (value: number | null) => (value === null ? "" : value.toFixed(3))

export const indexPage = (reporter: ReporterService) =>
  Effect.gen(function*() {
    const connections = yield* reporter.connections
    const servers = yield* reporter.servers
    const counts = yield* reporter.counts
    const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MITM report</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}</style>
</head><body>
<h1>MITM — Monitor In The Middle</h1>
<p>${counts.total} connections in this session${counts.evicted > 0 ? html`, ${counts.evicted} evicted (oldest closed first)` : ""}.
JSON: <a href="/api/connections">connections</a> · <a href="/api/servers">servers</a> · <a href="/api/settings">settings</a></p>
<h2>Servers</h2>
<table><tr><th>Host</th><th>Ports</th><th>Connections</th><th>Requests</th><th>Responses</th><th>Mean response time</th><th>Total connection time</th></tr>
${servers.map((s) => html`<tr><td>${s.host}</td><td>${s.ports.join(", ")}</td><td class="n">${s.connections}${s.openConnections > 0 ? html` (still open: ${s.openConnections})` : ""}</td><td class="n">${s.requests}</td><td class="n">${s.responses}</td><td class="n">${s.meanResponseTime === null ? "" : `${seconds(s.meanResponseTime)} s`}</td><td>${s.totalConnectionTime === null ? "there are still open connections" : `${seconds(s.totalConnectionTime)} s`}</td></tr>`)}
</table>
<h2>Connections</h2>
<table><tr><th>ID</th><th>Server</th><th>Port</th><th>State</th><th>Protocol</th><th>Opened</th><th>Closed</th><th>Bytes up</th><th>Bytes down</th><th>Error</th></tr>
${connections.map((c) => html`<tr><td><a href="/api/connections/${c.id}">${c.id}</a></td><td>${c.host}</td><td class="n">${c.port}</td><td>${c.state}</td><td>${c.protocol}</td><td class="n">${seconds(c.openedAt)}</td><td class="n">${seconds(c.closedAt)}</td><td class="n">${c.bytesUp}</td><td class="n">${c.bytesDown}</td><td>${c.error ?? ""}</td></tr>`)}
</table>
</body></html>`
    return HttpServerResponse.html(page.text).pipe(HttpServerResponse.setHeaders(securityHeaders))
  })
