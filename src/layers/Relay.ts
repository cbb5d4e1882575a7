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

export interface RelayObserver {
  /** A chunk about to be written to the other side (never changed, never held). */
  readonly chunk: (direction: Direction, chunk: Buffer) => void
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
  Effect.async<RelayOutcome>((resume) => {
    let closedBy: RelayOutcome["closedBy"] = null
    let error: string | null = null
    let open = 2

    const pipe = (from: net.Socket, to: net.Socket, direction: Direction, side: "client" | "server") => {
      from.on("data", (chunk: Buffer) => {
        observer.chunk(direction, chunk)
        if (!to.write(chunk)) from.pause()
      })
      to.on("drain", () => from.resume())
      from.on("end", () => {
        closedBy ??= side
        observer.ended(direction)
        to.end()
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
    if (pending.length > 0) {
      const head = Buffer.from(pending.buffer, pending.byteOffset, pending.byteLength)
      observer.chunk("up", head)
      if (!server.write(head)) client.pause()
    }
    client.resume()
    server.resume()
    return Effect.sync(() => {
      client.destroy()
      server.destroy()
    })
  })
