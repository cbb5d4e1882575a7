/** The SOCKS5 greeting + CONNECT request as the benchmarks' baseline relays read it (no auth, IPv4, domain or IPv6). */

/** Reads the handshake: returns [host, port, bytes consumed] once the CONNECT request is complete. */
export const parseRequest = (buf: Buffer): { host: string; port: number; used: number } | "more" | "bad" => {
  // greeting: VER NMETHODS METHODS...
  if (buf.length < 2) return "more"
  if (buf[0] !== 5) return "bad"
  const greeting = 2 + buf[1]
  // request: VER CMD RSV ATYP DST.ADDR DST.PORT
  if (buf.length < greeting + 5) return "more"
  const r = greeting
  if (buf[r] !== 5 || buf[r + 1] !== 1) return "bad"
  const atyp = buf[r + 3]
  let addrLen: number
  let addrAt = r + 4
  if (atyp === 1) addrLen = 4
  else if (atyp === 4) addrLen = 16
  else if (atyp === 3) {
    addrLen = buf[r + 4]
    addrAt = r + 5
  } else return "bad"
  const end = addrAt + addrLen + 2
  if (buf.length < end) return "more"
  const addr = buf.subarray(addrAt, addrAt + addrLen)
  const host =
    atyp === 1
      ? Array.from(addr).join(".")
      : atyp === 4
        ? Array.from({ length: 8 }, (_, i) => addr.readUInt16BE(i * 2).toString(16)).join(":")
        : addr.toString("latin1")
  return { host, port: buf.readUInt16BE(addrAt + addrLen), used: end }
}
