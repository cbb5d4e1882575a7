/**
 * What every report response carries, and how errors read as JSON.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import * as Stream from "effect/Stream"

/** No third-party resource, no framing, no sniffing, no caching, and no CORS headers at all. */
export const securityHeaders = {
  "content-security-policy": "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on the settings form.
  "referrer-policy": "same-origin",
  "cache-control": "no-store"
} as const

export const jsonError = (status: number, error: string, extra: Record<string, unknown> = {}) =>
  HttpServerResponse.unsafeJson({ error, ...extra }, { status, headers: securityHeaders })

/**
 * Bytes sent per stream chunk. Every chunk that fills the response's buffer waits for the
 * client to drain it, so writes are grouped; text is written into batches outside the heap.
 */
const bytesPerWrite = 256 * 1024

/** A UTF-16 code unit is at most 3 bytes of UTF-8. */
const maxBytesPerUnit = 3

const comma = 0x2c

/**
 * An array item's JSON made once and sent many times: a comma, then the JSON, as UTF-8. It is
 * written to the response as it is, not copied: copying tens of megabytes into fresh batches
 * cost more than the socket writes (measured: 113 ms for 46 MB, most of it first-touch page faults).
 */
export interface ListedJson {
  readonly _tag: "ListedJson"
  readonly bytes: Buffer
}

export const listedJson = (value: unknown): ListedJson => ({ _tag: "ListedJson", bytes: Buffer.from(`,${JSON.stringify(value)}`) })

/**
 * The items' JSON, comma-separated, in groups of about `bytesPerWrite` bytes. An item made
 * now (a string) is written into a batch as soon as it is made, so every string stays small
 * (a connection or a HAR entry: a few KiB) and dies young: joining items into one string
 * first would make strings of hundreds of KiB, which V8 allocates as large objects outside
 * the young generation (measured: 2.7× the CPU time of serializing them). An item made
 * before (`ListedJson`) joins the group as it is.
 */
function* arrayGroups<A>(
  items: ReadonlyArray<A>,
  text: (item: A) => string | ListedJson
): Generator<ReadonlyArray<Uint8Array>> {
  let group: Array<Uint8Array> = []
  let grouped = 0
  let batch = Buffer.allocUnsafe(0)
  /** The batch's bytes from `start` to `used` are text not yet in the group. */
  let start = 0
  let used = 0
  const groupText = () => {
    if (used === start) return
    group.push(batch.subarray(start, used))
    grouped += used - start
    start = used
  }
  for (let i = 0; i < items.length; i++) {
    const item = text(items[i])
    if (typeof item === "string") {
      const room = 1 + item.length * maxBytesPerUnit
      if (used + room > batch.length) {
        groupText()
        batch = Buffer.allocUnsafe(Math.max(bytesPerWrite, room))
        start = used = 0
      }
      if (i > 0) batch[used++] = comma
      used += batch.write(item, used)
    } else {
      groupText()
      const bytes = i === 0 ? item.bytes.subarray(1) : item.bytes
      group.push(bytes)
      grouped += bytes.length
    }
    if (grouped + used - start >= bytesPerWrite) {
      groupText()
      yield group
      group = []
      grouped = 0
    }
  }
  groupText()
  if (group.length > 0) yield group
}

/** Stands for the streamed array inside `within`'s document; no report field holds a NUL. */
const arrayMarker = "\u0000mitm-array\u0000"

/**
 * JSON whose one big array is sent in pieces as it is serialized, each item built by `build`
 * just before (or its JSON given by `text`, as text or UTF-8 bytes): a report of 10,000
 * connections is tens of megabytes, and one JSON.stringify would hold it twice (as text and
 * as bytes) before the first byte goes. The array is the whole document, or stands where
 * `within` puts the marker it is given.
 */
export const jsonStream = <A>(
  array: ReadonlyArray<A>,
  options: {
    readonly within?: (marker: string) => unknown
    readonly build?: (item: A) => unknown
    readonly text?: (item: A) => string | ListedJson
    readonly headers?: Record<string, string>
  } = {}
) => {
  let before = "["
  let after = "]"
  if (options.within !== undefined) {
    const text = JSON.stringify(options.within(arrayMarker))
    const marker = JSON.stringify(arrayMarker)
    const at = text.indexOf(marker)
    before = `${text.slice(0, at)}[`
    after = `]${text.slice(at + marker.length)}`
  }
  const build = options.build ?? ((item: A): unknown => item)
  const text = options.text ?? ((item: A) => JSON.stringify(build(item)))
  const groups = function*(): Generator<ReadonlyArray<Uint8Array>> {
    yield [Buffer.from(before)]
    yield* arrayGroups(array, text)
    yield [Buffer.from(after)]
  }
  // One group per stream chunk: `fromIterable` would gather up to 4,096 groups (the whole
  // document) into its first chunk, and nothing would be sent before all was serialized.
  const body = Stream.fromIteratorSucceed(groups(), 1).pipe(Stream.mapConcatChunk(Chunk.unsafeFromArray))
  return HttpServerResponse.stream(body, {
    contentType: "application/json",
    headers: { ...securityHeaders, ...options.headers }
  })
}
