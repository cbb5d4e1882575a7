/**
 * Plain Node relay: the baseline for "Node's limit for any proxy". A SOCKS5 server that does
 * only the no-auth handshake and CONNECT (IPv4, domain name or IPv6), connects to the target,
 * then hands the bytes to `client.pipe(upstream).pipe(client)`. Nothing is decoded or recorded.
 *
 * With `--upstream PORT` it goes through a SOCKS5 server on 127.0.0.1:PORT instead (no-auth
 * greeting, then the client's own request bytes, one round trip each, as an RFC 1928 client
 * must): the baseline for a SOCKS upstream such as Tor.
 *
 * Started by the benchmarks as their own process:
 * `node --import tsx bench/plain-relay.ts [PORT] [--upstream PORT]`; prints
 * `plain-relay: SOCKS proxy listening on 127.0.0.1:PORT` and exits when its stdin closes.
 */
import * as net from "node:net"
import { parseRequest, runPeer } from "./relay-peer.js"

const argv = process.argv.slice(2)
const upstreamAt = argv.indexOf("--upstream")
const socksUpstream = upstreamAt < 0 ? null : Number(argv.splice(upstreamAt, 2)[1])

/** Through the SOCKS upstream: greeting, then `request` once the method is chosen; `ready` after its reply. */
const connectThrough = (port: number, request: Buffer, ready: (upstream: net.Socket) => void, failed: () => void): net.Socket => {
  const upstream = net.connect({ host: "127.0.0.1", port })
  upstream.setNoDelay(true)
  let got: Buffer = Buffer.alloc(0)
  let stage: "method" | "reply" = "method"
  const onData = (chunk: Buffer): void => {
    got = got.length === 0 ? chunk : Buffer.concat([got, chunk])
    if (stage === "method") {
      if (got.length < 2) return
      if (got[1] !== 0) return failed()
      got = got.subarray(2)
      stage = "reply"
      upstream.write(request)
    }
    if (got.length < 5) return
    const size = got[3] === 1 ? 10 : got[3] === 4 ? 22 : 7 + got[4]
    if (got.length < size) return
    if (got[1] !== 0) return failed()
    upstream.off("data", onData)
    upstream.pause()
    if (got.length > size) upstream.unshift(got.subarray(size))
    ready(upstream)
  }
  upstream.on("data", onData)
  upstream.once("connect", () => upstream.write(Buffer.from([5, 1, 0])))
  return upstream
}

const server = net.createServer((client) => {
  client.setNoDelay(true)
  let buf = Buffer.alloc(0)
  let greeted = false
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk])
    if (!greeted && buf.length >= 2 && buf.length >= 2 + buf[1]) {
      greeted = true
      client.write(Buffer.from([5, 0])) // no authentication
    }
    const req = parseRequest(buf)
    if (req === "more") return
    client.off("data", onData)
    if (req === "bad") {
      client.destroy()
      return
    }
    client.pause()
    const rest = buf.subarray(req.used)
    const refused = (): void => {
      client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])) // connection refused
    }
    const relay = (upstream: net.Socket): void => {
      upstream.removeAllListeners("error")
      upstream.on("error", () => client.destroy())
      client.on("error", () => upstream.destroy())
      client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
      if (rest.length > 0) upstream.write(rest)
      client.pipe(upstream).pipe(client)
    }
    if (socksUpstream !== null) {
      const upstream = connectThrough(socksUpstream, buf.subarray(2 + buf[1], req.used), relay, () => {
        upstream.destroy()
        refused()
      })
      upstream.once("error", refused)
      return
    }
    const upstream = net.connect({ host: req.host, port: req.port })
    upstream.setNoDelay(true)
    upstream.once("error", refused)
    upstream.once("connect", () => relay(upstream))
  }
  client.on("data", onData)
  client.on("error", () => client.destroy())
})

runPeer("plain-relay", server, Number(argv[0] ?? 0))
