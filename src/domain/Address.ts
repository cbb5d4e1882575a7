/**
 * Addresses as MITM reads and writes them: IPv4 and IPv6 text and bytes,
 * `host:port` with IPv6 in brackets, loopback, and how a byte reads in a
 * message (`0x5a`). One form of each, shared by the SOCKS server, the SOCKS
 * client, the decoders and the flags.
 */

/** A byte as messages show it: `0x5a`. */
export const hexByte = (byte: number): string => `0x${byte.toString(16).padStart(2, "0")}`

/** `host:port`, with an IPv6 literal in brackets. */
export const formatHostPort = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/** Whether a host (as text) is on this machine's loopback. */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host.startsWith("127.") || host.startsWith("::ffff:127.")

export const formatIPv4 = (bytes: Uint8Array): string => `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`

/** RFC 5952 text: lower case, no leading zeros, the first longest run (≥ 2) of zero groups as `::`. */
export const formatIPv6 = (bytes: Uint8Array): string => {
  const groups: Array<number> = []
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1])
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const text = (part: ReadonlyArray<number>) => part.map((group) => group.toString(16)).join(":")
  return bestStart < 0
    ? text(groups)
    : `${text(groups.slice(0, bestStart))}::${text(groups.slice(bestStart + bestLength))}`
}

/** Dotted IPv4 text to 4 bytes; undefined when it is not one. */
export const parseIPv4 = (text: string): Array<number> | undefined => {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (match === null) return undefined
  const bytes = match.slice(1).map(Number)
  return bytes.every((byte) => byte <= 255) ? bytes : undefined
}

const parseIPv6Groups = (text: string): Array<number> | undefined => {
  if (text === "") return []
  const parts = text.split(":")
  const groups: Array<number> = []
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
      groups.push(parseInt(part, 16))
      continue
    }
    const ipv4 = i === parts.length - 1 ? parseIPv4(part) : undefined
    if (ipv4 === undefined) return undefined
    groups.push((ipv4[0] << 8) | ipv4[1], (ipv4[2] << 8) | ipv4[3])
  }
  return groups
}

/** IPv6 text (with `::` and a trailing dotted IPv4 allowed) to 16 bytes; undefined when it is not one. */
export const parseIPv6 = (text: string): Array<number> | undefined => {
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const head = parseIPv6Groups(halves[0])
  const tail = halves.length === 2 ? parseIPv6Groups(halves[1]) : []
  if (head === undefined || tail === undefined) return undefined
  const missing = 8 - head.length - tail.length
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined
  const groups = [...head, ...Array<number>(missing).fill(0), ...tail]
  return groups.flatMap((group) => [group >> 8, group & 0xff])
}
