/**
 * The Store in memory. Eviction follows closing order, so the connection
 * closed longest ago goes first; open connections are never evicted.
 */
import { Effect, Layer } from "effect"
import type { Connection, ConnectionProtocol, ConnectionState } from "../domain/Connection.js"
import type { ConnectionEvent } from "../domain/Event.js"
import { SettingsStore } from "../services/Settings.js"
import { type ConnectionRecorder, Store, type StoreService } from "../services/Store.js"

/** Events kept per connection; later ones are counted in `eventsCut`. ConnectionClose is always kept. */
export const maxEventsPerConnection = 20_000

type MutableConnection = { -readonly [K in keyof Connection]: Connection[K] }

export const make: Effect.Effect<StoreService, never, SettingsStore> = Effect.gen(function*() {
  const settings = yield* SettingsStore
  let connections = new Map<number, MutableConnection>()
  let closedOrder: Array<number> = []
  let closedHead = 0
  let nextId = 1
  let evicted = 0
  let eventsCut = 0
  let maxConnections = Infinity
  let version = 0

  const evictedListeners = new Set<(id: number) => void>()
  const closedListeners = new Set<(connection: Connection) => void>()
  const evict = () => {
    while (connections.size > maxConnections && closedHead < closedOrder.length) {
      const id = closedOrder[closedHead++]
      if (!connections.delete(id)) continue
      evicted++
      for (const listener of evictedListeners) listener(id)
    }
    if (closedHead > 1024 && closedHead * 2 > closedOrder.length) {
      closedOrder = closedOrder.slice(closedHead)
      closedHead = 0
    }
  }

  const open: StoreService["open"] = (init) =>
    Effect.map(settings.get, (current) => {
      maxConnections = current.maxConnections
      const id = nextId++
      version++
      const connection: MutableConnection = {
        id,
        client: init.client,
        host: init.host,
        port: init.port,
        socksVersion: init.socksVersion,
        command: init.command,
        isolation: init.isolation,
        upstream: init.upstream,
        state: "open",
        protocol: "pending",
        openedAt: init.openedAt,
        closedAt: null,
        closedBy: null,
        bytesUp: 0,
        bytesDown: 0,
        events: [],
        eventsCut: 0,
        error: null
      }
      const events = connection.events as Array<ConnectionEvent>
      const owner = connections
      owner.set(id, connection)
      evict()
      const recorder: ConnectionRecorder = {
        id,
        record: (event) => {
          version++
          if (events.length < maxEventsPerConnection || event.type === "ConnectionClose") events.push(event)
          else {
            connection.eventsCut++
            if (owner === connections) eventsCut++
          }
        },
        addBytes: (direction, count) => {
          version++
          if (direction === "up") connection.bytesUp += count
          else connection.bytesDown += count
        },
        current: () => connection,
        setProtocol: (protocol: ConnectionProtocol) => {
          connection.protocol = protocol
        },
        finish: ({ closedBy, error, state, time }) => {
          if (connection.state !== "open") return
          version++
          connection.state = state as ConnectionState
          connection.closedAt = time
          connection.closedBy = closedBy
          connection.error = error
          // Before eviction, which may take this very connection (and Tor's record of it).
          for (const listener of closedListeners) listener(connection)
          if (owner === connections) {
            closedOrder.push(id)
            evict()
          }
        }
      }
      return recorder
    })

  return {
    open,
    list: Effect.sync(() => Array.from(connections.values())),
    get: (id) => Effect.sync(() => connections.get(id)),
    counts: Effect.sync(() => ({ total: nextId - 1, evicted, eventsCut })),
    version: Effect.sync(() => version),
    onEvicted: (listener) => {
      evictedListeners.add(listener)
      return () => {
        evictedListeners.delete(listener)
      }
    },
    onClosed: (listener) => {
      closedListeners.add(listener)
      return () => {
        closedListeners.delete(listener)
      }
    },
    reset: Effect.sync(() => {
      version++
      connections = new Map()
      closedOrder = []
      closedHead = 0
      nextId = 1
      evicted = 0
      eventsCut = 0
    })
  }
})

export const layer: Layer.Layer<Store, never, SettingsStore> = Layer.effect(Store, make)
