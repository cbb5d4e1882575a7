/**
 * A closed connection as one OpenTelemetry trace (SPEC §10): a root span of kind
 * CLIENT `SOCKS <host>:<port>` from SocksRequestStart to ConnectionClose, and
 * under it `socks.setup`, `tls.handshake`, `mitm.delay` and one span per
 * exchange, named by its method, with the HTTP client semantic conventions.
 * Spans carry the recorded times (session start + event time), never the time
 * of export. The phases are cut as the time graph cuts them.
 */
import { formatHostPort } from "./Address.js"
import type { Connection } from "./Connection.js"
import type { ConnectionEvent, EventOf } from "./Event.js"
import { type Exchange, exchanges } from "./Exchange.js"
import type { TorAttribution } from "./TorCircuits.js"
import type { TorRelay } from "./TorControlProtocol.js"
import { attributesOf, type Span as OtlpSpan, type SpanEvent, SpanKind, StatusCode } from "./OtlpTraces.js"

export interface TraceContext {
  /** Wall-clock nanoseconds since the Unix epoch of session time 0. */
  readonly sessionStartNanos: bigint
  /** Tor's stream and circuit for the connection; null when not known. */
  readonly tor: TorAttribution | null
  /** A fresh random id as lower-case hex: 16 bytes for a trace, 8 for a span. */
  readonly newId: (bytes: 8 | 16) => string
}

type Attributes = Parameters<typeof attributesOf>[0]

/** `HTTP/1.1` → `1.1`, as `network.protocol.version` wants it. */
const protocolVersion = (httpVersion: string | undefined): string | undefined =>
  httpVersion === undefined ? undefined : httpVersion.replace(/^HTTP\//, "")

/** `TLS 1.3` → `1.3`. */
const tlsVersion = (version: string): string => version.replace(/^TLS\s*/, "")

/** A relay as Tor names it in long form: `$FINGERPRINT~nickname`. */
const relayName = (relay: TorRelay): string =>
  relay.fingerprint === null ? relay.nickname ?? "?" : relay.nickname === null ? `$${relay.fingerprint}` : `$${relay.fingerprint}~${relay.nickname}`

interface Setup {
  request: EventOf<"SocksRequestStart"> | null
  reply: EventOf<"SocksResponseEnd"> | null
  clientHello: EventOf<"TlsClientHello"> | null
  serverHello: EventOf<"TlsServerHello"> | null
  readonly delays: Array<{ readonly start: EventOf<"DelayStart">; end: EventOf<"DelayEnd"> | null }>
  readonly notes: Array<EventOf<"DecodeError" | "TorStreamAttached" | "TorStreamFailed">>
}

/** The first of each setup event, every delay, and what becomes span events: one pass. */
const setupOf = (events: ReadonlyArray<ConnectionEvent>): Setup => {
  const setup: Setup = { request: null, reply: null, clientHello: null, serverHello: null, delays: [], notes: [] }
  for (const event of events) {
    switch (event.type) {
      case "SocksRequestStart":
        setup.request ??= event
        break
      case "SocksResponseEnd":
        setup.reply ??= event
        break
      case "TlsClientHello":
        setup.clientHello ??= event
        break
      case "TlsServerHello":
        setup.serverHello ??= event
        break
      case "DelayStart":
        setup.delays.push({ start: event, end: null })
        break
      case "DelayEnd": {
        const held = setup.delays.find((delay) => delay.end === null && delay.start.delay === event.delay && delay.start.exchange === event.exchange)
        if (held !== undefined) held.end = event
        break
      }
      case "DecodeError":
      case "TorStreamAttached":
      case "TorStreamFailed":
        setup.notes.push(event)
        break
    }
  }
  return setup
}

const noteAttributes = (note: Setup["notes"][number]): Attributes => {
  switch (note.type) {
    case "DecodeError":
      return { "error.type": note.error._tag, "mitm.decode.reason": note.error.reason, "mitm.decode.message": note.error.message, "mitm.decode.offset": note.error.offset }
    case "TorStreamAttached":
      return { "tor.stream.id": note.stream, "tor.circuit.id": note.circuit, "tor.circuit.path": note.path }
    case "TorStreamFailed":
      return { "tor.stream.id": note.stream, "tor.stream.reason": note.reason, "tor.stream.remote_reason": note.remoteReason }
  }
}

const exchangeAttributes = (exchange: Exchange): Attributes =>
  exchange.inferred
    ? {
      "mitm.exchange.index": exchange.index,
      "mitm.exchange.inferred": true,
      "http.request.body.size": exchange.requestBodyBytes,
      "http.response.body.size": exchange.responseBodyBytes
    }
    : {
      "http.request.method": exchange.method,
      "url.full": exchange.url,
      "http.response.status_code": exchange.status,
      "network.protocol.version": protocolVersion(exchange.response?.httpVersion ?? exchange.request?.httpVersion),
      "http.request.body.size": exchange.requestBodyBytes,
      "http.response.body.size": exchange.responseBodyBytes,
      "mitm.exchange.index": exchange.index,
      "error.type": exchange.status !== null && exchange.status >= 400 ? String(exchange.status) : undefined
    }

/** The connection's trace: the root span first, then its children in the order they began. */
export const traceOf = (connection: Connection, context: TraceContext): ReadonlyArray<OtlpSpan> => {
  const traceId = context.newId(16)
  const rootId = context.newId(8)
  const nanos = (seconds: number): string => String(context.sessionStartNanos + BigInt(Math.round(seconds * 1e6)) * 1000n)
  const end = connection.closedAt ?? connection.events.at(-1)?.time ?? connection.openedAt
  const setup = setupOf(connection.events)
  const start = setup.request?.time ?? connection.openedAt

  const span = (options: {
    readonly name: string
    readonly kind?: number
    readonly start: number
    readonly end: number
    readonly attributes: Attributes
    readonly parent?: string
    readonly error?: string | null
    readonly events?: Array<SpanEvent>
  }): OtlpSpan => ({
    traceId,
    spanId: options.parent === undefined ? rootId : context.newId(8),
    parentSpanId: options.parent,
    name: options.name,
    kind: options.kind ?? SpanKind.internal,
    startTimeUnixNano: nanos(options.start),
    endTimeUnixNano: nanos(Math.max(options.start, options.end)),
    attributes: attributesOf(options.attributes),
    droppedAttributesCount: 0,
    events: options.events ?? [],
    droppedEventsCount: 0,
    status: options.error === undefined || options.error === null ? { code: StatusCode.unset } : { code: StatusCode.error, message: options.error },
    links: [],
    droppedLinksCount: 0
  })

  const tor = context.tor
  const spans: Array<OtlpSpan> = [span({
    name: connection.command === "invalid" ? "SOCKS (invalid request)" : `SOCKS ${formatHostPort(connection.host, connection.port)}`,
    kind: SpanKind.client,
    start,
    end,
    attributes: {
      "server.address": connection.host,
      "server.port": connection.port,
      "mitm.connection.id": connection.id,
      "mitm.upstream": connection.upstream,
      "mitm.socks.version": connection.socksVersion,
      "mitm.socks.command": connection.command,
      "mitm.protocol": connection.protocol,
      "mitm.closed_by": connection.closedBy,
      "mitm.bytes_up": connection.bytesUp,
      "mitm.bytes_down": connection.bytesDown,
      "mitm.events_cut": connection.eventsCut > 0 ? connection.eventsCut : undefined,
      "tor.stream.id": tor?.stream,
      "tor.circuit.id": tor?.circuit,
      "tor.circuit.path": tor === null || tor.path.length === 0 ? undefined : tor.path.map(relayName),
      "tor.circuit.build_time": tor?.circuitBuildTime
    },
    error: connection.state === "failed" ? connection.error ?? "failed" : null,
    events: setup.notes.map((note) => ({
      name: note.type,
      timeUnixNano: nanos(note.time),
      attributes: attributesOf(noteAttributes(note)),
      droppedAttributesCount: 0
    }))
  })]

  const children: Array<{ readonly at: number; readonly span: OtlpSpan }> = []
  const child = (options: Omit<Parameters<typeof span>[0], "parent">) =>
    children.push({ at: options.start, span: span({ ...options, parent: rootId }) })

  child({
    name: "socks.setup",
    start,
    end: setup.reply?.time ?? end,
    attributes: { "mitm.socks.reply": setup.reply?.reply, "mitm.socks.reply_name": setup.reply?.replyName },
    error: setup.reply !== null && setup.reply.replyName !== "succeeded" ? setup.reply.replyName : null
  })
  if (setup.clientHello !== null) {
    const { clientHello, serverHello } = setup
    child({
      name: "tls.handshake",
      start: clientHello.time,
      end: serverHello?.time ?? end,
      attributes: {
        "tls.client.server_name": clientHello.sni,
        "tls.client.supported_protocols": clientHello.alpn.length > 0 ? clientHello.alpn : undefined,
        "tls.protocol.name": "tls",
        "tls.protocol.version": serverHello === null ? undefined : tlsVersion(serverHello.tlsVersion),
        "tls.cipher": serverHello?.cipher,
        "tls.next_protocol": serverHello?.alpn
      }
    })
  }
  for (const delay of setup.delays) {
    child({
      name: "mitm.delay",
      start: delay.start.time,
      end: delay.end?.time ?? end,
      attributes: { "mitm.delay.kind": delay.start.delay, "mitm.delay.planned_ms": delay.start.ms, "mitm.exchange.index": delay.start.exchange }
    })
  }
  for (const exchange of exchanges(connection)) {
    child({
      name: exchange.method ?? "HTTP",
      kind: SpanKind.client,
      start: exchange.requestStart,
      end: exchange.responseEnd ?? exchange.responseStart ?? exchange.requestEnd ?? end,
      attributes: exchangeAttributes(exchange),
      error: exchange.status !== null && exchange.status >= 400 ? String(exchange.status) : null
    })
  }
  children.sort((a, b) => a.at - b.at)
  for (const { span } of children) spans.push(span)
  return spans
}
