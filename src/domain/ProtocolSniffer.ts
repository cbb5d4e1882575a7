/**
 * Which protocol a connection speaks, told from the client's first bytes, so
 * the right decoder can watch it.
 */

export type SniffedProtocol = "http" | "tls" | "unknown"

/** HTTP methods are short: a longer run of method characters is not HTTP/1.x. */
const MAX_METHOD = 20
/** After this many bytes without a verdict the answer is "unknown". */
const MAX_SNIFF = 24

const isMethodChar = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || b === 0x2d

/** Decides from the client's first bytes; undefined while too few bytes have arrived to tell. */
export const sniffProtocol = (firstBytes: Uint8Array): SniffedProtocol | undefined => {
  const n = firstBytes.length
  if (n === 0) return undefined
  if (firstBytes[0] === 0x16) {
    // A TLS handshake record: content type 22, then version 3.0 to 3.4.
    if (n < 2) return undefined
    if (firstBytes[1] !== 0x03) return "unknown"
    if (n < 3) return undefined
    return firstBytes[2] <= 0x04 ? "tls" : "unknown"
  }
  for (let i = 0; i < n && i < MAX_SNIFF; i++) {
    const b = firstBytes[i]
    if (b === 0x20) return i > 0 ? "http" : "unknown"
    if (!isMethodChar(b) || i >= MAX_METHOD) return "unknown"
  }
  return n >= MAX_SNIFF ? "unknown" : undefined
}
