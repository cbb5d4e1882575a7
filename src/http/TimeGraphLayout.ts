/**
 * The time graph's layout (SPEC §3): which connections are drawn, in which
 * rows, cut into which phases, with which marks, on which axis. Numbers and
 * references to the measurements only; the SVG is written from it by
 * `TimeGraph`. Requests and responses come from `exchanges`, the one place
 * they are paired. With Tor's control port, rows also carry their circuit, and
 * a circuit launched for a connection's stream is drawn inside its SOCKS setup.
 */
import type { Connection } from "../domain/Connection.js"
import type { EventOf } from "../domain/Event.js"
import { type Exchange, exchanges } from "../domain/Exchange.js"
import type { TorAttribution, TorCircuit } from "../domain/TorCircuits.js"

export interface TimeGraphOptions {
  /** Session seconds now: open connections are drawn to here. */
  readonly now: number
  /** A time window in session seconds: connections wholly outside it are not drawn. */
  readonly from?: number
  readonly to?: number
  /** Only this server's connections. */
  readonly host?: string
  /** Pixels; the SVG scales to its container. Default 1100, at least 400. */
  readonly width?: number
  /** Which Tor stream and circuit carried a connection (the control port's `torOf`); without it rows have no circuit. */
  readonly torOf?: (connectionId: number) => TorAttribution | null
  /** The circuits Tor reported, for their launch and build times; without them no circuit build is drawn. */
  readonly circuits?: ReadonlyArray<TorCircuit>
  /** Where links go: "" for the live report, `/sessions/ID` for a saved session. */
  readonly base?: string
  /** The SVG element's id (default `timegraph`): a page with two graphs names them apart. */
  readonly id?: string
}

interface Interval {
  /** Session seconds. */
  readonly start: number
  readonly end: number
}

/** What injected a delay: a held SOCKS connect, or a held HTTP request. */
export type Hold =
  | { readonly delay: "socks"; readonly start: EventOf<"DelayStart">; readonly released: boolean }
  | { readonly delay: "http"; readonly exchange: Exchange; readonly released: boolean }

/**
 * A stretch of a connection's bar and what it was spent on, with the measurements
 * behind it (for tooltips). A phase whose end has not happened yet runs to the bar's end.
 */
export type Phase =
  | Interval & {
    readonly kind: "socks"
    readonly request: EventOf<"SocksRequestStart"> | null
    readonly reply: EventOf<"SocksResponseEnd"> | null
  }
  | Interval & { readonly kind: "delay"; readonly hold: Hold }
  /** Tor building the circuit launched for this connection's stream (launch → built), inside the SOCKS setup. */
  | Interval & { readonly kind: "circuit"; readonly circuit: TorCircuit }
  | Interval & {
    readonly kind: "tls"
    readonly clientHello: EventOf<"TlsClientHello">
    readonly serverHello: EventOf<"TlsServerHello"> | null
  }
  | Interval & { readonly kind: "waiting" | "transfer"; readonly exchange: Exchange }
  | Interval & { readonly kind: "idle" }

export type PhaseKind = Phase["kind"]

/** A circle on a bar: an exchange's request or response start, read or inferred from encrypted bytes. */
export interface Mark {
  readonly kind: "request" | "response" | "inferredRequest" | "inferredResponse"
  readonly time: number
  readonly exchange: Exchange
}

/** The Tor circuit that carried a row's connection, as the control port reported it. */
export interface RowCircuit {
  /** The connection's stream, the circuit id and its path. */
  readonly attribution: TorAttribution
  readonly id: string
  /** The circuit as Tor listed it; null when it is no longer listed (evicted) or circuits were not given. */
  readonly circuit: TorCircuit | null
  /** The hue of the circuit's colour in degrees, from its id: rows on one circuit share it. */
  readonly hue: number
}

/** One connection's row. */
export interface Row {
  readonly connection: Connection
  /** The bar: from the connection's opening to its close, or to now while it is open. */
  readonly start: number
  readonly end: number
  /** Still open: the bar ends at now, not at a close. */
  readonly open: boolean
  /** The phases that show in the window, in time order; together with the hidden ones they cover the bar once. */
  readonly phases: ReadonlyArray<Phase>
  /** The marks that fall in the window. */
  readonly marks: ReadonlyArray<Mark>
  readonly reply: EventOf<"SocksResponseEnd"> | null
  /** HTTP requests on the connection, and how many of them were answered. */
  readonly requests: number
  readonly responses: number
  /** The circuit Tor attached the connection's stream to; null when none is known. */
  readonly circuit: RowCircuit | null
}

/** One server's rows, with the slowest of each kind of time for its header. */
export interface Group {
  /** The requested host, or a placeholder when there was no valid SOCKS request. */
  readonly host: string
  readonly rows: ReadonlyArray<Row>
  /** The longest SOCKS setup (its circuit build included, injected delay not) and waiting phase among its rows, seconds (0 when none). */
  readonly slowestSetup: number
  readonly slowestWait: number
}

/** The shared time axis and how seconds map to pixels. */
export interface Axis {
  /** Session seconds at the left and right ends of the plot. */
  readonly start: number
  readonly end: number
  /** Seconds between ticks: 1, 2 or 5 times a power of ten. */
  readonly step: number
  /** The tick times, from the first at or after `start` to the last at or before `end`. */
  readonly ticks: ReadonlyArray<number>
  /** Pixels: where the plot begins (row labels are left of it) and how wide it is. */
  readonly left: number
  readonly width: number
  /** Pixels per second. */
  readonly scale: number
}

/** What there is to draw. */
export type TimeGraphLayout =
  | { readonly _tag: "Empty"; readonly reason: "NoConnections" | "NoMatch" }
  | {
    readonly _tag: "Graph"
    /** The whole graph's width in pixels. */
    readonly width: number
    readonly axis: Axis
    readonly groups: ReadonlyArray<Group>
    /** Rows over all groups. */
    readonly rows: number
    /** Where the "now" line goes: set when open connections are drawn and now is in the window. */
    readonly now: number | null
    /** Some row has a circuit: the legend explains circuit colours and builds. */
    readonly tor: boolean
  }

const labelWidth = 112
const rightMargin = 24
/** About one tick per this many pixels of plot. */
const tickSpacing = 95

/**
 * Where phases overlap, the one that explains the time best wins: injected delay over
 * everything (it is not Tor's time nor the server's), a response being transferred over
 * the next pipelined request's wait.
 */
const priority: Record<PhaseKind, number> = { delay: 6, circuit: 5, socks: 4, tls: 3, transfer: 2, waiting: 1, idle: 0 }

/** What a connection's setup left in its events: read directly, as no exchange holds it. */
interface Setup {
  readonly request: EventOf<"SocksRequestStart"> | null
  readonly reply: EventOf<"SocksResponseEnd"> | null
  /** The SOCKS delay: when MITM began holding the connect, and when it let go. */
  readonly held: EventOf<"DelayStart"> | null
  readonly released: EventOf<"DelayEnd"> | null
  readonly clientHello: EventOf<"TlsClientHello"> | null
  readonly serverHello: EventOf<"TlsServerHello"> | null
}

/** The first of each setup event, in one pass over the connection's events. */
const setupOf = (connection: Connection): Setup => {
  let request: EventOf<"SocksRequestStart"> | null = null
  let reply: EventOf<"SocksResponseEnd"> | null = null
  let held: EventOf<"DelayStart"> | null = null
  let released: EventOf<"DelayEnd"> | null = null
  let clientHello: EventOf<"TlsClientHello"> | null = null
  let serverHello: EventOf<"TlsServerHello"> | null = null
  for (const event of connection.events) {
    switch (event.type) {
      case "SocksRequestStart":
        request ??= event
        break
      case "SocksResponseEnd":
        reply ??= event
        break
      case "DelayStart":
        if (event.delay === "socks") held ??= event
        break
      case "DelayEnd":
        if (event.delay === "socks" && held !== null) released ??= event
        break
      case "TlsClientHello":
        clientHello ??= event
        break
      case "TlsServerHello":
        serverHello ??= event
        break
    }
  }
  return { request, reply, held, released, clientHello, serverHello }
}

/**
 * The circuit's build when it was launched for this connection's stream: its launch lies
 * between the SOCKS request and the reply (or the bar's end, while there is none). It
 * runs to the build, or while unbuilt to the end of the SOCKS setup, and never past it.
 */
const circuitBuildOf = (setup: Setup, circuit: TorCircuit | null, end: number): Interval | null => {
  if (circuit === null || circuit.launchedAt === null || setup.request === null) return null
  const setupEnd = Math.min(setup.reply?.time ?? end, end)
  if (circuit.launchedAt < setup.request.time || circuit.launchedAt > setupEnd) return null
  return { start: circuit.launchedAt, end: Math.min(circuit.builtAt ?? circuit.closedAt ?? setupEnd, setupEnd) }
}

/** The raw, possibly overlapping phases of a connection whose bar ends at `end`. */
const spansOf = (connection: Connection, setup: Setup, circuit: TorCircuit | null, end: number): Array<Phase> => {
  const spans: Array<Phase> = []
  const add = (phase: Phase) => {
    if (phase.end > phase.start) spans.push(phase)
  }
  // Phases are kept within the bar.
  const since = (t: number) => Math.max(t, connection.openedAt)
  const until = (t: number) => Math.min(t, end)
  const { clientHello, held, released, reply, request, serverHello } = setup
  if (held !== null) {
    add({ kind: "delay", start: since(held.time), end: until(released?.time ?? end), hold: { delay: "socks", start: held, released: released !== null } })
  }
  add({ kind: "socks", start: connection.openedAt, end: until(reply?.time ?? end), request, reply })
  const build = circuitBuildOf(setup, circuit, end)
  if (build !== null && circuit !== null) add({ kind: "circuit", start: since(build.start), end: until(build.end), circuit })
  if (clientHello !== null) add({ kind: "tls", start: since(clientHello.time), end: until(serverHello?.time ?? end), clientHello, serverHello })
  for (const exchange of exchanges(connection)) {
    if (exchange.inferred) continue
    const { hold } = exchange
    if (hold !== null) add({ kind: "delay", start: since(hold.start), end: until(hold.end ?? end), hold: { delay: "http", exchange, released: hold.end !== null } })
    add({ kind: "waiting", start: since(exchange.requestStart), end: until(exchange.responseStart ?? end), exchange })
    if (exchange.responseStart !== null) {
      add({ kind: "transfer", start: since(exchange.responseStart), end: until(exchange.responseEnd ?? end), exchange })
    }
  }
  return spans
}

/**
 * Cuts a bar into consecutive, non-overlapping phases: at every moment the
 * highest-priority phase running (the earliest started among equals), idle where none is.
 */
const partition = (connection: Connection, setup: Setup, circuit: TorCircuit | null, end: number): Array<Phase> => {
  const spans = spansOf(connection, setup, circuit, end)
  const times = new Set<number>([connection.openedAt, end])
  for (const span of spans) times.add(span.start).add(span.end)
  const cuts = Array.from(times).sort((a, b) => a - b)
  const byStart = spans.slice().sort((a, b) => a.start - b.start)
  const active: Array<Phase> = []
  const out: Array<Phase> = []
  // The current run of time with one winner (undefined: idle), written out when the winner changes.
  let runStart = connection.openedAt
  let winner: Phase | undefined
  const endRun = (at: number) => {
    if (at > runStart) out.push(winner === undefined ? { kind: "idle", start: runStart, end: at } : { ...winner, start: runStart, end: at })
    runStart = at
  }
  let next = 0
  for (let i = 0; i + 1 < cuts.length; i++) {
    const from = cuts[i]
    while (next < byStart.length && byStart[next].start <= from) active.push(byStart[next++])
    let kept = 0
    for (const span of active) if (span.end > from) active[kept++] = span
    active.length = kept
    let best: Phase | undefined
    for (const span of active) if (best === undefined || priority[span.kind] > priority[best.kind]) best = span
    if (i > 0 && best !== winner) endRun(from)
    winner = best
  }
  endRun(end)
  return out
}

/** Where a connection's bar ends: its close, or now while it is open. */
const barEnd = (connection: Connection, now: number): number => Math.max(connection.closedAt ?? now, connection.openedAt)

/**
 * The phases of a connection's whole bar, in time order, covering it once from opening to
 * close (or `now`); with the circuit that carried it, that circuit's build when launched for it.
 */
export const phasesOf = (connection: Connection, now: number, circuit: TorCircuit | null = null): ReadonlyArray<Phase> =>
  partition(connection, setupOf(connection), circuit, barEnd(connection, now))

/**
 * A circuit's hue in degrees: numeric ids step by the golden angle, so that circuits
 * launched one after another get far-apart colours; other ids are hashed.
 */
export const circuitHue = (id: string): number => {
  const numeric = /^\d{1,15}$/.test(id)
  let n = numeric ? Number(id) : 0
  if (!numeric) for (let i = 0; i < id.length; i++) n = (n * 31 + id.charCodeAt(i)) % 1_000_003
  return Math.round((n * 137.508) % 360) % 360
}

/** A connection's circuit from the control port's answers; null when its stream is not on a known circuit. */
const circuitOf = (
  connection: Connection,
  torOf: ((connectionId: number) => TorAttribution | null) | undefined,
  circuits: ReadonlyMap<string, TorCircuit>
): RowCircuit | null => {
  const attribution = torOf?.(connection.id) ?? null
  if (attribution === null || attribution.circuit === null) return null
  const id = attribution.circuit
  return { attribution, id, circuit: circuits.get(id) ?? null, hue: circuitHue(id) }
}

/** A circle for each request and response start: read ones (requests first), then inferred ones in order. */
const marksOf = (all: ReadonlyArray<Exchange>, shown: (time: number) => boolean): Array<Mark> => {
  const requests: Array<Mark> = []
  const responses: Array<Mark> = []
  const inferred: Array<Mark> = []
  for (const exchange of all) {
    const { requestStart, responseStart } = exchange
    if (exchange.inferred) {
      if (shown(requestStart)) inferred.push({ kind: "inferredRequest", time: requestStart, exchange })
      if (responseStart !== null && shown(responseStart)) inferred.push({ kind: "inferredResponse", time: responseStart, exchange })
      continue
    }
    if (shown(requestStart)) requests.push({ kind: "request", time: requestStart, exchange })
    if (responseStart !== null && shown(responseStart)) responses.push({ kind: "response", time: responseStart, exchange })
  }
  return requests.concat(responses, inferred)
}

/** 1, 2 or 5 times a power of ten, so that about `target` ticks span `span` seconds. */
const tickStep = (span: number, target: number): number => {
  const raw = Math.max(span, 0.001) / target
  const power = 10 ** Math.floor(Math.log10(raw))
  const scaled = raw / power
  return (scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10) * power
}

/** The axis: the window asked for, else from a whole tick before the first opening to the last bar's end. */
const axisOf = (first: number, last: number, options: TimeGraphOptions, width: number): Axis => {
  const { from, to } = options
  const plotWidth = width - labelWidth - rightMargin
  const wanted = { start: from ?? first, end: Math.max(to ?? last, (from ?? first) + 0.001) }
  const step = tickStep(wanted.end - wanted.start, Math.max(2, Math.round(plotWidth / tickSpacing)))
  const start = from ?? Math.floor(wanted.start / step) * step
  const end = Math.max(to ?? wanted.end, start + 0.001)
  const ticks: Array<number> = []
  // `+ 0` turns a -0 (a start just below zero's tick) into 0.
  for (let k = Math.ceil(start / step - 1e-9) + 0; k * step <= end + step * 1e-9; k++) ticks.push(k * step)
  return { start, end, step, ticks, left: labelWidth, width: plotWidth, scale: plotWidth / (end - start) }
}

const placeholderHost = "(no valid SOCKS request)"

/** The connections to draw, by server, servers in order of their first connection. */
const byServer = (connections: ReadonlyArray<Connection>): Array<{ readonly host: string; readonly connections: Array<Connection> }> => {
  const groups = new Map<string, { host: string; first: number; connections: Array<Connection> }>()
  for (const connection of connections) {
    const host = connection.host === "" ? placeholderHost : connection.host
    const group = groups.get(host)
    if (group === undefined) groups.set(host, { host, first: connection.openedAt, connections: [connection] })
    else {
      group.connections.push(connection)
      group.first = Math.min(group.first, connection.openedAt)
    }
  }
  return Array.from(groups.values()).sort((a, b) => a.first - b.first)
}

/** A connection's row, given its setup and its whole bar's phases: what of them falls in the window. */
const rowOf = (
  connection: Connection,
  setup: Setup,
  circuit: RowCircuit | null,
  phases: ReadonlyArray<Phase>,
  end: number,
  axis: Axis
): Row => {
  const inWindow = (t: number) => t >= axis.start && t <= axis.end
  const all = exchanges(connection)
  let requests = 0
  let responses = 0
  for (const exchange of all) {
    if (exchange.inferred) continue
    requests++
    if (exchange.responseStart !== null) responses++
  }
  return {
    connection,
    start: connection.openedAt,
    end,
    open: connection.state === "open",
    phases: connection.openedAt >= axis.start && end <= axis.end ? phases : phases.filter((p) => p.end > axis.start && p.start < axis.end),
    marks: marksOf(all, inWindow),
    reply: setup.reply,
    requests,
    responses,
    circuit
  }
}

/** Lays out the time graph of `connections`: O(events) over the connections drawn. */
export const layoutTimeGraph = (connections: ReadonlyArray<Connection>, options: TimeGraphOptions): TimeGraphLayout => {
  const { from, host, now, to } = options
  const visible = connections.filter((c) =>
    (host === undefined || c.host === host) &&
    (from === undefined || barEnd(c, now) >= from) &&
    (to === undefined || c.openedAt <= to)
  )
  if (visible.length === 0) return { _tag: "Empty", reason: connections.length === 0 ? "NoConnections" : "NoMatch" }
  let first = Infinity
  let last = -Infinity
  for (const c of visible) {
    first = Math.min(first, c.openedAt)
    last = Math.max(last, barEnd(c, now))
  }
  const width = Math.max(options.width ?? 1100, 400)
  const axis = axisOf(first, last, options, width)
  const circuits = new Map<string, TorCircuit>()
  for (const circuit of options.circuits ?? []) circuits.set(circuit.id, circuit)
  let tor = false
  const groups = byServer(visible).map(({ connections: members, host }): Group => {
    let slowestSetup = 0
    let slowestWait = 0
    const rows = members.map((connection) => {
      const setup = setupOf(connection)
      const end = barEnd(connection, now)
      const circuit = circuitOf(connection, options.torOf, circuits)
      if (circuit !== null) tor = true
      const phases = partition(connection, setup, circuit?.circuit ?? null, end)
      // A circuit build cuts the SOCKS setup in two; it is Tor's setup time all the same.
      let setupTime = 0
      for (const phase of phases) {
        if (phase.kind === "socks" || phase.kind === "circuit") setupTime += phase.end - phase.start
        if (phase.kind === "waiting") slowestWait = Math.max(slowestWait, phase.end - phase.start)
      }
      slowestSetup = Math.max(slowestSetup, setupTime)
      return rowOf(connection, setup, circuit, phases, end, axis)
    })
    return { host, rows, slowestSetup, slowestWait }
  })
  const showsNow = visible.some((c) => c.state === "open") && now >= axis.start && now <= axis.end
  return { _tag: "Graph", width, axis, groups, rows: visible.length, now: showsNow ? now : null, tor }
}
