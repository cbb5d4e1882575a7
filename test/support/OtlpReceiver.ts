/**
 * An OTLP/HTTP trace receiver on 127.0.0.1:0 for tests, closed with the test's
 * scope. It decodes both encodings on its own (JSON, and protobuf with the small
 * reader below, written from opentelemetry-proto's trace.proto, common.proto and
 * resource.proto), so a test sees the spans as any collector would. It can also
 * answer 503 to everything, or never answer.
 */
import { Effect } from "effect"
import type * as http from "node:http"
import { httpOrigin } from "./Loopback.js"

export type AttributeValue = string | number | boolean | ReadonlyArray<AttributeValue> | null

/** A span as a collector got it, with its resource's attributes. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  /** null for a root span. */
  readonly parentSpanId: string | null
  readonly name: string
  readonly kind: number
  readonly startTimeUnixNano: bigint
  readonly endTimeUnixNano: bigint
  readonly attributes: Readonly<Record<string, AttributeValue>>
  readonly events: ReadonlyArray<{ readonly name: string; readonly timeUnixNano: bigint; readonly attributes: Readonly<Record<string, AttributeValue>> }>
  readonly status: { readonly code: number; readonly message: string | null }
  readonly resource: Readonly<Record<string, AttributeValue>>
  readonly scope: string
}

// ---------------------------------------------------------------------------
// Protobuf: a message read into its fields (wire types 0, 1, 2 and 5)

type Field = { readonly wire: 0; readonly value: bigint } | { readonly wire: 1 | 2 | 5; readonly value: Buffer }

const readMessage = (bytes: Buffer): Map<number, Array<Field>> => {
  const fields = new Map<number, Array<Field>>()
  let at = 0
  const varint = (): bigint => {
    let result = 0n
    let shift = 0n
    for (;;) {
      if (at >= bytes.length) throw new Error("protobuf: varint runs past the end")
      const byte = bytes[at++]
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return result
      shift += 7n
    }
  }
  const take = (length: number): Buffer => {
    if (at + length > bytes.length) throw new Error("protobuf: field runs past the end")
    const out = bytes.subarray(at, at + length)
    at += length
    return out
  }
  while (at < bytes.length) {
    const key = Number(varint())
    const number = key >> 3
    const wire = key & 7
    const field: Field = wire === 0
      ? { wire, value: varint() }
      : wire === 1
      ? { wire, value: take(8) }
      : wire === 2
      ? { wire, value: take(Number(varint())) }
      : wire === 5
      ? { wire, value: take(4) }
      : (() => {
        throw new Error(`protobuf: wire type ${wire} of field ${number} is not used by OTLP traces`)
      })()
    const list = fields.get(number)
    if (list === undefined) fields.set(number, [field])
    else list.push(field)
  }
  return fields
}

const all = (message: Map<number, Array<Field>>, number: number): Array<Field> => message.get(number) ?? []
const one = (message: Map<number, Array<Field>>, number: number): Field | undefined => all(message, number).at(-1)
const bytesOf = (field: Field | undefined): Buffer => (field !== undefined && field.wire !== 0 ? field.value : Buffer.alloc(0))
const messageOf = (field: Field | undefined) => readMessage(bytesOf(field))
const stringOf = (field: Field | undefined): string => bytesOf(field).toString("utf8")
const varintOf = (field: Field | undefined): bigint => (field?.wire === 0 ? field.value : 0n)
const fixed64Of = (field: Field | undefined): bigint => (field?.wire === 1 ? field.value.readBigUInt64LE(0) : 0n)

const protoAnyValue = (message: Map<number, Array<Field>>): AttributeValue => {
  if (message.has(1)) return stringOf(one(message, 1))
  if (message.has(2)) return varintOf(one(message, 2)) !== 0n
  if (message.has(3)) return Number(BigInt.asIntN(64, varintOf(one(message, 3))))
  if (message.has(4)) return bytesOf(one(message, 4)).readDoubleLE(0)
  if (message.has(5)) return all(messageOf(one(message, 5)), 1).map((value) => protoAnyValue(messageOf(value)))
  return null
}

const protoAttributes = (fields: Array<Field>): Record<string, AttributeValue> =>
  Object.fromEntries(fields.map((field) => {
    const keyValue = messageOf(field)
    return [stringOf(one(keyValue, 1)), protoAnyValue(messageOf(one(keyValue, 2)))]
  }))

/** `ExportTraceServiceRequest` (the same fields as TracesData) from protobuf. */
export const decodeProtobufTraces = (body: Buffer): Array<ReceivedSpan> => {
  const spans: Array<ReceivedSpan> = []
  for (const resourceSpans of all(readMessage(body), 1).map(messageOf)) {
    const resource = protoAttributes(all(messageOf(one(resourceSpans, 1)), 1))
    for (const scopeSpans of all(resourceSpans, 2).map(messageOf)) {
      const scope = stringOf(one(messageOf(one(scopeSpans, 1)), 1))
      for (const span of all(scopeSpans, 2).map(messageOf)) {
        const parent = bytesOf(one(span, 4))
        const status = messageOf(one(span, 15))
        spans.push({
          traceId: bytesOf(one(span, 1)).toString("hex"),
          spanId: bytesOf(one(span, 2)).toString("hex"),
          parentSpanId: parent.length === 0 ? null : parent.toString("hex"),
          name: stringOf(one(span, 5)),
          kind: Number(varintOf(one(span, 6))),
          startTimeUnixNano: fixed64Of(one(span, 7)),
          endTimeUnixNano: fixed64Of(one(span, 8)),
          attributes: protoAttributes(all(span, 9)),
          events: all(span, 11).map(messageOf).map((event) => ({
            timeUnixNano: fixed64Of(one(event, 1)),
            name: stringOf(one(event, 2)),
            attributes: protoAttributes(all(event, 3))
          })),
          status: { code: Number(varintOf(one(status, 3))), message: status.has(2) ? stringOf(one(status, 2)) : null },
          resource,
          scope
        })
      }
    }
  }
  return spans
}

// ---------------------------------------------------------------------------
// JSON (OTLP/JSON: ids as hex, 64-bit integers as strings or numbers)

interface JsonAnyValue {
  readonly stringValue?: string
  readonly boolValue?: boolean
  readonly intValue?: number | string
  readonly doubleValue?: number
  readonly arrayValue?: { readonly values?: ReadonlyArray<JsonAnyValue> }
}
type JsonAttributes = ReadonlyArray<{ readonly key: string; readonly value: JsonAnyValue }> | undefined

/** The parts of an OTLP/JSON `ExportTraceServiceRequest` the receiver reads; all optional, as senders may omit them. */
interface JsonTracesRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: JsonAttributes }
    readonly scopeSpans?: ReadonlyArray<{
      readonly scope?: { readonly name?: string }
      readonly spans?: ReadonlyArray<{
        readonly traceId: string
        readonly spanId: string
        readonly parentSpanId?: string
        readonly name: string
        readonly kind: number
        readonly startTimeUnixNano: string | number
        readonly endTimeUnixNano: string | number
        readonly attributes?: JsonAttributes
        readonly events?: ReadonlyArray<{ readonly name: string; readonly timeUnixNano: string | number; readonly attributes?: JsonAttributes }>
        readonly status?: { readonly code?: number; readonly message?: string }
      }>
    }>
  }>
}

const jsonAnyValue = (value: JsonAnyValue): AttributeValue =>
  value.stringValue !== undefined
    ? value.stringValue
    : value.boolValue !== undefined
    ? value.boolValue
    : value.intValue !== undefined
    ? Number(value.intValue)
    : value.doubleValue !== undefined
    ? value.doubleValue
    : value.arrayValue !== undefined
    ? (value.arrayValue.values ?? []).map(jsonAnyValue)
    : null

const jsonAttributes = (attributes: JsonAttributes): Record<string, AttributeValue> =>
  Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, jsonAnyValue(value)]))

/** `ExportTraceServiceRequest` from OTLP/JSON. */
export const decodeJsonTraces = (body: Buffer): Array<ReceivedSpan> => {
  const document = JSON.parse(body.toString("utf8")) as JsonTracesRequest
  const spans: Array<ReceivedSpan> = []
  for (const resourceSpans of document.resourceSpans ?? []) {
    const resource = jsonAttributes(resourceSpans.resource?.attributes)
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId === undefined || span.parentSpanId === "" ? null : span.parentSpanId,
          name: span.name,
          kind: span.kind,
          startTimeUnixNano: BigInt(span.startTimeUnixNano),
          endTimeUnixNano: BigInt(span.endTimeUnixNano),
          attributes: jsonAttributes(span.attributes),
          events: (span.events ?? []).map((event) => ({
            name: event.name,
            timeUnixNano: BigInt(event.timeUnixNano),
            attributes: jsonAttributes(event.attributes)
          })),
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? null },
          resource,
          scope: scopeSpans.scope?.name ?? ""
        })
      }
    }
  }
  return spans
}

// ---------------------------------------------------------------------------
// The receiver

export type ReceiverBehaviour = "accept" | "unavailable" | "silent"

export interface OtlpReceiver {
  /** What to pass to `--otlp`: the receiver's base URL. */
  readonly url: string
  readonly spans: Array<ReceivedSpan>
  /** Each request's path and content type. */
  readonly requests: Array<{ readonly path: string; readonly contentType: string }>
  /** Requests open now (neither answered nor given up by the client), and the most at once. */
  readonly pending: () => number
  readonly maxPending: () => number
  /** A body the receiver could not decode, with why; none is expected. */
  readonly undecodable: Array<string>
}

/**
 * `accept`: decodes the body by its content type and answers 200 with an empty
 * ExportTraceServiceResponse; `unavailable`: answers 503; `silent`: reads the request
 * and never answers.
 */
export const otlpReceiver = (behaviour: ReceiverBehaviour = "accept") =>
  Effect.gen(function*() {
    const spans: Array<ReceivedSpan> = []
    const requests: Array<{ path: string; contentType: string }> = []
    const undecodable: Array<string> = []
    let pending = 0
    let maxPending = 0
    const handler: http.RequestListener = (request, response) => {
      pending++
      maxPending = Math.max(maxPending, pending)
      // Answered, or given up by the client.
      response.once("close", () => pending--)
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const contentType = request.headers["content-type"] ?? ""
        requests.push({ path: request.url ?? "", contentType })
        if (behaviour === "silent") return
        if (behaviour === "unavailable") return void response.writeHead(503).end("collector unavailable")
        const body = Buffer.concat(chunks)
        try {
          const decoded = contentType.startsWith("application/json") ? decodeJsonTraces(body) : decodeProtobufTraces(body)
          spans.push(...decoded)
        } catch (error) {
          undecodable.push(`${contentType}: ${String(error)}`)
          return void response.writeHead(400).end()
        }
        if (contentType.startsWith("application/json")) response.writeHead(200, { "content-type": "application/json" }).end("{}")
        else response.writeHead(200, { "content-type": "application/x-protobuf" }).end()
      })
    }
    const address = yield* httpOrigin(handler)
    const receiver: OtlpReceiver = {
      url: `http://${address.host}:${address.port}`,
      spans,
      requests,
      pending: () => pending,
      maxPending: () => maxPending,
      undecodable
    }
    return receiver
  })
