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

/** Array items serialized per piece: small enough that no one string or buffer holds the whole body. */
const itemsPerPiece = 256

const comma = Buffer.from(",")

function* arrayPieces(items: ReadonlyArray<unknown>): Generator<Uint8Array> {
  for (let i = 0; i < items.length; i += itemsPerPiece) {
    // Each piece is "[a,b]": its brackets go (as bytes, not by copying the text), and a comma
    // joins it to the piece before.
    const bytes = Buffer.from(JSON.stringify(items.slice(i, i + itemsPerPiece)))
    if (i > 0) yield comma
    yield bytes.subarray(1, bytes.length - 1)
  }
}

/**
 * JSON whose one big array (`document[key]`, or the document itself when it is an array) is
 * sent in pieces as it is serialized: a report of 10,000 connections is tens of megabytes,
 * and one JSON.stringify would hold it twice (as text and as bytes) before the first byte goes.
 */
export const jsonStream = (
  document: unknown,
  array: ReadonlyArray<unknown>,
  options: { readonly headers?: Record<string, string>; readonly placeholder?: string } = {}
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
    yield* arrayPieces(array)
    yield Buffer.from(after)
  }
  return HttpServerResponse.stream(Stream.fromIterable({ [Symbol.iterator]: pieces }), {
    contentType: "application/json",
    headers: { ...securityHeaders, ...options.headers }
  })
}
