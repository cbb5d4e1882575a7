/**
 * Stream relay: the plain relay's job (SOCKS5 no-auth + CONNECT, then bytes both ways, nothing
 * decoded or recorded) done the way issue 13 orders MITM's byte path, on Effect 3 Streams:
 *
 * - each socket's bytes are a `Stream<Buffer, SocketError>` read with backpressure: the socket
 *   is paused after each chunk and resumed only when the stream is pulled again;
 * - the SOCKS handshake is a `Sink` folding the first bytes of the client's stream through the
 *   request parser, followed (`Sink.flatMap`) by the writer to the upstream socket: the client's
 *   stream is run once, handshake and relay, and the bytes after the request go on first;
 * - each direction is its stream run into a writer `Sink` that waits for `'drain'` when
 *   `write` says the buffer is full and half-closes the other socket when the stream ends;
 * - one fiber per connection: it runs the client's direction and forks the server's.
 *
 * Two Stream runs per connection is the fewest two concurrent directions allow. A first version
 * ran the handshake as a Stream of its own (three runs): about 400 µs more CPU per connection.
 *
 * It is the measure of what Effect 3's Streams cost any relay on this machine, beside the
 * plain relay (`bench/plain-relay.ts`, the same handshake on `socket.pipe`). MITM itself relays
 * on socket callbacks; see README, "Why the relay is not on Effect Streams".
 *
 * Started by the benchmarks as their own process:
 * `node --import tsx bench/stream-relay.ts [PORT]`; prints
 * `stream-relay: SOCKS proxy listening on 127.0.0.1:PORT` and exits when its stdin closes.
 */
import { Chunk, Data, Effect, type Fiber, Option, Scope, Sink, Stream } from "effect"
import * as net from "node:net"
import { parseRequest, runPeer } from "./relay-peer.js"

class SocketError extends Data.TaggedError("SocketError")<{ readonly reason: "Read" | "Write"; readonly cause: Error }> {}

/** A socket's bytes as a pull-based Stream: the socket reads only while the stream is pulled. */
const fromSocket = (socket: net.Socket) => {
  const queued: Array<Buffer> = []
  let ended = false
  let failure: SocketError | undefined
  let waiting: ((pull: Effect.Effect<Chunk.Chunk<Buffer>, Option.Option<SocketError>>) => void) | undefined
  const next = (): Effect.Effect<Chunk.Chunk<Buffer>, Option.Option<SocketError>> =>
    queued.length > 0
      ? Effect.succeed(Chunk.of(queued.shift()!))
      : failure !== undefined
        ? Effect.fail(Option.some(failure))
        : Effect.fail(Option.none())
  const wake = () => {
    const resume = waiting
    waiting = undefined
    resume?.(next())
  }
  socket.on("data", (chunk: Buffer) => {
    socket.pause()
    queued.push(chunk)
    wake()
  })
  socket.on("end", () => {
    ended = true
    wake()
  })
  socket.on("error", (cause) => {
    failure ??= new SocketError({ reason: "Read", cause })
    ended = true
    wake()
  })
  const pull = Effect.async<Chunk.Chunk<Buffer>, Option.Option<SocketError>>((resume) => {
    if (queued.length > 0 || ended) return resume(next())
    waiting = resume
    socket.resume()
  })
  return { stream: Stream.repeatEffectChunkOption(pull) }
}

/** Writes each chunk to the socket, waits for `'drain'` when its buffer is full, half-closes it at the end. */
const toSocket = (socket: net.Socket): Sink.Sink<void, Buffer, never, SocketError> =>
  Sink.forEachChunk((chunk: Chunk.Chunk<Buffer>) => {
    let flowing = true
    for (const bytes of chunk) flowing = socket.write(bytes)
    return flowing
      ? Effect.void
      : Effect.async<void, SocketError>((resume) => {
        const onDrain = () => {
          socket.off("close", onClose)
          resume(Effect.void)
        }
        const onClose = () => {
          socket.off("drain", onDrain)
          resume(Effect.fail(new SocketError({ reason: "Write", cause: new Error("closed while writing") })))
        }
        socket.once("drain", onDrain)
        socket.once("close", onClose)
      })
  }).pipe(Sink.zipRight(Sink.fromEffect(Effect.sync(() => void socket.end()))))

interface Handshake {
  readonly buffer: Buffer
  readonly greeted: boolean
  readonly request: ReturnType<typeof parseRequest>
}

/** Folds the client's first chunks into the SOCKS5 greeting (answered) and CONNECT request. */
const handshake = (client: net.Socket): Sink.Sink<Handshake, Buffer, Buffer> =>
  Sink.fold<Handshake, Buffer>({ buffer: Buffer.alloc(0), greeted: false, request: "more" }, (s) => s.request === "more", (s, chunk) => {
    const buffer = s.buffer.length === 0 ? chunk : Buffer.concat([s.buffer, chunk])
    let greeted = s.greeted
    if (!greeted && buffer.length >= 2 && buffer.length >= 2 + buffer[1]) {
      greeted = true
      client.write(Buffer.from([5, 0])) // no authentication
    }
    return { buffer, greeted, request: parseRequest(buffer) }
  })

const connect = (host: string, port: number) =>
  Effect.async<net.Socket, SocketError>((resume) => {
    const upstream = net.connect({ host, port, allowHalfOpen: true })
    upstream.setNoDelay(true)
    const onError = (cause: Error) => resume(Effect.fail(new SocketError({ reason: "Read", cause })))
    upstream.once("error", onError)
    upstream.once("connect", () => {
      upstream.off("error", onError)
      upstream.pause()
      resume(Effect.succeed(upstream))
    })
    return Effect.sync(() => upstream.destroy())
  })

/**
 * The client's direction, handshake included, as one Sink: the handshake's fold, then (after
 * connecting upstream, replying and forking the server's direction into `scope`) the writer to
 * the upstream socket, which gets the bytes after the request first. One Stream run, not two.
 */
const clientDirection = (client: net.Socket, scope: Scope.Scope, down: { fiber?: Fiber.RuntimeFiber<void, SocketError> }) =>
  handshake(client).pipe(Sink.flatMap(({ buffer, request }) =>
    typeof request === "string"
      ? Sink.fail(new SocketError({ reason: "Read", cause: new Error(`not a SOCKS5 CONNECT`) }))
      : Sink.unwrap(Effect.gen(function*() {
        const upstream = yield* Scope.extend(Effect.acquireRelease(connect(request.host, request.port), (s) => Effect.sync(() => s.destroy())), scope)
        client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
        if (buffer.length > request.used) upstream.write(buffer.subarray(request.used))
        // In the connection's scope: the stream run's own fiber ends with the client's direction.
        down.fiber = yield* Effect.forkIn(Stream.run(fromSocket(upstream).stream, toSocket(client)), scope)
        return toSocket(upstream)
      }))
  ))

const serve = (client: net.Socket) =>
  Effect.gen(function*() {
    const down: { fiber?: Fiber.RuntimeFiber<void, SocketError> } = {}
    yield* Stream.run(fromSocket(client).stream, clientDirection(client, yield* Effect.scope, down))
    if (down.fiber !== undefined) yield* down.fiber.await
  }).pipe(
    Effect.scoped,
    Effect.catchAllCause(() => Effect.sync(() => void client.destroy()))
  )

const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
  client.setNoDelay(true)
  Effect.runFork(serve(client))
})

runPeer("stream-relay", server, Number(process.argv[2] ?? 0))
