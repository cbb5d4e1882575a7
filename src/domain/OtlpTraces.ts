/**
 * OTLP trace export bodies (`ExportTraceServiceRequest`, opentelemetry-proto
 * v1): the document as OTLP/JSON writes it, and its protobuf encoding. The
 * protobuf writer measures each message first and then writes the whole body
 * into one buffer, with no intermediate arrays: it runs in MITM's one thread
 * beside the relay, once per closed connection.
 *
 * Field numbers: trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto.
 */

/** `AnyValue`: one of these, as OTLP/JSON writes it (64-bit integers as numbers). */
export interface AnyValue {
  readonly stringValue?: string
  readonly boolValue?: boolean
  readonly intValue?: number
  readonly doubleValue?: number
  readonly arrayValue?: { readonly values: ReadonlyArray<AnyValue> }
}

export interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}

export interface SpanEvent {
  readonly timeUnixNano: string
  readonly name: string
  readonly attributes: ReadonlyArray<KeyValue>
  readonly droppedAttributesCount: number
}

/** `Span`: ids in lower-case hex, times in nanoseconds since the epoch as decimal text. */
export interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly kind: number
  readonly startTimeUnixNano: string
  readonly endTimeUnixNano: string
  readonly attributes: ReadonlyArray<KeyValue>
  readonly droppedAttributesCount: number
  readonly events: ReadonlyArray<SpanEvent>
  readonly droppedEventsCount: number
  readonly status: { readonly code: number; readonly message?: string }
  readonly links: ReadonlyArray<never>
  readonly droppedLinksCount: number
}

export interface TracesDocument {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<KeyValue>; readonly droppedAttributesCount: number }
    readonly scopeSpans: ReadonlyArray<{
      readonly scope: { readonly name: string; readonly version?: string | undefined }
      readonly spans: ReadonlyArray<Span>
    }>
  }>
}

/** OTLP's SpanKind values. */
export const SpanKind = { internal: 1, client: 3 } as const

/** OTLP's status codes: unset (the default) or error. */
export const StatusCode = { unset: 0, error: 2 } as const

type Attribute = string | number | boolean | ReadonlyArray<string> | null | undefined

const anyValueOf = (value: string | number | boolean | ReadonlyArray<string>): AnyValue =>
  typeof value === "string"
    ? { stringValue: value }
    : typeof value === "boolean"
    ? { boolValue: value }
    : typeof value === "number"
    ? Number.isSafeInteger(value) ? { intValue: value } : { doubleValue: value }
    : { arrayValue: { values: value.map((item) => ({ stringValue: item })) } }

/** Attributes with a value, in the given order; null and undefined ones are left out. */
export const attributesOf = (attributes: Readonly<Record<string, Attribute>>): Array<KeyValue> => {
  const out: Array<KeyValue> = []
  for (const key in attributes) {
    const value = attributes[key]
    if (value !== null && value !== undefined) out.push({ key, value: anyValueOf(value) })
  }
  return out
}

/** The OTLP/JSON body. */
export const encodeTracesJson = (document: TracesDocument): Uint8Array => Buffer.from(JSON.stringify(document), "utf8")

// ---------------------------------------------------------------------------
// Protobuf: sizes first, then one write

const LEN = 2
const I64 = 1
const VARINT = 0

const varintSize = (value: number): number => {
  let size = 1
  while (value > 127) {
    value = Math.floor(value / 128)
    size++
  }
  return size
}

/** An int64 as protobuf writes it: negative values take ten bytes (two's complement). */
const int64Size = (value: number): number => (value < 0 ? 10 : varintSize(value))

/** A length-delimited field of `length` bytes, tag included (field numbers here are all below 16). */
const delimited = (length: number): number => 1 + varintSize(length) + length

const utf8 = (text: string): number => Buffer.byteLength(text, "utf8")

const anyValueSize = (value: AnyValue): number => {
  if (value.stringValue !== undefined) return delimited(utf8(value.stringValue))
  if (value.boolValue !== undefined) return 2
  if (value.intValue !== undefined) return 1 + int64Size(value.intValue)
  if (value.doubleValue !== undefined) return 9
  if (value.arrayValue !== undefined) return delimited(arrayValueSize(value.arrayValue.values))
  return 0
}

const arrayValueSize = (values: ReadonlyArray<AnyValue>): number => {
  let size = 0
  for (const value of values) size += delimited(anyValueSize(value))
  return size
}

const keyValueSize = (keyValue: KeyValue): number => delimited(utf8(keyValue.key)) + delimited(anyValueSize(keyValue.value))

const attributesSize = (attributes: ReadonlyArray<KeyValue>): number => {
  let size = 0
  for (const attribute of attributes) size += delimited(keyValueSize(attribute))
  return size
}

const countSize = (count: number): number => (count > 0 ? 1 + varintSize(count) : 0)

const eventSize = (event: SpanEvent): number =>
  9 + delimited(utf8(event.name)) + attributesSize(event.attributes) + countSize(event.droppedAttributesCount)

const statusSize = (status: Span["status"]): number =>
  (status.message === undefined || status.message === "" ? 0 : delimited(utf8(status.message))) + 1 + varintSize(status.code)

const spanSize = (span: Span): number => {
  let size = delimited(span.traceId.length / 2) + delimited(span.spanId.length / 2)
  if (span.parentSpanId !== undefined) size += delimited(span.parentSpanId.length / 2)
  size += delimited(utf8(span.name)) + 1 + varintSize(span.kind) + 9 + 9
  size += attributesSize(span.attributes) + countSize(span.droppedAttributesCount)
  for (const event of span.events) size += delimited(eventSize(event))
  size += countSize(span.droppedEventsCount) + countSize(span.droppedLinksCount)
  return size + delimited(statusSize(span.status))
}

type ScopeSpans = TracesDocument["resourceSpans"][number]["scopeSpans"][number]
type ResourceSpans = TracesDocument["resourceSpans"][number]

const scopeSize = (scope: ScopeSpans["scope"]): number =>
  delimited(utf8(scope.name)) + (scope.version === undefined || scope.version === "" ? 0 : delimited(utf8(scope.version)))

class Writer {
  readonly bytes: Buffer
  at = 0
  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size)
  }
  varint(value: number) {
    while (value > 127) {
      this.bytes[this.at++] = (value % 128) | 128
      value = Math.floor(value / 128)
    }
    this.bytes[this.at++] = value
  }
  tag(field: number, wire: number) {
    this.bytes[this.at++] = (field << 3) | wire
  }
  /** A length-delimited field's tag and length; its content follows. */
  open(field: number, length: number) {
    this.tag(field, LEN)
    this.varint(length)
  }
  string(field: number, text: string) {
    const length = utf8(text)
    this.open(field, length)
    this.at += this.bytes.write(text, this.at, length, "utf8")
  }
  hex(field: number, hex: string) {
    this.open(field, hex.length / 2)
    this.at += this.bytes.write(hex, this.at, hex.length / 2, "hex")
  }
  uint(field: number, value: number) {
    this.tag(field, VARINT)
    this.varint(value)
  }
  int64(field: number, value: number) {
    this.tag(field, VARINT)
    if (value >= 0) return this.varint(value)
    let rest = BigInt.asUintN(64, BigInt(value))
    while (rest > 127n) {
      this.bytes[this.at++] = Number(rest & 127n) | 128
      rest >>= 7n
    }
    this.bytes[this.at++] = Number(rest)
  }
  fixed64(field: number, decimal: string) {
    this.tag(field, I64)
    this.at = this.bytes.writeBigUInt64LE(BigInt(decimal), this.at)
  }
  double(field: number, value: number) {
    this.tag(field, I64)
    this.at = this.bytes.writeDoubleLE(value, this.at)
  }
  count(field: number, value: number) {
    if (value > 0) this.uint(field, value)
  }
}

const writeAnyValue = (writer: Writer, value: AnyValue) => {
  if (value.stringValue !== undefined) return writer.string(1, value.stringValue)
  if (value.boolValue !== undefined) return writer.uint(2, value.boolValue ? 1 : 0)
  if (value.intValue !== undefined) return writer.int64(3, value.intValue)
  if (value.doubleValue !== undefined) return writer.double(4, value.doubleValue)
  if (value.arrayValue !== undefined) {
    writer.open(5, arrayValueSize(value.arrayValue.values))
    for (const item of value.arrayValue.values) {
      writer.open(1, anyValueSize(item))
      writeAnyValue(writer, item)
    }
  }
}

const writeAttributes = (writer: Writer, field: number, attributes: ReadonlyArray<KeyValue>) => {
  for (const attribute of attributes) {
    writer.open(field, keyValueSize(attribute))
    writer.string(1, attribute.key)
    writer.open(2, anyValueSize(attribute.value))
    writeAnyValue(writer, attribute.value)
  }
}

const writeSpan = (writer: Writer, span: Span) => {
  writer.hex(1, span.traceId)
  writer.hex(2, span.spanId)
  if (span.parentSpanId !== undefined) writer.hex(4, span.parentSpanId)
  writer.string(5, span.name)
  writer.uint(6, span.kind)
  writer.fixed64(7, span.startTimeUnixNano)
  writer.fixed64(8, span.endTimeUnixNano)
  writeAttributes(writer, 9, span.attributes)
  writer.count(10, span.droppedAttributesCount)
  for (const event of span.events) {
    writer.open(11, eventSize(event))
    writer.fixed64(1, event.timeUnixNano)
    writer.string(2, event.name)
    writeAttributes(writer, 3, event.attributes)
    writer.count(4, event.droppedAttributesCount)
  }
  writer.count(12, span.droppedEventsCount)
  writer.count(14, span.droppedLinksCount)
  writer.open(15, statusSize(span.status))
  if (span.status.message !== undefined && span.status.message !== "") writer.string(2, span.status.message)
  writer.uint(3, span.status.code)
}

/** The protobuf body (`application/x-protobuf`). */
export const encodeTracesProtobuf = (document: TracesDocument): Uint8Array => {
  // Every span's size once; the enclosing messages add them up.
  const sizes = document.resourceSpans.map((resourceSpans) => resourceSpans.scopeSpans.map((scopeSpans) => scopeSpans.spans.map(spanSize)))
  const scopeSpansSize = (scopeSpans: ScopeSpans, spanSizes: ReadonlyArray<number>) =>
    delimited(scopeSize(scopeSpans.scope)) + spanSizes.reduce((sum, size) => sum + delimited(size), 0)
  const resourceSize = (resource: ResourceSpans["resource"]) =>
    attributesSize(resource.attributes) + countSize(resource.droppedAttributesCount)
  const resourceSpansSize = (resourceSpans: ResourceSpans, index: number) =>
    delimited(resourceSize(resourceSpans.resource)) +
    resourceSpans.scopeSpans.reduce((sum, scopeSpans, inner) => sum + delimited(scopeSpansSize(scopeSpans, sizes[index][inner])), 0)
  const total = document.resourceSpans.reduce((sum, resourceSpans, index) => sum + delimited(resourceSpansSize(resourceSpans, index)), 0)

  const writer = new Writer(total)
  document.resourceSpans.forEach((resourceSpans, index) => {
    writer.open(1, resourceSpansSize(resourceSpans, index))
    writer.open(1, resourceSize(resourceSpans.resource))
    writeAttributes(writer, 1, resourceSpans.resource.attributes)
    writer.count(2, resourceSpans.resource.droppedAttributesCount)
    resourceSpans.scopeSpans.forEach((scopeSpans, inner) => {
      const spanSizes = sizes[index][inner]
      writer.open(2, scopeSpansSize(scopeSpans, spanSizes))
      writer.open(1, scopeSize(scopeSpans.scope))
      writer.string(1, scopeSpans.scope.name)
      if (scopeSpans.scope.version !== undefined && scopeSpans.scope.version !== "") writer.string(2, scopeSpans.scope.version)
      scopeSpans.spans.forEach((span, position) => {
        writer.open(2, spanSizes[position])
        writeSpan(writer, span)
      })
    })
  })
  if (writer.at !== total) throw new Error(`OTLP protobuf: wrote ${writer.at} bytes of ${total}`)
  return writer.bytes
}
