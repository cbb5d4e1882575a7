/**
 * The relay's hot path: move bytes between the browser's socket and the
 * upstream socket, byte for byte, with backpressure and half-close, and hand
 * each chunk to an observer on the side. Effect owns its lifecycle: the
 * returned Effect ends when both sockets have closed, and interrupting it
 * destroys both.
 */
import { Effect } from "effect"
import type * as net from "node:net"
import type { Direction } from "../domain/Event.js"

/** Hold the chunk's bytes from `at` on (and everything after them) until `release` ends. */
export interface Hold {
  readonly at: number
  readonly release: Effect.Effect<void>
}

export interface RelayObserver {
  /** Now, in the observer's time: read when a chunk arrives. */
  readonly now: () => number
  /**
   * The one question per chunk: a chunk, never changed, that arrived at `arrivedAt`. Answers
   * undefined when the chunk went on through `write` (called first when nothing can hold the
   * chunk, so the other side works on it while it is decoded), or the holds to wait at, in
   * byte order (an injected HTTP request delay before each request in the chunk, a bandwidth
   * limit's wait); then nothing of it is written yet.
   */
  readonly chunk: (
    direction: Direction,
    chunk: Buffer,
    arrivedAt: number,
    write: (chunk: Buffer) => void
  ) => ReadonlyArray<Hold> | undefined
  /** The direction's sender half-closed (FIN); MITM passes it on. */
  readonly ended: (direction: Direction) => void
}

/** Runs a hold's Effect (a runtime's `runCallback`); the returned function cancels it. */
export type RunHold = (effect: Effect.Effect<void>, options: { readonly onExit: () => void }) => () => void

export interface RelayOutcome {
  /** Who ended or broke its side first; null when MITM tore the connection down. */
  readonly closedBy: "client" | "server" | null
  /** The first socket error, e.g. `server: read ECONNRESET`; null for a clean close. */
  readonly error: string | null
}

/**
 * Relays until both directions are closed. `pending` are client bytes read
 * before the upstream was connected (optimistic data); they go first.
 */
export const relay = (
  client: net.Socket,
  server: net.Socket,
  pending: Uint8Array,
  observer: RelayObserver,
  runHold: RunHold
): Effect.Effect<RelayOutcome> =>
  Effect.async<RelayOutcome>((resume) => {
    const holds = new Set<() => void>()
    let closedBy: RelayOutcome["closedBy"] = null
    let error: string | null = null
    let open = 2

    const pipe = (from: net.Socket, to: net.Socket, direction: Direction, side: "client" | "server") => {
      let holding = false
      // The sender's FIN can arrive while its last chunk is held: it is passed on after that chunk.
      let endAfterHold = false
      /** Writes the chunk from `written` on, waiting at each hold from `index` on. */
      const release = (chunk: Buffer, held: ReadonlyArray<Hold>, index: number, written: number): void => {
        if (to.destroyed) return
        if (index === held.length) {
          holding = false
          const flowing = to.write(written === 0 ? chunk : chunk.subarray(written))
          if (endAfterHold) to.end()
          else if (flowing) from.resume()
          return
        }
        const { at, release: wait } = held[index]
        if (at > written) to.write(chunk.subarray(written, at))
        const cancel = runHold(wait, {
          onExit: () => {
            holds.delete(cancel)
            release(chunk, held, index + 1, Math.max(written, at))
          }
        })
        holds.add(cancel)
      }
      /** Writes a chunk that nothing holds; a full buffer on the other side pauses the sender. */
      const write = (chunk: Buffer) => {
        if (!to.write(chunk)) from.pause()
      }
      from.on("data", (chunk: Buffer) => {
        const held = observer.chunk(direction, chunk, observer.now(), write)
        if (held === undefined) return
        // Nothing after a held byte may overtake it: the sender stays paused meanwhile.
        from.pause()
        holding = true
        release(chunk, held, 0, 0)
      })
      to.on("drain", () => {
        if (!holding) from.resume()
      })
      from.on("end", () => {
        closedBy ??= side
        observer.ended(direction)
        if (holding) endAfterHold = true
        else to.end()
      })
      from.on("error", (cause: Error) => {
        closedBy ??= side
        error ??= `${side}: ${cause.message}`
        client.destroy()
        server.destroy()
      })
      const onClose = () => {
        // A peer that closes without FIN (reset) must not leave the other side open.
        if (!from.readableEnded) to.destroy()
        if (--open === 0) resume(Effect.succeed({ closedBy, error }))
      }
      if (from.closed) onClose()
      else from.on("close", onClose)
    }

    pipe(client, server, "up", "client")
    pipe(server, client, "down", "server")
    server.resume()
    if (pending.length > 0) client.unshift(Buffer.from(pending.buffer, pending.byteOffset, pending.byteLength))
    client.resume()
    return Effect.sync(() => {
      holds.forEach((cancel) => cancel())
      client.destroy()
      server.destroy()
    })
  })
