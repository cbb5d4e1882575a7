/**
 * The relay's hot path: move bytes between the browser's socket and the
 * upstream socket, byte for byte, with backpressure and half-close, and hand
 * each chunk to an observer on the side. Effect owns its lifecycle: the
 * returned Effect ends when both sockets have closed, and interrupting it
 * destroys both.
 */
import { Effect, Runtime } from "effect"
import type * as net from "node:net"
import type { Direction } from "../domain/Event.js"

export interface RelayObserver {
  /**
   * A chunk about to be written to the other side, never changed. It may return
   * an Effect to hold the chunk (and everything after it in that direction) until
   * the Effect ends: the injected HTTP request delay.
   */
  readonly chunk: (direction: Direction, chunk: Buffer) => Effect.Effect<void> | undefined
  /** The direction's sender half-closed (FIN); MITM passes it on. */
  readonly ended: (direction: Direction) => void
}

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
  observer: RelayObserver
): Effect.Effect<RelayOutcome> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) =>
  Effect.async<RelayOutcome>((resume) => {
    const runHold = Runtime.runCallback(runtime)
    const holds = new Set<() => void>()
    let closedBy: RelayOutcome["closedBy"] = null
    let error: string | null = null
    let open = 2

    const pipe = (from: net.Socket, to: net.Socket, direction: Direction, side: "client" | "server") => {
      let holding = false
      // The sender's FIN can arrive while its last chunk is held: it is passed on after that chunk.
      let endAfterHold = false
      from.on("data", (chunk: Buffer) => {
        const hold = observer.chunk(direction, chunk)
        if (hold === undefined) {
          if (!to.write(chunk)) from.pause()
          return
        }
        // Nothing after this chunk may overtake it: the sender stays paused while it is held.
        from.pause()
        holding = true
        const cancel = runHold(hold, {
          onExit: () => {
            holds.delete(cancel)
            holding = false
            if (to.destroyed) return
            if (to.write(chunk)) from.resume()
            if (endAfterHold) to.end()
          }
        })
        holds.add(cancel)
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
  }))
