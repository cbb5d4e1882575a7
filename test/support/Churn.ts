/**
 * Many short connections through MITM, as a browser makes them, for churn and
 * memory tests: the origin must answer each GET with a body containing "churn".
 */
import { Effect } from "effect"
import * as net from "node:net"
import * as v8 from "node:v8"
import * as vm from "node:vm"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

/** The heap in use after full garbage collections. */
export const heapAfterGc = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/**
 * One connection as a browser makes it: SOCKS5 greeting and CONNECT to `localhost` (a
 * name, so it goes through the `socks` package), one GET, read to the close.
 */
export const oneConnection = (proxyPort: number, originPort: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxyPort })
    const name = Buffer.from("localhost", "latin1")
    let got = Buffer.alloc(0)
    let stage: "method" | "reply" | "body" = "method"
    socket.once("connect", () => socket.write(Buffer.from([0x05, 0x01, 0x00])))
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      if (stage === "method" && got.length >= 2) {
        got = got.subarray(2)
        stage = "reply"
        socket.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, name.length]), name, Buffer.from([originPort >> 8, originPort & 0xff])]))
      }
      if (stage === "reply" && got.length >= 10) {
        if (got[1] !== 0x00) return reject(new Error(`SOCKS reply ${got[1]}`))
        got = got.subarray(10)
        stage = "body"
        socket.write("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      }
    })
    socket.on("end", () => (stage === "body" && got.includes("churn") ? resolve() : reject(new Error(`ended in ${stage}`))))
    socket.on("error", reject)
  })

/** `count` connections, `workers` at a time. */
export const churn = (count: number, proxyPort: number, originPort: number, workers = 50) =>
  Effect.promise(async () => {
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        await oneConnection(proxyPort, originPort)
      }
    }
    await Promise.all(Array.from({ length: workers }, worker))
  })
