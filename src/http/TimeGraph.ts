/**
 * The time graph (SPEC §3): inline SVG, one row per connection on a shared
 * time axis, grouped by server. Each bar tells Tor's stream setup (SOCKS),
 * delay injected by MITM, the TLS handshake, waiting for the server and the
 * transfer apart, so a Tor developer sees at a glance which server was slow and
 * whether the time went to Tor or to the server. Every row is a link to its
 * connection, with a tooltip on the bar, each phase and each request/response.
 * With Tor's control port a row carries its circuit's colour, and a circuit
 * launched for the connection's stream shows as its build inside the SOCKS setup.
 * What goes where is `TimeGraphLayout`'s; this module writes it as SVG.
 */
import type { Connection } from "../domain/Connection.js"
import type { Exchange } from "../domain/Exchange.js"
import type { TorCircuit } from "../domain/TorCircuits.js"
import type { TorRelay } from "../domain/TorControlProtocol.js"
import { Html, html } from "./Html.js"
import {
  type Axis,
  circuitHue,
  type Group,
  layoutTimeGraph,
  type Mark,
  type Phase,
  type PhaseKind,
  type Row,
  type RowCircuit,
  type TimeGraphOptions
} from "./TimeGraphLayout.js"

export type { TimeGraphOptions } from "./TimeGraphLayout.js"

const phaseNames: Record<PhaseKind, string> = {
  socks: "SOCKS setup (Tor stream setup)",
  circuit: "Tor circuit build",
  delay: "delay injected by MITM",
  tls: "TLS handshake",
  waiting: "waiting for the server",
  transfer: "response transfer",
  idle: "connected, idle"
}

const s3 = (seconds: number) => `${seconds.toFixed(3)} s`

/** `0.84 s`: up to milliseconds, no trailing zeros. */
export const shortSeconds = (seconds: number): string => `${Number(seconds.toFixed(3))} s`

/** A circuit's colour, the same in the graph, the circuits table and the connection page. */
export const circuitColour = (id: string): string => `hsl(${circuitHue(id)},70%,42%)`

/** A relay as people name it: its nickname, else its fingerprint. */
export const relayName = (relay: TorRelay): string => relay.nickname ?? relay.fingerprint ?? "?"

/** `circuit 7: guard → middle → exit`. */
export const circuitLine = (id: string, path: ReadonlyArray<TorRelay>): string =>
  `circuit ${id}${path.length === 0 ? "" : `: ${path.map(relayName).join(" → ")}`}`

/** `circuit 7 built in 0.84 s`, or how far it got. */
export const circuitBuildLine = (circuit: TorCircuit): string =>
  circuit.buildTime !== null
    ? `circuit ${circuit.id} built in ${shortSeconds(circuit.buildTime)}`
    : circuit.state === "launched"
    ? `circuit ${circuit.id} still building`
    : `circuit ${circuit.id} ${circuit.state} before it was built${circuit.reason === null ? "" : ` (${circuit.reason})`}`

/** `0 s`, `0.5 s`, `2 s`, `120 s`: as many decimals as the step needs, no trailing zeros. */
const tickLabel = (value: number, step: number): string => {
  const fixed = value.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)))
  const trimmed = fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed
  return `${trimmed === "-0" ? "0" : trimmed} s`
}

const px = (value: number) => Math.round(value * 10) / 10

const rowHeight = 16
const barHeight = 10
const headerHeight = 18
const axisHeight = 20
const legendLine = 18
const hostChars = 70

// Okabe–Ito colours (told apart with colour blindness); the delay is hatched as well,
// so that injected time never reads as Tor's or the server's. A circuit build is a
// darker SOCKS orange: it is part of Tor's stream setup.
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
.tg .circuit{fill:#a86400}
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

/** Seconds to a pixel column on the axis; times outside the window sit on its edges. */
const xOf = (axis: Axis) => (t: number): number => px(axis.left + (Math.min(Math.max(t, axis.start), axis.end) - axis.start) * axis.scale)

type LegendSample = (x: number, y: number) => Html

const phaseSample = (kind: PhaseKind): readonly [LegendSample, string] => [
  (x, y) => html`<rect class="${kind}" x="${x}" y="${y - 9}" width="14" height="10"/>`,
  phaseNames[kind]
]

/** One entry per colour and mark; the circuit's only when some row has a circuit. */
const legendEntries = (tor: boolean): ReadonlyArray<readonly [sample: LegendSample, name: string]> => [
  ...(tor ? ["socks", "circuit", "delay", "tls", "waiting", "transfer", "idle"] as const : ["socks", "delay", "tls", "waiting", "transfer", "idle"] as const)
    .map(phaseSample),
  [(x, y) => html`<circle class="req" cx="${x + 7}" cy="${y - 4}" r="4"/>`, "request sent"],
  [(x, y) => html`<circle class="res" cx="${x + 7}" cy="${y - 4}" r="4"/>`, "response started"],
  [(x, y) => html`<circle class="ireq" cx="${x + 7}" cy="${y - 4}" r="3.5"/>`, "inferred request (encrypted)"],
  [(x, y) => html`<circle class="ires" cx="${x + 7}" cy="${y - 4}" r="3.5"/>`, "inferred response (encrypted)"],
  [(x, y) => html`<g class="open"><rect class="bar" x="${x}" y="${y - 10}" width="14" height="12"/></g>`, "still open (drawn to now)"],
  [(x, y) => html`<g class="failed"><rect class="bar" x="${x}" y="${y - 10}" width="14" height="12"/></g>`, "failed"],
  ...(tor
    ? [[
      (x: number, y: number) =>
        html`${["3", "4", "5"].map((id, k) => html`<rect fill="${circuitColour(id)}" x="${x + k * 5}" y="${y - 9}" width="4" height="10"/>`)}`,
      "Tor circuit (a colour each)"
    ] as const]
    : [])
]

/** The legend wrapped to `width` (about 6 px a character), and the baseline of its last line. */
const legendOf = (width: number, tor: boolean): { readonly markup: ReadonlyArray<Html>; readonly lastLine: number } => {
  const markup: Array<Html> = []
  let x = 4
  let y = 13
  for (const [sample, name] of legendEntries(tor)) {
    const itemWidth = 20 + name.length * 6 + 14
    if (x + itemWidth > width && x > 4) {
      x = 4
      y += legendLine
    }
    markup.push(html`${sample(x, y)}<text x="${x + 19}" y="${y}">${name}</text>`)
    x += itemWidth
  }
  return { markup, lastLine: y }
}

/** The request line as received: its event's display text (read exchanges always have the event). */
const requestLine = (exchange: Exchange): string => exchange.request?.detail ?? "request"

const stillHeld = (released: boolean) => (released ? "" : " (still held)")

/** The lines a phase's tooltip adds under its name and times. */
const phaseNote = (phase: Phase, connection: Connection): string => {
  switch (phase.kind) {
    case "socks":
      return `${phase.request?.detail ?? `${connection.host}:${connection.port}`} → ${phase.reply?.detail ?? "no reply yet"}`
    case "circuit":
      return `${circuitBuildLine(phase.circuit)}\n${circuitLine(phase.circuit.id, phase.circuit.path)}`
    case "delay":
      return phase.hold.delay === "socks"
        ? `${phase.hold.start.detail}${stillHeld(phase.hold.released)}`
        : `HTTP request held: ${requestLine(phase.hold.exchange)}${stillHeld(phase.hold.released)}`
    case "tls":
      return `ClientHello ${phase.clientHello.detail}\nServerHello ${phase.serverHello?.detail ?? "not yet"}`
    case "waiting": {
      const { exchange } = phase
      const body = exchange.requestBodyBytes === null ? "" : `, body ${exchange.requestBodyBytes} bytes`
      return `${requestLine(exchange)}${body}\n→ ${exchange.response?.detail ?? "no response yet"}`
    }
    case "transfer": {
      const { exchange } = phase
      const body = exchange.responseBodyBytes === null ? "still arriving" : `${exchange.responseBodyBytes} bytes`
      return `${exchange.response?.detail ?? "response"}, body ${body}\nfor ${requestLine(exchange)}`
    }
    case "idle":
      return ""
  }
}

/** A mark's tooltip: the line, its partner and the sizes. */
const markTip = (id: number, mark: Mark): string => {
  const { exchange, time } = mark
  switch (mark.kind) {
    case "request": {
      const after = exchange.wait === null ? "no response yet" : `response after ${s3(exchange.wait)}: ${exchange.response?.detail ?? ""}`
      return `#${id} request ${s3(time)}: ${requestLine(exchange)}\n${after}`
    }
    case "response": {
      const size = exchange.responseEnd === null
        ? "body still arriving"
        : `body ${exchange.responseBodyBytes ?? 0} bytes by ${s3(exchange.responseEnd)}`
      return `#${id} response ${s3(time)}: ${exchange.response?.detail ?? ""}\n${size}\nfor ${requestLine(exchange)}`
    }
    case "inferredRequest": {
      const size = exchange.requestBodyBytes === null ? "" : `, ${exchange.requestBodyBytes} bytes up`
      return `#${id} inferred request ${s3(time)}: exchange ${exchange.index + 1}: client burst${size}`
    }
    case "inferredResponse": {
      const size = exchange.responseBodyBytes === null ? "" : `, ${exchange.responseBodyBytes} bytes down`
      const after = exchange.wait === null ? "" : `\n${s3(exchange.wait)} after the client burst`
      return `#${id} inferred response ${s3(time)}: exchange ${exchange.index + 1}: server burst${size}${after}`
    }
  }
}

const markClass: Record<Mark["kind"], string> = { request: "req", response: "res", inferredRequest: "ireq", inferredResponse: "ires" }

/** Read marks are filled circles; inferred ones (from the direction of encrypted bytes) hollow and smaller. */
const markRadius: Record<Mark["kind"], number> = { request: 3.5, response: 3.5, inferredRequest: 3, inferredResponse: 3 }

/** The row's own tooltip: the connection, its times, its SOCKS reply, its counts and its error. */
const rowTip = (row: Row, now: number): string => {
  const c = row.connection
  return [
    `#${c.id} ${c.host}:${c.port} · ${row.open ? "open (drawn to now)" : c.state}`,
    `opened ${s3(c.openedAt)} · ${c.closedAt === null ? `still open at ${s3(now)}` : `closed ${s3(c.closedAt)}`} · ${s3(row.end - row.start)}`,
    row.reply === null ? "no SOCKS reply yet" : `SOCKS reply ${s3(row.reply.time)}: ${row.reply.detail}`,
    ...(row.circuit === null ? [] : [circuitLine(row.circuit.id, row.circuit.attribution.path)]),
    `${row.requests} request${row.requests === 1 ? "" : "s"}, ${row.responses} response${row.responses === 1 ? "" : "s"} · ${c.bytesUp} bytes up, ${c.bytesDown} bytes down`,
    ...(c.error === null ? [] : [`error: ${c.error}`])
  ].join("\n")
}

/** A square in the circuit's colour just left of the plot, so that rows on one circuit line up by colour. */
const circuitMarker = (circuit: RowCircuit, axis: Axis, barY: number): Html =>
  html`<rect class="circ" x="${axis.left - 6}" y="${barY}" width="4" height="${barHeight}" fill="${circuitColour(circuit.id)}"><title>${circuitLine(circuit.id, circuit.attribution.path)}</title></rect>`

/** One connection's row at `rowY`: label, circuit marker, outline, phases, marks and, while open, an arrow at now. */
const rowSvg = (row: Row, axis: Axis, now: number, rowY: number, base: string): Html => {
  const x = xOf(axis)
  const { id, port, state } = row.connection
  const barY = rowY + (rowHeight - barHeight) / 2
  const midY = barY + barHeight / 2
  const x0 = x(row.start)
  const x1 = x(row.end)
  const phases = row.phases.map((phase) => {
    const px0 = x(phase.start)
    const note = phaseNote(phase, row.connection)
    return html`<rect class="${phase.kind}" x="${px0}" y="${barY}" width="${Math.max(px(x(phase.end) - px0), 0.6)}" height="${barHeight}"><title>#${id} ${phaseNames[phase.kind]} ${s3(phase.start)} → ${s3(phase.end)} (${s3(phase.end - phase.start)})${note === "" ? "" : `\n${note}`}</title></rect>`
  })
  const marks = row.marks.map((mark) =>
    html`<circle class="${markClass[mark.kind]}" cx="${x(mark.time)}" cy="${midY}" r="${markRadius[mark.kind]}"><title>${markTip(id, mark)}</title></circle>`
  )
  const arrow = row.open && row.end >= axis.start && row.end <= axis.end
    ? html`<path class="arrow" d="M${x1 + 1} ${barY - 2}l5 ${barHeight / 2 + 2}l-5 ${barHeight / 2 + 2}z"/>`
    : ""
  return html`<g class="row ${state}" data-id="${id}"><a href="${base}/connections/${id}"><title>${rowTip(row, now)}</title><text class="l" x="${axis.left - 8}" y="${rowY + 12}">#${id} :${port}</text>${row.circuit === null ? "" : circuitMarker(row.circuit, axis, barY)}<rect class="bar" x="${px(x0 - 0.5)}" y="${barY - 1}" width="${px(Math.max(x1 - x0, 0) + 1)}" height="${barHeight + 2}"/>${phases}${marks}${arrow}</a></g>
`
}

/** A server's rows under a header that names it and its slowest setup and wait. */
const groupSvg = (group: Group, axis: Axis, now: number, y: number, base: string): Html => {
  const count = group.rows.length
  const summary = [
    `${count} connection${count === 1 ? "" : "s"}`,
    group.slowestSetup > 0 ? `slowest SOCKS setup ${s3(group.slowestSetup)}` : "",
    group.slowestWait > 0 ? `slowest wait for a response ${s3(group.slowestWait)}` : ""
  ].filter((part) => part !== "").join(" · ")
  const rows = group.rows.map((row, index) => rowSvg(row, axis, now, y + headerHeight + index * rowHeight, base))
  return html`<g class="grp"><text class="h" x="4" y="${y + 13}"><a href="${base}/?host=${encodeURIComponent(group.host)}">${clip(group.host, hostChars)}</a> <tspan>${summary}</tspan></text>
${rows}</g>
`
}

/** Ticks on top and bottom with grid lines between `top` and `bottom`, and a line at now when asked for. */
const axisSvg = (axis: Axis, now: number | null, top: number, bottom: number): Array<Html> => {
  const x = xOf(axis)
  const ticks = axis.ticks.map((t) => {
    const tx = x(t)
    const label = tickLabel(t, axis.step)
    return html`<line class="grid" x1="${tx}" x2="${tx}" y1="${top - 4}" y2="${bottom}"/><text x="${tx}" y="${top - 8}" text-anchor="middle">${label}</text><text x="${tx}" y="${bottom + 14}" text-anchor="middle">${label}</text>`
  })
  if (now !== null) ticks.push(html`<line class="now" x1="${x(now)}" x2="${x(now)}" y1="${top - 4}" y2="${bottom}"><title>now, ${s3(now)}</title></line>`)
  return ticks
}

const emptyGraph = (message: string, id: string): Html =>
  html`<svg id="${id}" class="tg" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Time graph: ${message}" viewBox="0 0 400 24" width="400" height="24"><text x="4" y="16" font-family="system-ui,sans-serif" font-size="13" fill="#667">${message}</text></svg>`

/** The time graph of `connections` as inline SVG, every captured text escaped. */
export const renderTimeGraph = (connections: ReadonlyArray<Connection>, options: TimeGraphOptions): Html => {
  const layout = layoutTimeGraph(connections, options)
  if (layout._tag === "Empty") {
    return emptyGraph(layout.reason === "NoConnections" ? "No connections yet" : "No connections match this filter", options.id ?? "timegraph")
  }
  const { axis, groups, width } = layout
  const legend = legendOf(width, layout.tor)
  const top = legend.lastLine + 8 + axisHeight
  const body: Array<Html> = []
  let y = top
  for (const group of groups) {
    body.push(groupSvg(group, axis, options.now, y, options.base ?? ""))
    y += headerHeight + group.rows.length * rowHeight + 2
  }
  const bottom = y + 4
  const height = bottom + axisHeight
  const label = `Time graph of ${layout.rows} connection${layout.rows === 1 ? "" : "s"} to ${groups.length} server${groups.length === 1 ? "" : "s"}, ${tickLabel(axis.start, axis.step)} to ${tickLabel(axis.end, axis.step)}`
  return html`<svg id="${options.id ?? "timegraph"}" class="tg" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${label}" viewBox="0 0 ${width} ${height}" width="100%" style="width:100%;min-width:700px;max-width:${width}px"><style>${new Html(styles)}</style>${defs}
<g class="legend">${legend.markup}</g>
<g class="axis">${axisSvg(axis, layout.now, top, bottom)}</g>
${body}</svg>`
}
