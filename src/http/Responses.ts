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

function* arrayPieces<A>(items: ReadonlyArray<A>, build: (item: A) => unknown): Generator<Uint8Array> {
  let batch: Array<Buffer> = []
  let batched = 0
  for (let i = 0; i < items.length; i += itemsPerPiece) {
    // Each piece is "[a,b]": its brackets go (as bytes, not by copying the text), and a comma
    // joins it to the piece before.
    const bytes = Buffer.from(JSON.stringify(items.slice(i, i + itemsPerPiece).map(build)))
    if (i > 0) batch.push(comma)
    batch.push(bytes.subarray(1, bytes.length - 1))
    batched += bytes.length
    if (batched >= bytesPerWrite) {
      yield Buffer.concat(batch)
      batch = []
      batched = 0
    }
  }
  if (batch.length > 0) yield Buffer.concat(batch)
}

/**
 * JSON whose one big array (in place of `placeholder` in the document, or the document itself
 * when it is that array) is sent in pieces as it is serialized, each item built by `build`
 * just before: a report of 10,000 connections is tens of megabytes, and one JSON.stringify
 * would hold it twice (as text and as bytes) before the first byte goes.
 */
export const jsonStream = <A>(
  document: unknown,
  array: ReadonlyArray<A>,
  options: {
    readonly headers?: Record<string, string>
    readonly placeholder?: string
    readonly build?: (item: A) => unknown
  } = {}
) => {
  let before = "["
  let after = "]"
  if (options.placeholder !== undefined) {
    const text = JSON.stringify(document)
    const at = text.indexOf(JSON.stringify(options.placeholder))
    before = `${text.slice(0, at)}[`
    after = `]${text.slice(at + JSON.stringify(options.placeholder).length)}`
  }
  const pieces = function*(): Generator<Uint8Array> {
    yield Buffer.from(before)
    yield* arrayPieces(array, options.build ?? ((item) => item))
    yield Buffer.from(after)
  }
  return HttpServerResponse.stream(Stream.fromIterable({ [Symbol.iterator]: pieces }), {
    contentType: "application/json",
    headers: { ...securityHeaders, ...options.headers }
  })
}
