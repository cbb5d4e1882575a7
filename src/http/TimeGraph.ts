/**
 * The time graph: inline SVG, one row per connection on a shared time axis,
 * grouped by server. Each bar tells Tor's stream setup (SOCKS), injected
 * delay, TLS handshake, waiting for the server and transfer apart, with a
 * tooltip and a link to the connection on every bar, phase and circle.
 */
import type { Connection } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"
import { type Html, html } from "./Html.js"

export interface TimeGraphOptions {
  /** Session seconds now: open connections are drawn to here. */
  readonly now: number
  readonly from?: number
  readonly to?: number
  readonly host?: string
  readonly width?: number
}

export type PhaseKind = "socks" | "delay" | "tls" | "waiting" | "transfer" | "idle"

export interface Phase {
  readonly kind: PhaseKind
  readonly start: number
  readonly end: number
}

const phaseNames: Record<PhaseKind, string> = {
  socks: "SOCKS setup (Tor stream setup)",
  delay: "delay injected by MITM",
  tls: "TLS handshake",
  waiting: "waiting for the server",
  transfer: "response transfer",
  idle: "connection open, idle"
}

const find = (events: ReadonlyArray<ConnectionEvent>, type: ConnectionEvent["type"]) => events.find((e) => e.type === type)

/** The phases of a connection's bar, in time order; idle fills what no other phase covers. */
export const phasesOf = (connection: Connection, now: number): ReadonlyArray<Phase> => {
  const end = connection.closedAt ?? now
  const events = connection.events
  const phases: Array<Phase> = []
  const reply = find(events, "SocksResponseEnd")
  const socksEnd = reply?.time ?? (connection.state === "open" ? end : end)
  const delays: Array<Phase> = []
  let delayStart: number | undefined
  for (const event of events) {
    if (event.type === "DelayStart") delayStart = event.time
    else if (event.type === "DelayEnd" && delayStart !== undefined) {
      delays.push({ kind: "delay", start: delayStart, end: event.time })
      delayStart = undefined
    }
  }
  if (delayStart !== undefined) delays.push({ kind: "delay", start: delayStart, end })
  // SOCKS setup is the time from the request to the reply that was not injected delay.
  let cursor = connection.openedAt
  for (const delay of delays.filter((d) => d.start < socksEnd)) {
    if (delay.start > cursor) phases.push({ kind: "socks", start: cursor, end: delay.start })
    cursor = Math.max(cursor, delay.end)
  }
  if (socksEnd > cursor) phases.push({ kind: "socks", start: cursor, end: socksEnd })
  phases.push(...delays)
  const hello = find(events, "TlsClientHello")
  if (hello !== undefined) phases.push({ kind: "tls", start: hello.time, end: find(events, "TlsServerHello")?.time ?? end })
  const requests = events.filter((e) => e.type === "HttpRequestStart")
  const starts = events.filter((e) => e.type === "HttpResponseStart")
  const ends = events.filter((e) => e.type === "HttpResponseEnd")
  requests.forEach((request, index) => {
    const response = starts[index]
    phases.push({ kind: "waiting", start: request.time, end: response?.time ?? end })
    if (response !== undefined) phases.push({ kind: "transfer", start: response.time, end: ends[index]?.time ?? end })
  })
  const busy = phases.filter((p) => p.end > p.start).sort((a, b) => a.start - b.start)
  const idle: Array<Phase> = []
  let covered = connection.openedAt
  for (const phase of busy) {
    if (phase.start > covered) idle.push({ kind: "idle", start: covered, end: phase.start })
    covered = Math.max(covered, phase.end)
  }
  if (end > covered) idle.push({ kind: "idle", start: covered, end })
  return [...busy, ...idle].sort((a, b) => a.start - b.start || (a.kind === "idle" ? 1 : -1))
}

/** 1, 2 or 5 times a power of ten, so that about `target` ticks span `span` seconds. */
const tickStep = (span: number, target: number): number => {
  const raw = span / target
  const power = 10 ** Math.floor(Math.log10(raw))
  const scaled = raw / power
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power
}

const tickLabel = (value: number, step: number): string => {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)))
  return `${value.toFixed(decimals)} s`
}

const s3 = (seconds: number) => `${seconds.toFixed(3)} s`
const px = (value: number) => Math.round(value * 10) / 10

const rowHeight = 16
const barHeight = 10
const labelWidth = 210
const axisHeight = 26
const groupGap = 18

const styles = `
.tg text{font:11px system-ui,sans-serif;fill:#333}
.tg .grid{stroke:#e4e6ea}
.tg .host{font-weight:600;fill:#111}
.tg .bar{fill:none;stroke:#8a94a6;stroke-width:1}
.tg .failed .bar{stroke:#c62828;stroke-width:1.5}
.tg .open .bar{stroke-dasharray:3 2}
.tg .socks{fill:#e69f00}
.tg .delay{fill:#cc79a7}
.tg .tls{fill:#56b4e9}
.tg .waiting{fill:#f0e442}
.tg .transfer{fill:#009e73}
.tg .idle{fill:#e9ecf1}
.tg .req{fill:#0072b2;stroke:#fff;stroke-width:1}
.tg .res{fill:#d55e00;stroke:#fff;stroke-width:1}
.tg a:hover rect,.tg a:hover circle{opacity:.75}
.tg .row:hover .label{fill:#0b62c4}
`

interface Row {
  readonly connection: Connection
  readonly y: number
}

export const renderTimeGraph = (connections: ReadonlyArray<Connection>, options: TimeGraphOptions): Html => {
  const now = options.now
  const visible = connections.filter((c) =>
    (options.host === undefined || c.host === options.host) &&
    (options.from === undefined || (c.closedAt ?? now) >= options.from) &&
    (options.to === undefined || c.openedAt <= options.to)
  )
  if (visible.length === 0) {
    return html`<svg id="timegraph" class="tg" role="img" aria-label="Time graph: no connections" viewBox="0 0 400 30" width="400" height="30"><text x="4" y="19" font-family="system-ui,sans-serif" font-size="13">No connections yet.</text></svg>`
  }
  const width = options.width ?? 1100
  const plotWidth = width - labelWidth - 16
  const start = options.from ?? Math.min(...visible.map((c) => c.openedAt))
  const latest = Math.max(...visible.map((c) => c.closedAt ?? now))
  const end = Math.max(options.to ?? latest, start + 0.001)
  const x = (t: number) => px(labelWidth + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * plotWidth)

  // Group rows by server, in order of each server's first connection.
  const groups = new Map<string, Array<Connection>>()
  for (const c of visible) {
    const key = c.host === "" ? "(invalid SOCKS request)" : c.host
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [c])
    else group.push(c)
  }
  const rows: Array<Row> = []
  const labels: Array<Html> = []
  let y = axisHeight
  for (const [host, group] of groups) {
    y += 4
    labels.push(html`<text class="host" x="4" y="${y + 10}"><a href="/?host=${encodeURIComponent(host)}">${host}</a> <tspan fill="#667" font-weight="400">${group.length} conn.</tspan></text>`)
    y += groupGap - 4
    for (const connection of group) {
      rows.push({ connection, y })
      y += rowHeight
    }
  }
  const height = y + 8

  const step = tickStep(end - start, 10)
  const ticks: Array<Html> = []
  for (let t = Math.ceil(start / step) * step; t <= end + step / 1000; t += step) {
    ticks.push(html`<line class="grid" x1="${x(t)}" x2="${x(t)}" y1="${axisHeight - 6}" y2="${height}"/><text x="${x(t)}" y="${axisHeight - 10}" text-anchor="middle">${tickLabel(t, step)}</text>`)
  }

  const renderRow = ({ connection: c, y: rowY }: Row) => {
    const link = `/connections/${c.id}`
    const closed = c.closedAt ?? now
    const barY = rowY + (rowHeight - barHeight) / 2
    const state = c.state === "open" ? "open (drawn to now)" : c.state
    const barTitle = `#${c.id} ${c.host}:${c.port} — ${state}\nopened ${s3(c.openedAt)}, ${c.closedAt === null ? "still open" : `closed ${s3(c.closedAt)} (${s3(c.closedAt - c.openedAt)})`}\n${c.bytesUp} bytes up, ${c.bytesDown} bytes down${c.error === null ? "" : `\nerror: ${c.error}`}`
    const phases = phasesOf(c, now).filter((p) => p.end > p.start)
    const requests = c.events.filter((e) => e.type === "HttpRequestStart")
    const responseStarts = c.events.filter((e) => e.type === "HttpResponseStart")
    const ends = c.events.filter((e) => e.type === "HttpResponseEnd")
    let requestIndex = 0
    let responseIndex = 0
    const marks = c.events.filter((e) => e.type === "HttpRequestStart" || e.type === "HttpResponseStart")
    return html`<g class="row ${c.state}" data-id="${c.id}">
<a href="${link}"><title>${barTitle}</title><text class="label" x="${labelWidth - 6}" y="${rowY + 11}" text-anchor="end">#${c.id} :${c.port}${c.state === "open" ? " ▸" : ""}</text>
<rect class="bar" x="${x(c.openedAt)}" y="${barY - 1}" width="${Math.max(px(x(closed) - x(c.openedAt)), 1)}" height="${barHeight + 2}"/></a>
${phases.map((p) => html`<a href="${link}"><rect class="${p.kind}" x="${x(p.start)}" y="${barY}" width="${Math.max(px(x(p.end) - x(p.start)), 0.8)}" height="${barHeight}"><title>${phaseNames[p.kind]}: ${s3(p.start)} → ${s3(p.end)} (${s3(p.end - p.start)})\n#${c.id} ${c.host}:${c.port}</title></rect></a>`)}
${marks.map((e) => {
      const index = e.type === "HttpRequestStart" ? requestIndex++ : responseIndex++
      const answer = e.type === "HttpRequestStart" ? responseStarts[index] : undefined
      const tip = e.type === "HttpRequestStart"
        ? `request ${s3(e.time)}: ${e.detail}${answer === undefined ? "\nno response yet" : `\nresponse after ${s3(answer.time - e.time)}`}`
        : `response ${s3(e.time)}: ${e.detail}${requests[index] === undefined ? "" : `\nfor ${requests[index].detail}`}${ends[index] === undefined ? "" : `\nbody ${ends[index].detail}`}`
      return html`<a href="${link}"><circle class="${e.type === "HttpRequestStart" ? "req" : "res"}" cx="${x(e.time)}" cy="${barY + barHeight / 2}" r="3.5"><title>${tip}\n#${c.id} ${c.host}:${c.port}</title></circle></a>`
    })}
</g>`
  }

  const legend: Array<[string, string]> = [
    ["socks", phaseNames.socks],
    ["delay", phaseNames.delay],
    ["tls", phaseNames.tls],
    ["waiting", phaseNames.waiting],
    ["transfer", phaseNames.transfer],
    ["idle", phaseNames.idle]
  ]
  // Legend entries laid out by the length of their names (about 6 px a character at 11 px).
  let legendX = 4
  const legendItems = legend.map(([kind, name]) => {
    const item = html`<rect class="${kind}" x="${legendX}" y="4" width="12" height="10"/><text x="${legendX + 16}" y="13">${name}</text>`
    legendX += 16 + name.length * 6 + 14
    return item
  })
  for (const [kind, name] of [["req", "request"], ["res", "response"]]) {
    legendItems.push(html`<circle class="${kind}" cx="${legendX + 5}" cy="9" r="4"/><text x="${legendX + 13}" y="13">${name}</text>`)
    legendX += 13 + name.length * 6 + 14
  }
  const legendHeight = 22
  const total = height + legendHeight
  return html`<svg id="timegraph" class="tg" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Time graph of ${visible.length} connections" viewBox="0 0 ${width} ${total}" width="100%" style="max-width:${width}px;min-width:700px"><style>${styles}</style>
<g class="legend">${legendItems}</g>
<g transform="translate(0 ${legendHeight})">
${ticks}
${labels}
${rows.map(renderRow)}
</g></svg>`
}
