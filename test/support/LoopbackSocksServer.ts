/**
 * A SOCKS5 server for browser tests that reaches only 127.0.0.0/8: Chromium
 * calls Google's hosts on its own, and no test may send traffic off the
 * machine. Anything else is refused with reply 0x02 (not allowed by ruleset).
 */
import { Effect } from "effect"
import * as net from "node:net"
import { tcpServer } from "./Loopback.js"

const loopbackTarget = (host: string): string | undefined =>
  /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ? host : host === "localhost" ? "127.0.0.1" : undefined

export const loopbackSocksServer = Effect.gen(function*() {
  const refused: Array<string> = []
  const address = yield* tcpServer((socket) => {
    let buffer = Buffer.alloc(0)
    let greeted = false
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      if (!greeted) {
        if (buffer.length < 2 || buffer.length < 2 + buffer[1]) return
        buffer = buffer.subarray(2 + buffer[1])
        greeted = true
        socket.write(Buffer.from([0x05, 0x00]))
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
      if (target === undefined) {
        refused.push(`${host}:${port}`)
        socket.end(Buffer.from([0x05, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0]))
        return
      }
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
  return { ...address, refused }
})
