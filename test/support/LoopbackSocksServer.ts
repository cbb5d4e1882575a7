/**
 * A SOCKS5 server for browser tests that reaches only 127.0.0.0/8: Chromium
 * calls Google's hosts on its own, and no test may send traffic off the
 * machine. Anything else is refused with reply 0x02 (not allowed by ruleset).
 * It takes username/password auth when a client offers it (any credentials,
 * as Tor does) and keeps the username of each request, like Tor's
 * IsolateSOCKSAuth sees it.
 */
import { Effect } from "effect"
import * as net from "node:net"
import { tcpServer } from "./Loopback.js"

const loopbackTarget = (host: string): string | undefined =>
  /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ? host : host === "localhost" ? "127.0.0.1" : undefined

export interface LoopbackSocksOptions {
  /** Which loopback targets it connects to (default all); the others are refused like non-loopback ones. */
  readonly allow?: (host: string, port: number) => boolean
}

/** A request the server connected: `host:port` and the SOCKS5 username it came with (null without auth). */
export interface AcceptedRequest {
  readonly target: string
  readonly username: string | null
}

export const loopbackSocksServerWith = (options: LoopbackSocksOptions) =>
  Effect.gen(function*() {
    const refused: Array<string> = []
    const accepted: Array<AcceptedRequest> = []
    const address = yield* tcpServer((socket) => {
      let buffer = Buffer.alloc(0)
      let stage: "greeting" | "auth" | "request" = "greeting"
      let username: string | null = null
      const onData = (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk])
        if (stage === "greeting") {
          if (buffer.length < 2 || buffer.length < 2 + buffer[1]) return
          const methods = Array.from(buffer.subarray(2, 2 + buffer[1]))
          buffer = buffer.subarray(2 + buffer[1])
          stage = methods.includes(0x02) ? "auth" : "request"
          socket.write(Buffer.from([0x05, stage === "auth" ? 0x02 : 0x00]))
        }
        if (stage === "auth") {
          if (buffer.length < 2 || buffer.length < 3 + buffer[1] || buffer.length < 3 + buffer[1] + buffer[2 + buffer[1]]) return
          const userLength = buffer[1]
          username = buffer.subarray(2, 2 + userLength).toString("utf8")
          buffer = buffer.subarray(3 + userLength + buffer[2 + userLength])
          stage = "request"
          socket.write(Buffer.from([0x01, 0x00]))
        }
        if (buffer.length < 5) return
        const type = buffer[3]
        const length = type === 0x01 ? 10 : type === 0x03 ? 7 + buffer[4] : 22
        if (buffer.length < length) return
        socket.off("data", onData)
        const host = type === 0x01
          ? Array.from(buffer.subarray(4, 8)).join(".")
          : type === 0x03
          ? buffer.subarray(5, 5 + buffer[4]).toString("latin1")
          : "ipv6"
        const port = buffer.readUInt16BE(length - 2)
        const rest = buffer.subarray(length)
        const target = buffer[1] === 0x01 ? loopbackTarget(host) : undefined
        if (target === undefined || (options.allow !== undefined && !options.allow(host, port))) {
          refused.push(`${host}:${port}`)
          socket.end(Buffer.from([0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0]))
          return
        }
        accepted.push({ target: `${host}:${port}`, username })
        const upstream = net.connect({ host: target, port })
        upstream.on("error", () => socket.destroy())
        upstream.once("connect", () => {
          socket.write(Buffer.from([0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0, 0]))
          if (rest.length > 0) upstream.write(rest)
          socket.pipe(upstream).pipe(socket)
        })
        socket.on("close", () => upstream.destroy())
      }
      socket.on("data", onData)
    })
    return { ...address, refused, accepted }
  })

export const loopbackSocksServer = loopbackSocksServerWith({})
