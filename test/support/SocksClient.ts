/**
 * A raw SOCKS client for tests: writes exactly the bytes a test gives and
 * reads the replies, so tests see reply codes and byte-level behaviour.
 */
import { Effect, type Scope } from "effect"
import * as net from "node:net"

export interface RawConnection {
  readonly socket: net.Socket
  /** Reads until `count` bytes have arrived (or the peer closes), then returns exactly those. */
  readonly read: (count: number) => Effect.Effect<Buffer>
  /** Reads everything until the peer closes. */
  readonly readToEnd: Effect.Effect<Buffer>
  readonly write: (bytes: Uint8Array | string) => Effect.Effect<void>
}

export const connectRaw = (port: number, host = "127.0.0.1"): Effect.Effect<RawConnection, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* Effect.acquireRelease(
      Effect.async<net.Socket, Error>((resume) => {
        const socket = net.connect({ host, port })
        socket.once("connect", () => resume(Effect.succeed(socket)))
        socket.once("error", (error) => resume(Effect.fail(error)))
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )
    let buffered = Buffer.alloc(0)
    let ended = false
    let waiter: (() => void) | undefined
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      waiter?.()
    })
    const onEnd = () => {
      ended = true
      waiter?.()
    }
    socket.on("end", onEnd)
    socket.on("close", onEnd)
    socket.on("error", () => {})
    const until = (done: () => boolean) =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (done() || ended) {
            waiter = undefined
            resume(Effect.void)
          }
        }
        waiter = check
        check()
      })
    return {
      socket,
      read: (count) =>
        Effect.map(until(() => buffered.length >= count), () => {
          const out = buffered.subarray(0, count)
          buffered = buffered.subarray(out.length)
          return Buffer.from(out)
        }),
      readToEnd: Effect.map(until(() => false), () => {
        const out = buffered
        buffered = Buffer.alloc(0)
        return out
      }),
      write: (bytes) => Effect.async<void>((resume) => void socket.write(bytes, () => resume(Effect.void)))
    }
  })

export const socks5Greeting = (methods: ReadonlyArray<number> = [0x00]) => Buffer.from([0x05, methods.length, ...methods])

export const socks5Connect = (host: string, port: number, command = 0x01) => {
  const name = Buffer.from(host, "latin1")
  return Buffer.concat([Buffer.from([0x05, command, 0x00, 0x03, name.length]), name, Buffer.from([port >> 8, port & 0xff])])
}

export const socks5ConnectIPv4 = (ip: string, port: number) =>
  Buffer.from([0x05, 0x01, 0x00, 0x01, ...ip.split(".").map(Number), port >> 8, port & 0xff])

export const userPass = (username: Uint8Array, password: Uint8Array) =>
  Buffer.concat([Buffer.from([0x01, username.length]), username, Buffer.from([password.length]), password])

/** A SOCKS5 no-auth CONNECT by name; returns the connection after a successful 10-byte reply. */
export const socks5Open = (proxyPort: number, host: string, port: number) =>
  Effect.gen(function*() {
    const connection = yield* connectRaw(proxyPort)
    yield* connection.write(Buffer.concat([socks5Greeting(), socks5Connect(host, port)]))
    const method = yield* connection.read(2)
    const reply = yield* connection.read(10)
    return { connection, method, reply }
  })
