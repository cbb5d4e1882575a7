/**
 * Which Tor stream and circuit carried each of MITM's upstream connections, and
 * what is known about every circuit. A pure state machine: it is fed decoded
 * control-port events and `GETINFO circuit-status`, plus what MITM knows about
 * its own sockets (the local address of each upstream connection to Tor's SOCKS
 * port), each with the session time of the input. It reads no clock and does
 * no I/O.
 *
 * Matching: Tor's `STREAM NEW … SOURCE_ADDR=127.0.0.1:54321` names the local
 * address of MITM's socket; the events may come before or after MITM reports
 * that address, so unmatched streams wait (bounded, and only for a while).
 * The stream's later events name its circuit; the circuit's events give its
 * path, build time, purpose, state, RTT and conflux legs.
 */
import type {
  CircBwEvent,
  CircEvent,
  CircMinorEvent,
  CircuitFields,
  CircuitStatusEntry,
  StreamEvent,
  TorEvent,
  TorRelay
} from "./TorControlProtocol.js"

/** The `tor` field of a connection: its stream, the circuit Tor reported it on, and that circuit's path. */
export interface TorAttribution {
  readonly stream: string
  /** Null while Tor has not attached the stream to a circuit (or it failed before that). */
  readonly circuit: string | null
  readonly path: ReadonlyArray<TorRelay>
  /** Seconds from LAUNCHED to BUILT; null when the circuit was built before MITM was watching. */
  readonly circuitBuildTime: number | null
}

/** Tor attached the connection's stream to a circuit (again, with another circuit, after a retry). */
export interface TorStreamAttached {
  readonly _tag: "TorStreamAttached"
  readonly connectionId: number
  /** Session seconds when Tor reported it. */
  readonly time: number
  readonly stream: string
  readonly circuit: string
  /** The path's nicknames (the fingerprint where a relay has no nickname). */
  readonly path: ReadonlyArray<string>
}

/** Tor gave up on the connection's stream. */
export interface TorStreamFailed {
  readonly _tag: "TorStreamFailed"
  readonly connectionId: number
  readonly time: number
  readonly stream: string
  /** Tor's REASON, e.g. `CANT_ATTACH`, `TIMEOUT`, `RESOLVEFAILED`. */
  readonly reason: string | null
  /** The exit's REMOTE_REASON, from the FAILED event or else the last DETACHED one. */
  readonly remoteReason: string | null
}

/** What the proxy records as events of a connection. */
export type TorNotice = TorStreamAttached | TorStreamFailed

/** The display text of a notice: `circuit 7: relay1 → relay2 → exit1` or `CANT_ATTACH (remote MISC)`. */
export const describeTorNotice = (notice: TorNotice): string =>
  notice._tag === "TorStreamAttached"
    ? `circuit ${notice.circuit}${notice.path.length > 0 ? `: ${notice.path.join(" → ")}` : ""}`
    : `${notice.reason ?? "failed"}${notice.remoteReason === null ? "" : ` (remote ${notice.remoteReason})`}`

export type TorCircuitState = "launched" | "built" | "failed" | "closed"

/** A circuit as `GET /api/circuits` shows it. */
export interface TorCircuit {
  readonly id: string
  readonly purpose: string | null
  readonly state: TorCircuitState
  readonly path: ReadonlyArray<TorRelay>
  /** Session seconds; null when the circuit was launched before MITM was watching. */
  readonly launchedAt: number | null
  readonly builtAt: number | null
  readonly buildTime: number | null
  /** Null while open, and when it closed while MITM was not watching. */
  readonly closedAt: number | null
  /** Why it failed or closed (the FAILED reason wins over the CLOSED one). */
  readonly reason: string | null
  /** MITM's connections whose streams Tor attached to it. */
  readonly connections: ReadonlyArray<number>
  readonly rttMs: number | null
  /** The other legs of its conflux set. */
  readonly conflux: ReadonlyArray<string>
}

export interface TorCircuitsOptions {
  /** Failed and closed circuits kept; the oldest ended ones go first. */
  readonly maxEndedCircuits?: number
  /** Streams with a source address that no connection (yet) claims. */
  readonly maxUnmatchedStreams?: number
  /**
   * Seconds an unmatched stream, or a closed connection without a stream, waits
   * for its match. Within it a local address names one connection: the kernel
   * does not reuse a (local, Tor's SOCKS port) pair while TIME_WAIT holds it
   * (60 s on Linux), so keep this below that.
   */
  readonly matchWindow?: number
  /** Closed connections remembered when the store never calls `forgetConnection`. */
  readonly maxClosedConnections?: number
}

interface CircuitRecord {
  readonly id: string
  purpose: string | null
  path: ReadonlyArray<TorRelay>
  launchedAt: number | null
  builtAt: number | null
  built: boolean
  failed: boolean
  closed: boolean
  closedAt: number | null
  reason: string | null
  rttMs: number | null
  confluxId: string | null
  readonly connections: Set<number>
  /** The watch (control connection) in which Tor last spoke of it. */
  watch: number
}

interface StreamRecord {
  readonly id: string
  readonly sourceAddress: string
  readonly seenAt: number
  connectionId: number | undefined
  circuit: string | undefined
  /** The record of that circuit when it was attached (it outlives the circuit's eviction and id reuse). */
  circuitRecord: CircuitRecord | undefined
  attachedAt: number
  announcedCircuit: string | undefined
  lastRemoteReason: string | null
  failure: { readonly time: number; readonly reason: string | null; readonly remoteReason: string | null } | undefined
  failureAnnounced: boolean
}

interface ConnectionRecord {
  readonly id: number
  readonly localAddress: string
  open: boolean
  closedAt: number | null
  stream: StreamRecord | undefined
  readonly circuits: Set<CircuitRecord>
}

const round = (seconds: number) => Math.round(seconds * 1e6) / 1e6

const relayName = (relay: TorRelay) => relay.nickname ?? relay.fingerprint ?? "?"

const byId = (a: string, b: string) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

/**
 * The local address of a socket as Tor writes SOURCE_ADDR: `127.0.0.1:54321`,
 * `[::1]:54321`; an IPv4-mapped IPv6 address is written as IPv4.
 */
export const sourceAddress = (host: string, port: number): string => {
  const plain = host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host
  return plain.includes(":") ? `[${plain}]:${port}` : `${plain}:${port}`
}

/** Reads an address that may be in Node's form (`::ffff:127.0.0.1:5`, `::1:5`) into Tor's. */
const normalizeAddress = (address: string): string => {
  if (address.startsWith("[")) return address
  const colon = address.lastIndexOf(":")
  if (colon < 0) return address
  const host = address.slice(0, colon)
  const port = Number(address.slice(colon + 1))
  return Number.isInteger(port) ? sourceAddress(host, port) : address
}

/** The tracker: one per MITM process, fed from every control connection in turn. */
export class TorCircuits {
  private readonly maxEndedCircuits: number
  private readonly maxUnmatchedStreams: number
  private readonly matchWindow: number
  private readonly maxClosedConnections: number

  /** Counts control connections: see `watchStarted`. */
  private watch = 0
  private readonly circuitsById = new Map<string, CircuitRecord>()
  /** Ended circuits in the order they ended: the first is evicted first. */
  private readonly ended = new Map<string, CircuitRecord>()
  private readonly confluxSets = new Map<string, Set<string>>()

  /** Streams with a source address, by stream id, while Tor has them open. */
  private readonly streams = new Map<string, StreamRecord>()
  /** Streams no connection claims yet, by source address, oldest first. */
  private readonly unmatched = new Map<string, StreamRecord>()

  private readonly connections = new Map<number, ConnectionRecord>()
  /** Open upstream connections by local address. */
  private readonly openByAddress = new Map<string, ConnectionRecord>()
  /** Connections that closed before any stream claimed them, by local address, oldest first. */
  private readonly closedUnclaimed = new Map<string, ConnectionRecord>()
  /** Closed connections, oldest first (for `maxClosedConnections`). */
  private readonly closedConnections = new Map<number, ConnectionRecord>()

  constructor(options: TorCircuitsOptions = {}) {
    this.maxEndedCircuits = options.maxEndedCircuits ?? 2_000
    this.maxUnmatchedStreams = options.maxUnmatchedStreams ?? 1_000
    this.matchWindow = options.matchWindow ?? 30
    this.maxClosedConnections = options.maxClosedConnections ?? 20_000
  }

  // -- inputs from Tor --------------------------------------------------------

  /** A decoded event, at session time `at`; returns the notices it causes. */
  event(event: TorEvent, at: number): ReadonlyArray<TorNotice> {
    switch (event._tag) {
      case "CircEvent":
        this.circ(event, at)
        return []
      case "CircMinorEvent":
        this.circMinor(event)
        return []
      case "CircBwEvent":
        this.circBw(event)
        return []
      case "StreamEvent":
        return this.stream(event, at)
      case "OtherEvent":
        return []
    }
  }

  /**
   * A control connection is about to subscribe to events (call before
   * SETEVENTS): circuits Tor speaks of from now on are watched live.
   */
  watchStarted(): void {
    this.watch++
  }

  /**
   * A `GETINFO circuit-status` snapshot (asked after SETEVENTS, so later
   * changes come as events). Circuits first seen here have no launch or build
   * time; open circuits that it does not list and that no event of this watch
   * mentioned closed while MITM was not watching. Events Tor sent after the
   * snapshot's reply must be fed after it (the control port holds them back).
   */
  circuitStatus(entries: ReadonlyArray<CircuitStatusEntry>): void {
    const listed = new Set<string>()
    for (const entry of entries) {
      listed.add(entry.id)
      let circuit = this.circuitsById.get(entry.id)
      // An ended circuit listed as open is a restarted Tor's circuit with a reused id.
      if (circuit !== undefined && (circuit.closed || circuit.failed) && entry.status !== "CLOSED" && entry.status !== "FAILED") {
        this.evict(circuit)
        circuit = undefined
      }
      if (circuit === undefined) circuit = this.newCircuit(entry.id, null)
      this.applyFields(circuit, entry)
      if (entry.status === "BUILT") circuit.built = true
      if (entry.status === "FAILED") this.fail(circuit, null)
      if (entry.status === "CLOSED") this.close(circuit, null, null)
    }
    for (const circuit of [...this.circuitsById.values()]) {
      if (!listed.has(circuit.id) && !circuit.closed && !circuit.failed && circuit.watch < this.watch) {
        this.close(circuit, null, null)
      }
    }
  }

  // -- inputs from MITM -------------------------------------------------------

  /** MITM's upstream socket to Tor's SOCKS port connected from `localAddress` (`127.0.0.1:54321`). */
  upstreamOpened(connectionId: number, localAddress: string, at: number): ReadonlyArray<TorNotice> {
    this.expire(at)
    const address = normalizeAddress(localAddress)
    this.dropConnection(connectionId)
    const connection: ConnectionRecord = {
      id: connectionId,
      localAddress: address,
      open: true,
      closedAt: null,
      stream: undefined,
      circuits: new Set()
    }
    this.connections.set(connectionId, connection)
    this.openByAddress.set(address, connection)
    // The address is this connection's now; an older closed one that never got its stream lost the chance.
    this.closedUnclaimed.delete(address)
    const waiting = this.unmatched.get(address)
    if (waiting === undefined) return []
    this.unmatched.delete(address)
    return this.link(waiting, connection)
  }

  /** MITM's upstream socket closed; its attribution stays until `forgetConnection`. */
  upstreamClosed(connectionId: number, at: number): void {
    this.expire(at)
    const connection = this.connections.get(connectionId)
    if (connection === undefined || !connection.open) return
    connection.open = false
    connection.closedAt = at
    if (this.openByAddress.get(connection.localAddress) === connection) {
      this.openByAddress.delete(connection.localAddress)
      // Tor's events may lag behind the socket: a short connection may still be claimed.
      if (connection.stream === undefined) {
        this.closedUnclaimed.delete(connection.localAddress)
        this.closedUnclaimed.set(connection.localAddress, connection)
      }
    }
    this.closedConnections.set(connectionId, connection)
    if (this.closedConnections.size > this.maxClosedConnections) {
      const oldest = this.closedConnections.keys().next().value
      if (oldest !== undefined) this.forgetConnection(oldest)
    }
  }

  /** Drops a connection (the store evicted it): no attribution, and circuits no longer list it. */
  forgetConnection(connectionId: number): void {
    this.dropConnection(connectionId)
  }

  /** Forgets connections, streams and ended circuits; open circuits stay, without times (a new session). */
  reset(): void {
    this.connections.clear()
    this.openByAddress.clear()
    this.closedUnclaimed.clear()
    this.closedConnections.clear()
    this.streams.clear()
    this.unmatched.clear()
    for (const circuit of [...this.ended.values()]) this.evict(circuit)
    for (const circuit of this.circuitsById.values()) {
      circuit.launchedAt = null
      circuit.builtAt = null
      circuit.connections.clear()
    }
  }

  // -- outputs ----------------------------------------------------------------

  /** The connection's stream and circuit, or null when Tor has reported no stream for it. */
  torOf(connectionId: number): TorAttribution | null {
    const stream = this.connections.get(connectionId)?.stream
    if (stream === undefined) return null
    const circuit = stream.circuitRecord ??
      (stream.circuit === undefined ? undefined : this.circuitsById.get(stream.circuit))
    return {
      stream: stream.id,
      circuit: stream.circuit ?? null,
      path: circuit?.path ?? [],
      circuitBuildTime: circuit === undefined ? null : buildTime(circuit)
    }
  }

  /** Every circuit known, by id. */
  circuits(): ReadonlyArray<TorCircuit> {
    return [...this.circuitsById.values()].sort((a, b) => byId(a.id, b.id)).map((circuit) => this.view(circuit))
  }

  /** How many streams wait for their connection (for tests and the report). */
  get unmatchedStreams(): number {
    return this.unmatched.size
  }

  // -- circuits ---------------------------------------------------------------

  private newCircuit(id: string, launchedAt: number | null): CircuitRecord {
    const circuit: CircuitRecord = {
      id,
      purpose: null,
      path: [],
      launchedAt,
      builtAt: null,
      built: false,
      failed: false,
      closed: false,
      closedAt: null,
      reason: null,
      rttMs: null,
      confluxId: null,
      connections: new Set(),
      watch: this.watch
    }
    this.circuitsById.set(id, circuit)
    return circuit
  }

  private applyFields(circuit: CircuitRecord, fields: CircuitFields): void {
    circuit.watch = this.watch
    if (fields.path.length > 0) circuit.path = fields.path
    if (fields.purpose !== null) circuit.purpose = fields.purpose
    // CLOSED events no longer carry CONFLUX_ID: membership is kept, never cleared by an absent field.
    if (fields.confluxId !== null && fields.confluxId !== circuit.confluxId) {
      this.leaveConflux(circuit)
      circuit.confluxId = fields.confluxId
      let set = this.confluxSets.get(fields.confluxId)
      if (set === undefined) this.confluxSets.set(fields.confluxId, set = new Set())
      set.add(circuit.id)
    }
  }

  private circ(event: CircEvent, at: number): void {
    let circuit = this.circuitsById.get(event.id)
    if (circuit !== undefined && event.status === "LAUNCHED" && (circuit.closed || circuit.failed)) {
      // Ids restart when Tor does.
      this.evict(circuit)
      circuit = undefined
    }
    if (circuit === undefined) circuit = this.newCircuit(event.id, event.status === "LAUNCHED" ? at : null)
    this.applyFields(circuit, event)
    switch (event.status) {
      case "BUILT":
        circuit.built = true
        if (circuit.builtAt === null) circuit.builtAt = at
        break
      case "FAILED":
        this.fail(circuit, event.reason)
        break
      case "CLOSED":
        this.close(circuit, event.reason, at)
        break
    }
  }

  private circMinor(event: CircMinorEvent): void {
    const circuit = this.circuitsById.get(event.id)
    if (circuit === undefined) return
    this.applyFields(circuit, event)
  }

  private circBw(event: CircBwEvent): void {
    const circuit = this.circuitsById.get(event.id)
    if (circuit !== undefined && event.rttMs !== null) circuit.rttMs = event.rttMs
  }

  private fail(circuit: CircuitRecord, reason: string | null): void {
    circuit.failed = true
    if (reason !== null) circuit.reason = reason
    this.markEnded(circuit)
  }

  private close(circuit: CircuitRecord, reason: string | null, at: number | null): void {
    if (circuit.closed) return
    circuit.closed = true
    circuit.closedAt = at
    // A failed circuit is later closed with FINISHED or similar: the failure says more.
    if (!circuit.failed && reason !== null) circuit.reason = reason
    this.markEnded(circuit)
  }

  private markEnded(circuit: CircuitRecord): void {
    if (this.ended.has(circuit.id)) return
    this.ended.set(circuit.id, circuit)
    while (this.ended.size > this.maxEndedCircuits) {
      const oldest = this.ended.values().next().value
      if (oldest === undefined) break
      this.evict(oldest)
    }
  }

  private evict(circuit: CircuitRecord): void {
    if (this.circuitsById.get(circuit.id) === circuit) this.circuitsById.delete(circuit.id)
    if (this.ended.get(circuit.id) === circuit) this.ended.delete(circuit.id)
    this.leaveConflux(circuit)
  }

  private leaveConflux(circuit: CircuitRecord): void {
    if (circuit.confluxId === null) return
    const set = this.confluxSets.get(circuit.confluxId)
    set?.delete(circuit.id)
    if (set !== undefined && set.size === 0) this.confluxSets.delete(circuit.confluxId)
  }

  private view(circuit: CircuitRecord): TorCircuit {
    const legs = circuit.confluxId === null ? undefined : this.confluxSets.get(circuit.confluxId)
    return {
      id: circuit.id,
      purpose: circuit.purpose,
      state: circuit.failed ? "failed" : circuit.closed ? "closed" : circuit.built ? "built" : "launched",
      path: circuit.path,
      launchedAt: circuit.launchedAt,
      builtAt: circuit.builtAt,
      buildTime: buildTime(circuit),
      closedAt: circuit.closedAt,
      reason: circuit.reason,
      connections: [...circuit.connections].sort((a, b) => a - b),
      rttMs: circuit.rttMs,
      conflux: legs === undefined ? [] : [...legs].filter((id) => id !== circuit.id).sort(byId)
    }
  }

  // -- streams ----------------------------------------------------------------

  private stream(event: StreamEvent, at: number): ReadonlyArray<TorNotice> {
    this.expire(at)
    if ((event.status === "NEW" || event.status === "NEWRESOLVE") && event.sourceAddress !== null) {
      return this.newStream(event.id, normalizeAddress(event.sourceAddress), at)
    }
    const stream = this.streams.get(event.id)
    if (stream === undefined) return []
    if (
      event.circuit !== null && event.circuit !== stream.circuit &&
      (event.status === "SENTCONNECT" || event.status === "SENTRESOLVE" || event.status === "SUCCEEDED" ||
        event.status === "REMAP")
    ) {
      stream.circuit = event.circuit
      stream.circuitRecord = this.circuitsById.get(event.circuit)
      stream.attachedAt = at
    }
    if (event.remoteReason !== null) stream.lastRemoteReason = event.remoteReason
    if (event.status === "FAILED" && stream.failure === undefined) {
      stream.failure = { time: at, reason: event.reason, remoteReason: event.remoteReason ?? stream.lastRemoteReason }
    }
    // Tor is done with the stream: a matched one lives on in its connection, an unmatched one in `unmatched`.
    if (event.status === "CLOSED") this.streams.delete(event.id)
    const connection = stream.connectionId === undefined ? undefined : this.connections.get(stream.connectionId)
    return connection === undefined ? [] : this.announce(stream, connection)
  }

  private newStream(id: string, address: string, at: number): ReadonlyArray<TorNotice> {
    const stream: StreamRecord = {
      id,
      sourceAddress: address,
      seenAt: at,
      connectionId: undefined,
      circuit: undefined,
      circuitRecord: undefined,
      attachedAt: at,
      announcedCircuit: undefined,
      lastRemoteReason: null,
      failure: undefined,
      failureAnnounced: false
    }
    this.streams.set(id, stream)
    const connection = this.openByAddress.get(address) ?? this.closedUnclaimed.get(address)
    if (connection !== undefined && connection.stream === undefined) {
      this.closedUnclaimed.delete(address)
      return this.link(stream, connection)
    }
    this.unmatched.delete(address)
    this.unmatched.set(address, stream)
    while (this.unmatched.size > this.maxUnmatchedStreams) {
      const oldest = this.unmatched.values().next().value
      if (oldest === undefined) break
      this.unmatched.delete(oldest.sourceAddress)
      this.streams.delete(oldest.id)
    }
    return []
  }

  private link(stream: StreamRecord, connection: ConnectionRecord): ReadonlyArray<TorNotice> {
    stream.connectionId = connection.id
    connection.stream = stream
    return this.announce(stream, connection)
  }

  /** The notices not yet given for a matched stream, with the times Tor reported them. */
  private announce(stream: StreamRecord, connection: ConnectionRecord): ReadonlyArray<TorNotice> {
    const notices: Array<TorNotice> = []
    if (stream.circuit !== undefined && stream.circuit !== stream.announcedCircuit) {
      stream.announcedCircuit = stream.circuit
      if (stream.circuitRecord === undefined) stream.circuitRecord = this.circuitsById.get(stream.circuit)
      const circuit = stream.circuitRecord
      if (circuit !== undefined) {
        circuit.connections.add(connection.id)
        connection.circuits.add(circuit)
      }
      notices.push({
        _tag: "TorStreamAttached",
        connectionId: connection.id,
        time: stream.attachedAt,
        stream: stream.id,
        circuit: stream.circuit,
        path: (circuit?.path ?? []).map(relayName)
      })
    }
    if (stream.failure !== undefined && !stream.failureAnnounced) {
      stream.failureAnnounced = true
      notices.push({
        _tag: "TorStreamFailed",
        connectionId: connection.id,
        time: stream.failure.time,
        stream: stream.id,
        reason: stream.failure.reason,
        remoteReason: stream.failure.remoteReason
      })
    }
    return notices
  }

  /** Unmatched streams and unclaimed closed connections older than the match window are forgotten. */
  private expire(at: number): void {
    const cutoff = at - this.matchWindow
    for (const stream of this.unmatched.values()) {
      if (stream.seenAt >= cutoff) break
      this.unmatched.delete(stream.sourceAddress)
      this.streams.delete(stream.id)
    }
    for (const connection of this.closedUnclaimed.values()) {
      if ((connection.closedAt ?? at) >= cutoff) break
      this.closedUnclaimed.delete(connection.localAddress)
    }
  }

  private dropConnection(connectionId: number): void {
    const connection = this.connections.get(connectionId)
    if (connection === undefined) return
    this.connections.delete(connectionId)
    this.closedConnections.delete(connectionId)
    if (this.openByAddress.get(connection.localAddress) === connection) this.openByAddress.delete(connection.localAddress)
    if (this.closedUnclaimed.get(connection.localAddress) === connection) {
      this.closedUnclaimed.delete(connection.localAddress)
    }
    for (const circuit of connection.circuits) circuit.connections.delete(connectionId)
    const stream = connection.stream
    if (stream !== undefined && this.streams.get(stream.id) === stream) this.streams.delete(stream.id)
  }
}

const buildTime = (circuit: CircuitRecord): number | null =>
  circuit.launchedAt === null || circuit.builtAt === null ? null : round(circuit.builtAt - circuit.launchedAt)

/** A tracker with the default bounds. */
export const makeTorCircuits = (options?: TorCircuitsOptions): TorCircuits => new TorCircuits(options)
