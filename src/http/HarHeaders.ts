/**
 * HTTP heads as HAR shows them: header lines (as the decoder captured them) as
 * name/value pairs, the cookies of `Cookie` and `Set-Cookie`, a URL's query
 * string, and the size of a head.
 */

export interface HarNameValue {
  readonly name: string
  readonly value: string
}

export interface HarCookie extends HarNameValue {
  readonly path?: string
  readonly domain?: string
  readonly expires?: string
  readonly httpOnly?: boolean
  readonly secure?: boolean
}

/** What `String.prototype.trim` removes, over latin1 text: tab, line breaks, space and no-break space. */
const isBlank = (code: number): boolean => code === 32 || (code >= 9 && code <= 13) || code === 160

/** `text[from, to)` without blanks at either end, sliced once. */
const trimmed = (text: string, from: number, to: number): string => {
  while (from < to && isBlank(text.charCodeAt(from))) from++
  while (to > from && isBlank(text.charCodeAt(to - 1))) to--
  return from === 0 && to === text.length ? text : text.slice(from, to)
}

/** Header lines as received, in order; an obsolete folded line (leading space or tab) continues the previous value. */
export const harHeaders = (lines: ReadonlyArray<string>): Array<HarNameValue> => {
  const headers: Array<{ name: string; value: string }> = []
  for (const line of lines) {
    const first = line.charCodeAt(0)
    if ((first === 32 || first === 9) && headers.length > 0) {
      const previous = headers[headers.length - 1]
      previous.value = `${previous.value} ${trimmed(line, 0, line.length)}`
      continue
    }
    const colon = line.indexOf(":")
    headers.push(
      colon < 0
        ? { name: trimmed(line, 0, line.length), value: "" }
        : { name: trimmed(line, 0, colon), value: trimmed(line, colon + 1, line.length) }
    )
  }
  return headers
}

/** Whether `name` is `lowerName` (given in lower case) in any case, without lower-casing it. */
const isNamed = (name: string, lowerName: string): boolean => {
  if (name.length !== lowerName.length) return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    // Header names are tokens: folding ASCII upper case is all the case-insensitivity they need.
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lowerName.charCodeAt(i)) return false
  }
  return true
}

/** The value of the first header named `lowerName`; undefined when there is none. */
export const harHeaderValue = (headers: ReadonlyArray<HarNameValue>, lowerName: string): string | undefined => {
  for (const header of headers) if (isNamed(header.name, lowerName)) return header.value
  return undefined
}

/** Every value of the headers named `lowerName`, in order (`Cookie`, `Set-Cookie` may repeat). */
const harHeaderValues = (headers: ReadonlyArray<HarNameValue>, lowerName: string): Array<string> => {
  const values: Array<string> = []
  for (const header of headers) if (isNamed(header.name, lowerName)) values.push(header.value)
  return values
}

/** `text[from, to)` trimmed, then split at its first `=` into `name=value` (or `name` alone); undefined when blank. */
const pairOf = (text: string, from: number, to: number): { name: string; value: string } | undefined => {
  while (from < to && isBlank(text.charCodeAt(from))) from++
  while (to > from && isBlank(text.charCodeAt(to - 1))) to--
  if (from === to) return undefined
  const equals = text.indexOf("=", from)
  return equals < 0 || equals >= to
    ? { name: text.slice(from, to), value: "" }
    : { name: text.slice(from, equals), value: text.slice(equals + 1, to) }
}

/** The cookies a request sent: the `name=value` pairs of its `Cookie` headers, in order. */
export const requestCookies = (headers: ReadonlyArray<HarNameValue>): Array<HarCookie> => {
  const cookies: Array<HarCookie> = []
  for (const value of harHeaderValues(headers, "cookie")) {
    for (let from = 0; from <= value.length;) {
      const semicolon = value.indexOf(";", from)
      const to = semicolon < 0 ? value.length : semicolon
      const cookie = pairOf(value, from, to)
      if (cookie !== undefined) cookies.push(cookie)
      from = to + 1
    }
  }
  return cookies
}

/** Whether `text` is a whole number in decimal, optionally negative (a `Max-Age`). */
const isInteger = (text: string): boolean => {
  const from = text.charCodeAt(0) === 45 ? 1 : 0
  if (text.length === from) return false
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/** One `Set-Cookie` header's cookie with its attributes; `Max-Age` counts from `receivedMillis`. */
const setCookieOf = (header: string, receivedMillis: number): HarCookie => {
  let semicolon = header.indexOf(";")
  const cookie: { -readonly [K in keyof HarCookie]: HarCookie[K] } = pairOf(header, 0, semicolon < 0 ? header.length : semicolon) ??
    { name: "", value: "" }
  let maxAge: number | undefined
  while (semicolon >= 0) {
    const from = semicolon + 1
    semicolon = header.indexOf(";", from)
    const attribute = pairOf(header, from, semicolon < 0 ? header.length : semicolon)
    if (attribute === undefined) continue
    const { name, value } = attribute
    const key = name.toLowerCase()
    if (key === "path") cookie.path = value
    else if (key === "domain") cookie.domain = value
    else if (key === "httponly") cookie.httpOnly = true
    else if (key === "secure") cookie.secure = true
    else if (key === "max-age" && isInteger(value)) maxAge = Number(value)
    else if (key === "expires") {
      const date = Date.parse(value)
      if (!Number.isNaN(date)) cookie.expires = new Date(date).toISOString()
    }
  }
  if (maxAge !== undefined) {
    const date = new Date(receivedMillis + maxAge * 1000)
    if (!Number.isNaN(date.getTime())) cookie.expires = date.toISOString()
  }
  return cookie
}

/** One cookie per `Set-Cookie` header; `Max-Age` counts from `receivedMillis`, when the response arrived. */
export const responseCookies = (headers: ReadonlyArray<HarNameValue>, receivedMillis: number): Array<HarCookie> =>
  harHeaderValues(headers, "set-cookie").map((header) => setCookieOf(header, receivedMillis))

/**
 * Whether `URLSearchParams` would take `text[from, to)` as it is: nothing percent-encoded,
 * no `+` for a space, no lone surrogate to replace.
 */
const isPlainQuery = (text: string, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c === 37 || c === 43 || (c >= 0xd800 && c <= 0xdfff)) return false
  }
  return true
}

/** The query of a URL, decoded as a browser would (`URLSearchParams`); never throws on what was captured. */
export const queryOf = (url: string): Array<HarNameValue> => {
  const question = url.indexOf("?")
  if (question < 0) return []
  const hash = url.indexOf("#", question)
  const end = hash < 0 ? url.length : hash
  if (!isPlainQuery(url, question + 1, end)) {
    return Array.from(new URLSearchParams(url.slice(question + 1, end)), ([name, value]) => ({ name, value }))
  }
  // The same split URLSearchParams makes (a second `?` first dropped), without its decoding,
  // which would change nothing here.
  const pairs: Array<HarNameValue> = []
  for (let from = url.charCodeAt(question + 1) === 63 ? question + 2 : question + 1; from < end;) {
    const ampersand = url.indexOf("&", from)
    const to = ampersand < 0 || ampersand > end ? end : ampersand
    if (to > from) {
      const equals = url.indexOf("=", from)
      pairs.push(
        equals < 0 || equals >= to
          ? { name: url.slice(from, to), value: "" }
          : { name: url.slice(from, equals), value: url.slice(equals + 1, to) }
      )
    }
    from = to + 1
  }
  return pairs
}

/**
 * Bytes of a head: the start line, the header lines, their CRLFs and the blank line.
 * Lines are captured as latin1, one byte a character.
 */
export const headSize = (startLineLength: number, lines: ReadonlyArray<string>): number => {
  let size = startLineLength + 4
  for (const line of lines) size += line.length + 2
  return size
}
