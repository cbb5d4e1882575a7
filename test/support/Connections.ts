/**
 * Connections built by hand for render tests: a terse event list in, a
 * Connection out.
 */
import type { Connection } from "../../src/domain/Connection.js"
import type { ConnectionEvent, EventType } from "../../src/domain/Event.js"

export type EventSpec = readonly [number, EventType, string?, ReadonlyArray<string>?]

export const connectionOf = (
  id: number,
  host: string,
  events: ReadonlyArray<EventSpec>,
  overrides: Partial<Connection> = {}
): Connection => {
  const built: Array<ConnectionEvent> = events.map(([time, type, detail = "", headers]) =>
    headers === undefined ? { time, type, detail } : { time, type, detail, headers }
  )
  const close = built.find((e) => e.type === "ConnectionClose")
  return {
    id,
    client: "127.0.0.1:50000",
    host,
    port: 80,
    socksVersion: 5,
    command: "connect",
    isolation: null,
    upstream: "socks5://127.0.0.1:9050",
    state: close === undefined ? "open" : "closed",
    protocol: "http",
    openedAt: built[0]?.time ?? 0,
    closedAt: close?.time ?? null,
    closedBy: close === undefined ? null : "server",
    bytesUp: 100,
    bytesDown: 1000,
    events: built,
    eventsCut: 0,
    error: null,
    ...overrides
  }
}
