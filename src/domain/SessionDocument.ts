/**
 * What MITM adds to a HAR it saves: the `_mitm` extension of the log (SPEC §8). HAR
 * holds HTTP exchanges only; `_mitm` keeps everything else MITM measured (every
 * connection with its typed events, SOCKS facts, Tor's stream, circuit and path), so
 * that a saved session reopens as exactly what the live report showed. Decoded with
 * effect/Schema; each event's `detail` is made again from its fields (`stamp`), the
 * one place display text comes from.
 */
import { Either, Option, ParseResult, Schema, SchemaAST } from "effect"
import type { Connection } from "./Connection.js"
import { type ConnectionEvent, type EventFacts, stamp } from "./Event.js"
import { HarDocumentError, type Measurements, type SessionInfo, type SessionSource } from "./Session.js"
import type { TorAttribution, TorCircuit } from "./TorCircuits.js"

const Count = Schema.Number
const Seconds = Schema.Number
const Text = Schema.String
const Texts = Schema.Array(Schema.String)
const Headers = Texts

const event = <T extends string, F extends Schema.Struct.Fields>(type: T, fields: F) =>
  Schema.Struct({ time: Seconds, type: Schema.Literal(type), ...fields })

const DecodeFailureSchema = Schema.Struct({
  _tag: Schema.Literal("HttpParseError", "TlsParseError", "SocksParseError"),
  reason: Text,
  message: Text,
  offset: Schema.NullOr(Count)
})

const DelayKindSchema = Schema.Literal("socks", "http")
const DirectionSchema = Schema.Literal("up", "down")

/** One recorded event: its time and its typed facts (`detail` is derived, not read). */
const EventSchema = Schema.Union(
  event("SocksRequestStart", {
    host: Text,
    port: Count,
    command: Schema.Literal("connect", "resolve", "resolve_ptr", "bind", "udp_associate", "invalid"),
    version: Schema.Literal(4, 5)
  }),
  event("SocksResponseEnd", { reply: Count, replyName: Text, address: Schema.NullOr(Text) }),
  event("HttpRequestStart", { exchange: Count, method: Text, target: Text, httpVersion: Text, headers: Headers }),
  event("HttpRequestEnd", { exchange: Count, bodyBytes: Count }),
  event("HttpResponseStart", { exchange: Count, status: Count, reason: Text, httpVersion: Text, headers: Headers }),
  event("HttpInformational", { exchange: Count, status: Count, reason: Text, httpVersion: Text, headers: Headers }),
  event("HttpResponseEnd", { exchange: Count, bodyBytes: Count }),
  event("TlsClientHello", { sni: Schema.NullOr(Text), alpn: Texts, versions: Texts }),
  event("TlsServerHello", { tlsVersion: Text, cipher: Text, alpn: Schema.NullOr(Text), helloRetryRequest: Schema.Boolean }),
  event("TlsApplicationData", { direction: DirectionSchema }),
  event("InferredRequest", { exchange: Count, afterBytes: Schema.NullOr(Count) }),
  event("InferredResponse", { exchange: Count, afterBytes: Schema.NullOr(Count) }),
  event("DelayStart", { delay: DelayKindSchema, ms: Count, exchange: Schema.NullOr(Count) }),
  event("DelayEnd", { delay: DelayKindSchema, ms: Count, exchange: Schema.NullOr(Count) }),
  event("DecodeError", { error: DecodeFailureSchema }),
  event("TorStreamAttached", { stream: Text, circuit: Text, path: Texts }),
  event("TorStreamFailed", { stream: Text, reason: Schema.NullOr(Text), remoteReason: Schema.NullOr(Text) }),
  event("ConnectionClose", { closedBy: Schema.NullOr(Schema.Literal("client", "server")), bytesUp: Count, bytesDown: Count })
)

/** The schema and the event model must describe the same facts: a field added to one and not the other fails the type check. */
type DecodedEvent = typeof EventSchema.Type
type Facts<E> = E extends { readonly time: number } ? Omit<E, "time"> : never
const _sameFacts: [Facts<DecodedEvent>] extends [EventFacts] ? ([EventFacts] extends [Facts<DecodedEvent>] ? true : false) : false = true

const TorRelaySchema = Schema.Struct({ fingerprint: Schema.NullOr(Text), nickname: Schema.NullOr(Text) })

const TorAttributionSchema = Schema.Struct({
  stream: Text,
  circuit: Schema.NullOr(Text),
  path: Schema.Array(TorRelaySchema),
  circuitBuildTime: Schema.NullOr(Seconds)
})

const TorCircuitSchema = Schema.Struct({
  id: Text,
  purpose: Schema.NullOr(Text),
  state: Schema.Literal("launched", "built", "failed", "closed"),
  path: Schema.Array(TorRelaySchema),
  launchedAt: Schema.NullOr(Seconds),
  builtAt: Schema.NullOr(Seconds),
  buildTime: Schema.NullOr(Seconds),
  closedAt: Schema.NullOr(Seconds),
  reason: Schema.NullOr(Text),
  connections: Schema.Array(Count),
  rttMs: Schema.NullOr(Count),
  conflux: Texts
})

const _sameCircuit: [typeof TorCircuitSchema.Type] extends [TorCircuit] ? true : false = true
const _sameAttribution: [typeof TorAttributionSchema.Type] extends [TorAttribution] ? true : false = true

/** A connection as `_mitm` keeps it: the JSON API's fields without the derived exchanges, with its `tor`. */
const SavedConnectionSchema = Schema.Struct({
  id: Count,
  client: Text,
  host: Text,
  port: Count,
  socksVersion: Schema.Literal(4, 5),
  command: Schema.Literal("connect", "resolve", "resolve_ptr", "bind", "udp_associate", "invalid"),
  isolation: Schema.NullOr(Text),
  upstream: Text,
  state: Schema.Literal("open", "closed", "failed"),
  protocol: Schema.Literal("http", "tls", "unknown", "pending"),
  openedAt: Seconds,
  closedAt: Schema.NullOr(Seconds),
  closedBy: Schema.NullOr(Schema.Literal("client", "server")),
  bytesUp: Count,
  bytesDown: Count,
  events: Schema.Array(EventSchema),
  eventsCut: Count,
  error: Schema.NullOr(Text),
  tor: Schema.NullOr(TorAttributionSchema)
})

type SavedConnection = typeof SavedConnectionSchema.Type
const _sameConnection: [Omit<SavedConnection, "events" | "tor">] extends [Omit<Connection, "events">]
  ? ([Omit<Connection, "events">] extends [Omit<SavedConnection, "events" | "tor">] ? true : false)
  : false = true

const SessionHeadSchema = Schema.Struct({
  name: Text,
  savedAt: Text,
  source: Schema.Literal("mitm", "har")
})

/** The `_mitm` field of a session file's log. Imported HARs carry only `session`. */
export const MitmExtensionSchema = Schema.Struct({
  format: Schema.Literal(1),
  session: SessionHeadSchema,
  sessionStartMillis: Schema.optional(Schema.Number),
  now: Schema.optional(Seconds),
  connections: Schema.optional(Schema.Array(SavedConnectionSchema)),
  circuits: Schema.optional(Schema.Array(TorCircuitSchema))
})

export type MitmExtension = typeof MitmExtensionSchema.Type

/** What names a session in its file. */
export type SessionHead = Pick<SessionInfo, "name" | "savedAt" | "source">

/** `_mitm` for a session MITM measured: every connection with its events and `tor`, and the circuits. */
export const mitmExtension = (head: SessionHead, measurements: Measurements) => ({
  format: 1 as const,
  session: { name: head.name, savedAt: head.savedAt, source: head.source },
  sessionStartMillis: measurements.sessionStartMillis,
  now: measurements.now,
  connections: measurements.connections.map((connection) => ({ ...connection, tor: measurements.tor.get(connection.id) ?? null })),
  circuits: measurements.circuits
})

/** `_mitm` for an imported HAR: its name and when it was imported; its measurements come from its entries. */
export const importedExtension = (head: SessionHead) => ({ format: 1 as const, session: { ...head, source: "har" as SessionSource } })

const eventOf = ({ time, ...facts }: DecodedEvent): ConnectionEvent => stamp(time, facts as EventFacts)

/** The connection as the store held it: fields in the store's order, events stamped again. */
const connectionOf = (saved: SavedConnection): Connection => ({
  id: saved.id,
  client: saved.client,
  host: saved.host,
  port: saved.port,
  socksVersion: saved.socksVersion,
  command: saved.command,
  isolation: saved.isolation,
  upstream: saved.upstream,
  state: saved.state,
  protocol: saved.protocol,
  openedAt: saved.openedAt,
  closedAt: saved.closedAt,
  closedBy: saved.closedBy,
  bytesUp: saved.bytesUp,
  bytesDown: saved.bytesDown,
  events: saved.events.map(eventOf),
  eventsCut: saved.eventsCut,
  error: saved.error
})

/** The measurements `_mitm` kept; undefined for an imported HAR, whose entries hold them. */
export const measurementsOfExtension = (extension: MitmExtension): Measurements | undefined => {
  if (extension.connections === undefined) return undefined
  const tor = new Map<number, TorAttribution>()
  for (const saved of extension.connections) if (saved.tor !== null) tor.set(saved.id, saved.tor)
  return {
    connections: extension.connections.map(connectionOf),
    tor,
    circuits: extension.circuits ?? [],
    sessionStartMillis: extension.sessionStartMillis ?? 0,
    now: extension.now ?? 0
  }
}

const describeValue = (value: unknown): string => {
  if (value === undefined) return "nothing"
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  if (typeof value === "object") return "an object"
  const text = JSON.stringify(value)
  return text.length > 40 ? `${text.slice(0, 39)}…` : text
}

/** `log.entries[3].request.url` */
export const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? String(key) : `${text}.${String(key)}`), "")

/** What a missing field should have been, from its schema's message annotation (`expected …`). */
const expectedOfMissing = (issue: ParseResult.ParseIssue): string | undefined => {
  switch (issue._tag) {
    case "Pointer":
    case "Refinement":
    case "Transformation":
      return expectedOfMissing(issue.issue)
    case "Composite":
      return expectedOfMissing(Array.isArray(issue.issues) ? issue.issues[0] : issue.issues as ParseResult.ParseIssue)
    case "Missing": {
      // Struct fields report the property signature; its `type` carries the annotation.
      const ast: SchemaAST.AST = "type" in issue.ast ? (issue.ast as unknown as { readonly type: SchemaAST.AST }).type : issue.ast
      const annotation = Option.getOrUndefined(SchemaAST.getMessageAnnotation(ast))
      const message = annotation?.(issue)
      const text = typeof message === "string" ? message : typeof message === "object" && "message" in message ? message.message : undefined
      return typeof text === "string" ? text : undefined
    }
    default:
      return undefined
  }
}

/**
 * A schema's first problem as people read it: where, what was expected and what was there.
 * Messages set on a schema (`message` annotations) are used as they are.
 */
export const firstProblem = (error: ParseResult.ParseError, input: unknown, prefix: ReadonlyArray<PropertyKey> = []): HarDocumentError => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const path = [...prefix, ...(issue?.path ?? [])]
  let value: unknown = input
  for (const key of issue?.path ?? []) value = value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined
  const message = issue?.message ?? "not readable"
  const problem = issue?._tag === "Missing"
    ? `is missing${((expected) => (expected === undefined ? "" : ` (${expected})`))(expectedOfMissing(error.issue))}`
    : /^Expected /.test(message)
    ? `expected ${message.slice("Expected ".length).replace(/, actual .*$/s, "")}, got ${describeValue(value)}`
    : message
  return new HarDocumentError({ path: pathText(path), problem })
}

/** Decodes `log._mitm` of a session file. */
export const decodeMitmExtension = (value: unknown): Either.Either<MitmExtension, HarDocumentError> =>
  Either.mapLeft(
    Schema.decodeUnknownEither(MitmExtensionSchema)(value),
    (error) => firstProblem(error, value, ["log", "_mitm"])
  )
