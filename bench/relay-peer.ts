/**
 * What the benchmarks' baseline relays (bench/plain-relay.ts, bench/stream-relay.ts) share: the
 * SOCKS5 greeting + CONNECT request as they read it (no auth, IPv4, domain or IPv6), and the life
 * of a peer process (listen on loopback, say where, exit when the benchmark closes its stdin).
 */
import type * as net from "node:net"

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

/** Listens on 127.0.0.1:`port`, prints `NAME: SOCKS proxy listening on 127.0.0.1:PORT`, exits when stdin closes. */
export const runPeer = (name: string, server: net.Server, port: number): void => {
  server.listen(port, "127.0.0.1", () => {
    const address = server.address()
    if (address === null || typeof address === "string") throw new Error(`${name}: no address`)
    process.stdout.write(`${name}: SOCKS proxy listening on 127.0.0.1:${address.port}\n`)
  })
  process.stdin.on("end", () => process.exit(0))
  process.stdin.on("error", () => process.exit(0))
  process.stdin.resume()
  process.on("SIGTERM", () => process.exit(0))
  process.on("SIGINT", () => process.exit(0))
}
