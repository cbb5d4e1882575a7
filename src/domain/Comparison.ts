/**
 * Two sessions side by side (SPEC §8): a summary of each, the difference b − a,
 * per-server statistics of both, the requests only one of them made, and where a
 * large difference came from (SOCKS setup, waiting, transfer). Read from the same
 * exchanges as every other view.
 */
import { type Connection, serverStats, type ServerStats } from "./Connection.js"
import { type Exchange, exchanges } from "./Exchange.js"
import { socksSetupTime, summarize } from "./Summary.js"

/** A session's summary: counts, and seconds (null where there is nothing to average). */
export interface SessionSummary {
  readonly connections: number
  readonly requests: number
  readonly responses: number
  readonly bytesDown: number
  /** The first request's start to the last response's end. */
  readonly firstRequestToLastByte: number | null
  /** SOCKS request → reply, over connections that got a reply. */
  readonly meanSocksSetup: number | null
  /** The exchanges' `wait` (injected delay included), over exchanges that got an answer. */
  readonly meanWait: number | null
}

export interface ServerComparison {
  readonly host: string
  readonly a: ServerStats | null
  readonly b: ServerStats | null
}

/** `/api/compare`. */
export interface Comparison {
  readonly a: SessionSummary
  readonly b: SessionSummary
  readonly delta: SessionSummary
  readonly servers: ReadonlyArray<ServerComparison>
  /** URLs of requests only one session made, matched by method and URL (each occurrence once). */
  readonly onlyInA: ReadonlyArray<string>
  readonly onlyInB: ReadonlyArray<string>
}

const micros = (seconds: number): number => Math.round(seconds * 1e6) / 1e6

const mean = (values: ReadonlyArray<number>): number | null =>
  values.length === 0 ? null : micros(values.reduce((sum, value) => sum + value, 0) / values.length)

/** Every exchange of the connections. */
const allExchanges = (connections: ReadonlyArray<Connection>): Array<Exchange> => connections.flatMap((c) => [...exchanges(c)])

const setups = (connections: ReadonlyArray<Connection>): Array<number> => {
  const out: Array<number> = []
  for (const connection of connections) {
    const setup = socksSetupTime(connection)
    if (setup !== undefined) out.push(setup)
  }
  return out
}

export const sessionSummary = (connections: ReadonlyArray<Connection>): SessionSummary => {
  const summary = summarize(connections, 0)
  const span = summary.firstRequestToLastByte
  return {
    connections: summary.connections,
    requests: summary.requests,
    responses: summary.responses,
    bytesDown: summary.bytesDown,
    firstRequestToLastByte: span === null ? null : micros(span.to - span.from),
    meanSocksSetup: mean(setups(connections)),
    meanWait: mean(allExchanges(connections).flatMap((exchange) => (exchange.wait === null ? [] : [exchange.wait])))
  }
}

const minus = (b: number | null, a: number | null): number | null => (a === null || b === null ? null : micros(b - a))

const summaryDelta = (a: SessionSummary, b: SessionSummary): SessionSummary => ({
  connections: b.connections - a.connections,
  requests: b.requests - a.requests,
  responses: b.responses - a.responses,
  bytesDown: b.bytesDown - a.bytesDown,
  firstRequestToLastByte: minus(b.firstRequestToLastByte, a.firstRequestToLastByte),
  meanSocksSetup: minus(b.meanSocksSetup, a.meanSocksSetup),
  meanWait: minus(b.meanWait, a.meanWait)
})

/** Every host of either session: a's in a's order, then b's new ones. */
const serverComparisons = (a: ReadonlyArray<Connection>, b: ReadonlyArray<Connection>): Array<ServerComparison> => {
  const rows = new Map<string, { host: string; a: ServerStats | null; b: ServerStats | null }>()
  for (const stats of serverStats(a)) rows.set(stats.host, { host: stats.host, a: stats, b: null })
  for (const stats of serverStats(b)) {
    const row = rows.get(stats.host)
    if (row === undefined) rows.set(stats.host, { host: stats.host, a: null, b: stats })
    else row.b = stats
  }
  return Array.from(rows.values())
}

/** `METHOD URL` of each HTTP request, in start order. */
const requestKeys = (connections: ReadonlyArray<Connection>): Array<{ readonly key: string; readonly url: string; readonly start: number }> =>
  allExchanges(connections)
    .filter((exchange) => !exchange.inferred && exchange.url !== null)
    .map((exchange) => ({ key: `${exchange.method} ${exchange.url}`, url: exchange.url!, start: exchange.requestStart }))
    .sort((x, y) => x.start - y.start)

/** The URLs of `mine` that `theirs` has no match for, a request made twice matching twice. */
const unmatched = (
  mine: ReadonlyArray<{ readonly key: string; readonly url: string }>,
  theirs: ReadonlyArray<{ readonly key: string }>
): Array<string> => {
  const left = new Map<string, number>()
  for (const { key } of theirs) left.set(key, (left.get(key) ?? 0) + 1)
  const out: Array<string> = []
  for (const { key, url } of mine) {
    const count = left.get(key) ?? 0
    if (count > 0) left.set(key, count - 1)
    else out.push(url)
  }
  return out
}

export const compareSessions = (a: ReadonlyArray<Connection>, b: ReadonlyArray<Connection>): Comparison => {
  const summaryA = sessionSummary(a)
  const summaryB = sessionSummary(b)
  const requestsA = requestKeys(a)
  const requestsB = requestKeys(b)
  return {
    a: summaryA,
    b: summaryB,
    delta: summaryDelta(summaryA, summaryB),
    servers: serverComparisons(a, b),
    onlyInA: unmatched(requestsA, requestsB),
    onlyInB: unmatched(requestsB, requestsA)
  }
}

/** Where the time of a session's page load went, summed over its connections and exchanges. */
export interface PhaseTime {
  readonly phase: "socksSetup" | "waiting" | "transfer"
  /** Seconds over all connections (SOCKS setup) or exchanges (waiting, transfer). */
  readonly total: number
  readonly count: number
  readonly mean: number | null
  /** Of the total, what MITM injected (SOCKS or HTTP delays). */
  readonly injected: number
}

const injectedSocks = (connection: Connection): number => {
  let start: number | null = null
  for (const event of connection.events) {
    if (event.type === "DelayStart" && event.delay === "socks") start = event.time
    if (event.type === "DelayEnd" && event.delay === "socks" && start !== null) return event.time - start
  }
  return 0
}

const phaseTime = (phase: PhaseTime["phase"], values: ReadonlyArray<number>, injected: number): PhaseTime => ({
  phase,
  total: micros(values.reduce((sum, value) => sum + value, 0)),
  count: values.length,
  mean: mean(values),
  injected: micros(injected)
})

export const phaseTimes = (connections: ReadonlyArray<Connection>): ReadonlyArray<PhaseTime> => {
  const all = allExchanges(connections)
  const answered = all.filter((exchange) => exchange.wait !== null)
  const transferred = all.filter((exchange) => exchange.responseStart !== null && exchange.responseEnd !== null)
  return [
    phaseTime("socksSetup", setups(connections), connections.reduce((sum, connection) => sum + injectedSocks(connection), 0)),
    phaseTime("waiting", answered.map((exchange) => exchange.wait!), answered.reduce((sum, exchange) => sum + exchange.blocked, 0)),
    phaseTime("transfer", transferred.map((exchange) => exchange.responseEnd! - exchange.responseStart!), 0)
  ]
}

const phaseWords: Record<PhaseTime["phase"], { readonly more: string; readonly less: string; readonly per: string }> = {
  socksSetup: { more: "more SOCKS setup (Tor's stream setup)", less: "less SOCKS setup (Tor's stream setup)", per: "connection" },
  waiting: { more: "more waiting for responses", less: "less waiting for responses", per: "request" },
  transfer: { more: "more transfer", less: "less transfer", per: "response" }
}

/** A difference this large (seconds, and relative to a's value) is worth explaining. */
const largeSeconds = 0.05
const largeShare = 0.1

const signed = (seconds: number): string => `${seconds >= 0 ? "+" : "−"}${Math.abs(seconds).toFixed(3)} s`

/**
 * Where a large difference came from, for people: one line on the page load's span, then one
 * per phase whose mean moved by a large amount, the biggest first, saying how much MITM injected.
 * Empty when nothing moved much.
 */
export const explainDifference = (a: ReadonlyArray<Connection>, b: ReadonlyArray<Connection>): ReadonlyArray<string> => {
  const comparison = compareSessions(a, b)
  const phasesA = phaseTimes(a)
  const phasesB = phaseTimes(b)
  const moved = phasesA.flatMap((phaseA, index) => {
    const phaseB = phasesB[index]
    if (phaseA.mean === null || phaseB.mean === null) return []
    const deltaMean = phaseB.mean - phaseA.mean
    const large = Math.abs(deltaMean) >= largeSeconds && Math.abs(deltaMean) >= largeShare * Math.abs(phaseA.mean)
    return large ? [{ phaseA, phaseB, deltaMean, deltaTotal: phaseB.total - phaseA.total }] : []
  }).sort((x, y) => Math.abs(y.deltaTotal) - Math.abs(x.deltaTotal))
  const span = comparison.delta.firstRequestToLastByte
  const spanA = comparison.a.firstRequestToLastByte
  const lines: Array<string> = []
  const spanLarge = span !== null && spanA !== null && Math.abs(span) >= largeSeconds && Math.abs(span) >= largeShare * spanA
  if (spanLarge) {
    const main = moved.find((m) => Math.sign(m.deltaTotal) === Math.sign(span))
    lines.push(
      `B's page load took ${Math.abs(span).toFixed(3)} s ${span > 0 ? "longer" : "less"} than A's (first request → last byte)` +
        (main === undefined
          ? "; no single phase explains it (requests may have been made later or in another order)."
          : `: most of it came from ${phaseWords[main.phaseA.phase][main.deltaTotal > 0 ? "more" : "less"]}.`)
    )
  }
  for (const { deltaMean, deltaTotal, phaseA, phaseB } of moved) {
    const words = phaseWords[phaseA.phase]
    const injected = phaseB.injected - phaseA.injected
    const injectedNote = Math.abs(injected) >= largeSeconds
      ? ` MITM injected ${signed(injected)} of it in all (${phaseA.injected.toFixed(3)} s in A, ${phaseB.injected.toFixed(3)} s in B).`
      : ""
    lines.push(
      `${deltaMean > 0 ? words.more[0].toUpperCase() + words.more.slice(1) : words.less[0].toUpperCase() + words.less.slice(1)}: ` +
        `${signed(deltaMean)} per ${words.per} (mean ${phaseA.mean!.toFixed(3)} s over ${phaseA.count} in A, ${phaseB.mean!.toFixed(3)} s over ${phaseB.count} in B; ` +
        `${signed(deltaTotal)} in all).${injectedNote}`
    )
  }
  return lines
}

/**
 * Connections with every time moved by `-origin`: two sessions drawn on one axis, each
 * with its own `origin` (its first request) at 0.
 */
export const shiftedConnections = (connections: ReadonlyArray<Connection>, origin: number): Array<Connection> =>
  connections.map((connection) => ({
    ...connection,
    openedAt: micros(connection.openedAt - origin),
    closedAt: connection.closedAt === null ? null : micros(connection.closedAt - origin),
    events: connection.events.map((event) => ({ ...event, time: micros(event.time - origin) }))
  }))

/** The first HTTP request's start (or the first connection's opening when there is none); 0 without connections. */
export const firstRequestOf = (connections: ReadonlyArray<Connection>): number => {
  let first = Infinity
  let opened = Infinity
  for (const connection of connections) {
    opened = Math.min(opened, connection.openedAt)
    for (const exchange of exchanges(connection)) if (!exchange.inferred) first = Math.min(first, exchange.requestStart)
  }
  return Number.isFinite(first) ? first : Number.isFinite(opened) ? opened : 0
}
