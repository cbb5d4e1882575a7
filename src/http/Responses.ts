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
 * Array items serialized per piece. A piece's text stays small (tens of KiB for a typical
 * connection or HAR entry), so it is young garbage: a large one would go to the old
 * generation and bring the next full collection closer.
 */
const itemsPerPiece = 32

const comma = Buffer.from(",")

/**
 * Bytes sent per write. Every write that fills the response's buffer waits for the client to
 * drain it, so writes are batched; the batch is bytes outside the JavaScript heap.
 */
const bytesPerWrite = 256 * 1024

/** How an item becomes JSON: built as a value for JSON.stringify, or written as text. */
type ItemWriter<A> = { readonly build: (item: A) => unknown } | { readonly text: (item: A) => string }

const pieceOf = <A>(items: ReadonlyArray<A>, writer: ItemWriter<A>): Buffer => {
  if ("text" in writer) return Buffer.from(items.map(writer.text).join(","))
  // "[a,b]": its brackets go (as bytes, not by copying the text).
  const bytes = Buffer.from(JSON.stringify(items.map(writer.build)))
  return bytes.subarray(1, bytes.length - 1)
}

function* arrayPieces<A>(items: ReadonlyArray<A>, writer: ItemWriter<A>): Generator<Uint8Array> {
  let batch: Array<Buffer> = []
  let batched = 0
  for (let i = 0; i < items.length; i += itemsPerPiece) {
    // A comma joins each piece to the piece before.
    const bytes = pieceOf(items.slice(i, i + itemsPerPiece), writer)
    if (i > 0) batch.push(comma)
    batch.push(bytes)
    batched += bytes.length
    if (batched >= bytesPerWrite) {
      yield Buffer.concat(batch)
      batch = []
      batched = 0
    }
  }
  if (batch.length > 0) yield Buffer.concat(batch)
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
    /** Writes an item as JSON text itself, instead of `build` and JSON.stringify. */
    readonly text?: (item: A) => string
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
  const pieces = function*(): Generator<Uint8Array> {
    yield Buffer.from(before)
    yield* arrayPieces(array, options.text !== undefined ? { text: options.text } : { build: options.build ?? ((item) => item) })
    yield Buffer.from(after)
  }
  return HttpServerResponse.stream(Stream.fromIterable({ [Symbol.iterator]: pieces }), {
    contentType: "application/json",
    headers: { ...securityHeaders, ...options.headers }
  })
}
