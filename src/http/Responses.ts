/**
 * What every report response carries, and how errors read as JSON.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
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
 * Bytes sent per write. Every write that fills the response's buffer waits for the client to
 * drain it, so writes are batched; the batch is bytes outside the JavaScript heap.
 */
const bytesPerWrite = 256 * 1024

/** A UTF-16 code unit is at most 3 bytes of UTF-8. */
const maxBytesPerUnit = 3

const comma = 0x2c

/**
 * The items' JSON, comma-separated, in batches of about `bytesPerWrite`. Each item's text is
 * written into the batch as soon as it is made, so every string stays small (a connection or
 * a HAR entry: a few KiB) and dies young. Joining items into one string first would make
 * strings of hundreds of KiB, which V8 allocates as large objects outside the young
 * generation: that cost more than serializing them (measured: 2.7× the CPU time).
 */
function* arrayPieces<A>(items: ReadonlyArray<A>, text: (item: A) => string): Generator<Uint8Array> {
  let batch = Buffer.allocUnsafe(bytesPerWrite)
  let used = 0
  for (let i = 0; i < items.length; i++) {
    const item = text(items[i])
    const room = 1 + item.length * maxBytesPerUnit
    if (used + room > batch.length && used > 0) {
      yield batch.subarray(0, used)
      batch = Buffer.allocUnsafe(Math.max(bytesPerWrite, room))
      used = 0
    } else if (room > batch.length) {
      batch = Buffer.allocUnsafe(room)
    }
    if (i > 0) batch[used++] = comma
    used += batch.write(item, used)
  }
  if (used > 0) yield batch.subarray(0, used)
}

/** Stands for the streamed array inside `within`'s document; no report field holds a NUL. */
const arrayMarker = "\u0000mitm-array\u0000"

/**
 * JSON whose one big array is sent in pieces as it is serialized, each item built by `build`
 * just before: a report of 10,000 connections is tens of megabytes, and one JSON.stringify
 * would hold it twice (as text and as bytes) before the first byte goes. The array is the
 * whole document, or stands where `within` puts the marker it is given.
 */
export const jsonStream = <A>(
  array: ReadonlyArray<A>,
  options: {
    readonly within?: (marker: string) => unknown
    readonly build?: (item: A) => unknown
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
  const pieces = function*(): Generator<Uint8Array> {
    yield Buffer.from(before)
    yield* arrayPieces(array, (item) => JSON.stringify(build(item)))
    yield Buffer.from(after)
  }
  // One piece per stream chunk: `fromIterable` would gather up to 4,096 pieces (the whole
  // document) into its first chunk, and nothing would be sent before all was serialized.
  return HttpServerResponse.stream(Stream.fromIteratorSucceed(pieces(), 1), {
    contentType: "application/json",
    headers: { ...securityHeaders, ...options.headers }
  })
}
