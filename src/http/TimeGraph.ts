/**
 * The time graph (SPEC §3): inline SVG, one row per connection on a shared
 * time axis, grouped by server. Each bar tells Tor's stream setup (SOCKS),
 * delay injected by MITM, the TLS handshake, waiting for the server and the
 * transfer apart, so a Tor developer sees at a glance which server was slow and
 * whether the time went to Tor or to the server. Every row is a link to its
 * connection, with a tooltip on the bar, each phase and each request/response.
 */
import type { Connection } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"
import { Html, html } from "./Html.js"

export interface TimeGraphOptions {
  /** Session seconds now: open connections are drawn to here. */
  readonly now: number
  /** A time window in session seconds: connections wholly outside it are not drawn. */
  readonly from?: number
  readonly to?: number
  /** Only this server's connections. */
  readonly host?: string
  /** Pixels; the SVG scales to its container. Default 1100. */
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
  idle: "connected, idle"
}

/**
 * Where phases overlap, the one that explains the time best wins: injected delay over
 * everything (it is not Tor's time nor the server's), a response being transferred over
 * the next pipelined request's wait.
 */
const priority: Record<PhaseKind, number> = { delay: 5, socks: 4, tls: 3, transfer: 2, waiting: 1, idle: 0 }

/** A phase as drawn: what it is and the lines its tooltip adds. */
interface Span extends Phase {
  readonly note: string
}

const s3 = (seconds: number) => `${seconds.toFixed(3)} s`

/** The raw, possibly overlapping phases of a connection, each with its tooltip lines. */
const spansOf = (c: Connection, end: number): Array<Span> => {
  const spans: Array<Span> = []
  const add = (kind: PhaseKind, start: number, stop: number, note: string) => {
    const from = Math.max(start, c.openedAt)
    const to = Math.min(stop, end)
    if (to > from) spans.push({ kind, start: from, end: to, note })
  }
  let socksRequest: ConnectionEvent | undefined
  let socksReply: ConnectionEvent | undefined
  let delay: ConnectionEvent | undefined
  let hello: ConnectionEvent | undefined
  let serverHello: ConnectionEvent | undefined
  const requests: Array<ConnectionEvent> = []
  const requestEnds: Array<ConnectionEvent> = []
  const responses: Array<ConnectionEvent> = []
  const responseEnds: Array<ConnectionEvent> = []
  for (const e of c.events) {
    switch (e.type) {
      case "SocksRequestStart":
        socksRequest ??= e
        break
      case "SocksResponseEnd":
        socksReply ??= e
        break
      case "DelayStart":
        delay = e
        break
      case "DelayEnd":
        if (delay !== undefined) add("delay", delay.time, e.time, delay.detail)
        delay = undefined
        break
      case "TlsClientHello":
        hello ??= e
        break
      case "TlsServerHello":
        serverHello ??= e
        break
      case "HttpRequestStart":
        requests.push(e)
        break
      case "HttpRequestEnd":
        requestEnds.push(e)
        break
      case "HttpResponseStart":
        responses.push(e)
        break
      case "HttpResponseEnd":
        responseEnds.push(e)
        break
    }
  }
  if (delay !== undefined) add("delay", delay.time, end, `${delay.detail} (still held)`)
  add(
    "socks",
    c.openedAt,
    socksReply?.time ?? end,
    `${socksRequest?.detail ?? `${c.host}:${c.port}`} → ${socksReply?.detail ?? "no reply yet"}`
  )
  if (hello !== undefined) {
    add("tls", hello.time, serverHello?.time ?? end, `ClientHello ${hello.detail}\nServerHello ${serverHello?.detail ?? "not yet"}`)
  }
  requests.forEach((request, index) => {
    const response = responses[index]
    const body = requestEnds[index] === undefined ? "" : `, body ${requestEnds[index].detail}`
    add("waiting", request.time, response?.time ?? end, `${request.detail}${body}\n→ ${response?.detail ?? "no response yet"}`)
    if (response !== undefined) {
      const received = responseEnds[index]
      add("transfer", response.time, received?.time ?? end, `${response.detail}, body ${received?.detail ?? "still arriving"}\nfor ${request.detail}`)
    }
  })
  return spans
}

/**
 * Cuts a connection's bar into consecutive, non-overlapping phases: at every moment the
 * highest-priority phase running (the earliest started among equals), idle where none is.
 */
const partition = (c: Connection, end: number): Array<Span> => {
  const spans = spansOf(c, end)
  const times = new Set<number>([c.openedAt, end])
  for (const span of spans) times.add(span.start).add(span.end)
  const cuts = Array.from(times).filter((t) => t >= c.openedAt && t <= end).sort((a, b) => a - b)
  const byStart = spans.slice().sort((a, b) => a.start - b.start)
  const active: Array<Span> = []
  const out: Array<Span> = []
  let next = 0
  let previous: Span | undefined
  for (let i = 0; i + 1 < cuts.length; i++) {
    const from = cuts[i]
    const to = cuts[i + 1]
    while (next < byStart.length && byStart[next].start <= from) active.push(byStart[next++])
    for (let j = active.length - 1; j >= 0; j--) if (active[j].end <= from) active.splice(j, 1)
    let best: Span | undefined
    for (const span of active) if (best === undefined || priority[span.kind] > priority[best.kind]) best = span
    const last = out[out.length - 1]
    if (last !== undefined && previous === best && last.end === from) {
      out[out.length - 1] = { ...last, end: to }
    } else {
      out.push(best === undefined ? { kind: "idle", start: from, end: to, note: "" } : { ...best, start: from, end: to })
    }
    previous = best
  }
  return out
}

/** The phases of a connection's bar, in time order, covering it from opening to close (or `now`). */
export const phasesOf = (connection: Connection, now: number): ReadonlyArray<Phase> =>
  partition(connection, Math.max(connection.closedAt ?? now, connection.openedAt))
    .map(({ end, kind, start }) => ({ kind, start, end }))

/** 1, 2 or 5 times a power of ten, so that about `target` ticks span `span` seconds. */
const tickStep = (span: number, target: number): number => {
  const raw = Math.max(span, 0.001) / target
  const power = 10 ** Math.floor(Math.log10(raw))
  const scaled = raw / power
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power
}

/** `0 s`, `0.5 s`, `2 s`, `120 s`: as many decimals as the step needs, no trailing zeros. */
const tickLabel = (value: number, step: number): string => {
  const fixed = value.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)))
  const trimmed = fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed
  return `${trimmed === "-0" ? "0" : trimmed} s`
}

const px = (value: number) => Math.round(value * 10) / 10

const rowHeight = 16
const barHeight = 10
const labelWidth = 112
const rightMargin = 24
const headerHeight = 18
const axisHeight = 20
const legendLine = 18
const hostChars = 70

// Okabe–Ito colours (told apart with colour blindness); the delay is hatched as well,
// so that injected time never reads as Tor's or the server's.
const styles = `
.tg text{font:11px system-ui,sans-serif;fill:#333}
.tg .grid{stroke:#e6e8ec}
.tg .now{stroke:#555;stroke-dasharray:2 3}
.tg .h{font-weight:600;fill:#111;paint-order:stroke;stroke:#fff;stroke-width:3px}
.tg .h tspan{font-weight:400;fill:#556}
.tg .h a{fill:#0b62c4}
.tg .bar{fill:none;stroke:#8a94a6}
.tg .failed .bar{stroke:#c62828;stroke-width:1.6}
.tg .l{text-anchor:end}
.tg .failed .l{fill:#c62828}
.tg .open .bar{stroke-dasharray:3 2}
.tg .arrow{fill:#556}
.tg .socks{fill:#e69f00}
.tg .delay{fill:url(#tg-hatch)}
.tg .tls{fill:#56b4e9}
.tg .waiting{fill:#f0e442}
.tg .transfer{fill:#009e73}
.tg .idle{fill:#e9ecf1}
.tg .req,.tg .res{stroke:#fff;stroke-width:1}
.tg .ireq,.tg .ires{fill:#fff;stroke-width:1.6}
.tg .ireq{stroke:#0072b2}
.tg .ires{stroke:#d55e00}
.tg .req{fill:#0072b2}
.tg .res{fill:#d55e00}
.tg .row a:hover rect,.tg .row a:hover circle{opacity:.8}
.tg .row a:hover .l{fill:#0b62c4;text-decoration:underline}
`

const defs = html`<defs><pattern id="tg-hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="4" height="4" fill="#f3d3e6"/><rect width="2" height="4" fill="#cc79a7"/></pattern></defs>`

/** Up to `limit` characters, for labels; tooltips keep the whole text. */
const clip = (text: string, limit: number) => (text.length > limit ? `${text.slice(0, limit - 1)}…` : text)

interface Group {
  readonly host: string
  readonly first: number
  readonly connections: Array<Connection>
}

/** The visible connections, by server, servers in order of their first connection. */
const groupsOf = (connections: ReadonlyArray<Connection>): Array<Group> => {
  const byHost = new Map<string, Group>()
  for (const c of connections) {
    const host = c.host === "" ? "(no valid SOCKS request)" : c.host
    const group = byHost.get(host)
    if (group === undefined) byHost.set(host, { host, first: c.openedAt, connections: [c] })
    else {
      group.connections.push(c)
      if (c.openedAt < group.first) byHost.set(host, { ...group, first: c.openedAt })
    }
  }
  return Array.from(byHost.values()).sort((a, b) => a.first - b.first)
}

const emptyGraph = (message: string): Html =>
  html`<svg id="timegraph" class="tg" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Time graph: ${message}" viewBox="0 0 400 24" width="400" height="24"><text x="4" y="16" font-family="system-ui,sans-serif" font-size="13" fill="#667">${message}</text></svg>`

export const renderTimeGraph = (connections: ReadonlyArray<Connection>, options: TimeGraphOptions): Html => {
  const now = options.now
  const { from, host, to } = options
  const endOf = (c: Connection) => Math.max(c.closedAt ?? now, c.openedAt)
  const visible = connections.filter((c) =>
    (host === undefined || c.host === host) &&
    (from === undefined || endOf(c) >= from) &&
    (to === undefined || c.openedAt <= to)
  )
  if (visible.length === 0) {
    return emptyGraph(connections.length === 0 ? "No connections yet" : "No connections match this filter")
  }

  // The axis: the window asked for, else from a whole tick before the first opening to the last close.
  const width = Math.max(options.width ?? 1100, 400)
  const plotWidth = width - labelWidth - rightMargin
  let first = Infinity
  let last = -Infinity
  for (const c of visible) {
    first = Math.min(first, c.openedAt)
    last = Math.max(last, endOf(c))
  }
  const wanted = { start: from ?? first, end: Math.max(to ?? last, (from ?? first) + 0.001) }
  const step = tickStep(wanted.end - wanted.start, Math.max(2, Math.round(plotWidth / 95)))
  const start = from ?? Math.floor(wanted.start / step) * step
  const end = Math.max(to ?? wanted.end, start + 0.001)
  const scale = plotWidth / (end - start)
  const x = (t: number) => px(labelWidth + (Math.min(Math.max(t, start), end) - start) * scale)
  const inWindow = (t: number) => t >= start && t <= end

  // Legend: one entry per colour and mark, wrapped to the width (about 6 px a character).
  const legendEntries: Array<[mark: (x: number, y: number) => Html, name: string]> = [
    ...(["socks", "delay", "tls", "waiting", "transfer", "idle"] as const).map((kind): [(x: number, y: number) => Html, string] => [
      (lx, ly) => html`<rect class="${kind}" x="${lx}" y="${ly - 9}" width="14" height="10"/>`,
      phaseNames[kind]
    ]),
    [(lx, ly) => html`<circle class="req" cx="${lx + 7}" cy="${ly - 4}" r="4"/>`, "request sent"],
    [(lx, ly) => html`<circle class="res" cx="${lx + 7}" cy="${ly - 4}" r="4"/>`, "response started"],
    [(lx, ly) => html`<circle class="ireq" cx="${lx + 7}" cy="${ly - 4}" r="3.5"/>`, "inferred request (encrypted)"],
    [(lx, ly) => html`<circle class="ires" cx="${lx + 7}" cy="${ly - 4}" r="3.5"/>`, "inferred response (encrypted)"],
    [(lx, ly) => html`<g class="open"><rect class="bar" x="${lx}" y="${ly - 10}" width="14" height="12"/></g>`, "still open (drawn to now)"],
    [(lx, ly) => html`<g class="failed"><rect class="bar" x="${lx}" y="${ly - 10}" width="14" height="12"/></g>`, "failed"]
  ]
  const legend: Array<Html> = []
  let lx = 4
  let ly = 13
  for (const [mark, name] of legendEntries) {
    const itemWidth = 20 + name.length * 6 + 14
    if (lx + itemWidth > width && lx > 4) {
      lx = 4
      ly += legendLine
    }
    legend.push(html`${mark(lx, ly)}<text x="${lx + 19}" y="${ly}">${name}</text>`)
    lx += itemWidth
  }
  const top = ly + 8 + axisHeight

  const renderRow = (c: Connection, spans: ReadonlyArray<Span>, closed: number, rowY: number): Html => {
    const open = c.state === "open"
    const barY = rowY + (rowHeight - barHeight) / 2
    const midY = barY + barHeight / 2
    const x0 = x(c.openedAt)
    const x1 = x(closed)
    const requests: Array<ConnectionEvent> = []
    const responses: Array<ConnectionEvent> = []
    const bodies: Array<ConnectionEvent> = []
    const inferred: Array<ConnectionEvent> = []
    let reply: ConnectionEvent | undefined
    for (const e of c.events) {
      if (e.type === "InferredRequest" || e.type === "InferredResponse") inferred.push(e)
      else if (e.type === "HttpRequestStart") requests.push(e)
      else if (e.type === "HttpResponseStart") responses.push(e)
      else if (e.type === "HttpResponseEnd") bodies.push(e)
      else if (e.type === "SocksResponseEnd") reply ??= e
    }
    const tip = [
      `#${c.id} ${c.host}:${c.port} · ${open ? "open (drawn to now)" : c.state}`,
      `opened ${s3(c.openedAt)} · ${c.closedAt === null ? `still open at ${s3(now)}` : `closed ${s3(c.closedAt)}`} · ${s3(closed - c.openedAt)}`,
      reply === undefined ? "no SOCKS reply yet" : `SOCKS reply ${s3(reply.time)}: ${reply.detail}`,
      `${requests.length} request${requests.length === 1 ? "" : "s"}, ${responses.length} response${responses.length === 1 ? "" : "s"} · ${c.bytesUp} bytes up, ${c.bytesDown} bytes down`,
      ...(c.error === null ? [] : [`error: ${c.error}`])
    ].join("\n")
    const phases = spans
      .filter((p) => p.end > start && p.start < end)
      .map((p) => {
        const px0 = x(p.start)
        return html`<rect class="${p.kind}" x="${px0}" y="${barY}" width="${Math.max(px(x(p.end) - px0), 0.6)}" height="${barHeight}"><title>#${c.id} ${phaseNames[p.kind]} ${s3(p.start)} → ${s3(p.end)} (${s3(p.end - p.start)})${p.note === "" ? "" : `\n${p.note}`}</title></rect>`
      })
    // A circle at each request and response start, with its line, its partner and the body size.
    const marks: Array<Html> = []
    requests.forEach((request, index) => {
      if (!inWindow(request.time)) return
      const response = responses[index]
      const after = response === undefined ? "no response yet" : `response after ${s3(response.time - request.time)}: ${response.detail}`
      marks.push(html`<circle class="req" cx="${x(request.time)}" cy="${midY}" r="3.5"><title>#${c.id} request ${s3(request.time)}: ${request.detail}\n${after}</title></circle>`)
    })
    responses.forEach((response, index) => {
      if (!inWindow(response.time)) return
      const request = requests[index]
      const received = bodies[index]
      const size = received === undefined ? "body still arriving" : `body ${received.detail} by ${s3(received.time)}`
      marks.push(html`<circle class="res" cx="${x(response.time)}" cy="${midY}" r="3.5"><title>#${c.id} response ${s3(response.time)}: ${response.detail}\n${size}${request === undefined ? "" : `\nfor ${request.detail}`}</title></circle>`)
    })
    // Hollow marks: exchanges inferred from the direction of encrypted or unknown bytes.
    for (const e of inferred) {
      if (!inWindow(e.time)) continue
      marks.push(html`<circle class="${e.type === "InferredRequest" ? "ireq" : "ires"}" cx="${x(e.time)}" cy="${midY}" r="3"><title>#${c.id} inferred ${e.type === "InferredRequest" ? "request" : "response"} ${s3(e.time)}: ${e.detail}</title></circle>`)
    }
    const arrow = open && closed >= start && closed <= end
      ? html`<path class="arrow" d="M${x1 + 1} ${barY - 2}l5 ${barHeight / 2 + 2}l-5 ${barHeight / 2 + 2}z"/>`
      : ""
    return html`<g class="row ${c.state}" data-id="${c.id}"><a href="/connections/${c.id}"><title>${tip}</title><text class="l" x="${labelWidth - 8}" y="${rowY + 12}">#${c.id} :${c.port}</text><rect class="bar" x="${px(x0 - 0.5)}" y="${barY - 1}" width="${px(Math.max(x1 - x0, 0) + 1)}" height="${barHeight + 2}"/>${phases}${marks}${arrow}</a></g>
`
  }


  // Rows, group by group; each group's header names the server and its slowest setup and wait.
  const groups = groupsOf(visible)
  const body: Array<Html> = []
  let y = top
  for (const group of groups) {
    const rows: Array<Html> = []
    let slowestSetup = 0
    let slowestWait = 0
    let rowY = y + headerHeight
    for (const c of group.connections) {
      const closed = endOf(c)
      const spans = partition(c, closed)
      for (const span of spans) {
        if (span.kind === "socks") slowestSetup = Math.max(slowestSetup, span.end - span.start)
        if (span.kind === "waiting") slowestWait = Math.max(slowestWait, span.end - span.start)
      }
      rows.push(renderRow(c, spans, closed, rowY))
      rowY += rowHeight
    }
    const summary = [
      `${group.connections.length} connection${group.connections.length === 1 ? "" : "s"}`,
      slowestSetup > 0 ? `slowest SOCKS setup ${s3(slowestSetup)}` : "",
      slowestWait > 0 ? `slowest wait for a response ${s3(slowestWait)}` : ""
    ].filter((part) => part !== "").join(" · ")
    body.push(html`<g class="grp"><text class="h" x="4" y="${y + 13}"><a href="/?host=${encodeURIComponent(group.host)}">${clip(group.host, hostChars)}</a> <tspan>${summary}</tspan></text>
${rows}</g>
`)
    y = rowY + 2
  }
  const bottom = y + 4
  const height = bottom + axisHeight

  // Ticks on top and bottom, with grid lines; a line at "now" when open connections are shown.
  const ticks: Array<Html> = []
  const firstTick = Math.ceil(start / step - 1e-9)
  for (let k = firstTick; k * step <= end + step * 1e-9; k++) {
    const t = k * step
    const tx = x(t)
    const label = tickLabel(t, step)
    ticks.push(html`<line class="grid" x1="${tx}" x2="${tx}" y1="${top - 4}" y2="${bottom}"/><text x="${tx}" y="${top - 8}" text-anchor="middle">${label}</text><text x="${tx}" y="${bottom + 14}" text-anchor="middle">${label}</text>`)
  }
  const nowLine = visible.some((c) => c.state === "open") && inWindow(now)
    ? html`<line class="now" x1="${x(now)}" x2="${x(now)}" y1="${top - 4}" y2="${bottom}"><title>now, ${s3(now)}</title></line>`
    : ""

  const label = `Time graph of ${visible.length} connection${visible.length === 1 ? "" : "s"} to ${groups.length} server${groups.length === 1 ? "" : "s"}, ${tickLabel(start, step)} to ${tickLabel(end, step)}`
  return html`<svg id="timegraph" class="tg" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${label}" viewBox="0 0 ${width} ${height}" width="100%" style="width:100%;min-width:700px;max-width:${width}px"><style>${new Html(styles)}</style>${defs}
<g class="legend">${legend}</g>
<g class="axis">${ticks}${nowLine}</g>
${body}</svg>`
}
