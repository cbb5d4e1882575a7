/**
 * A settled connection's report text is made once and sent again as it is; it is made again
 * when anything it was made from changes, and an open connection's is never kept. The
 * warmer makes it while measurements stand still, and not while they change.
 */
import { describe, expect, it } from "@effect/vitest"
import { vi } from "vitest"
import { Chunk, Effect, Layer, Stream, TestClock } from "effect"
import type { Connection } from "../src/domain/Connection.js"
import { connectionJson } from "../src/domain/Connection.js"
import { stamp } from "../src/domain/Event.js"
import type { TorAttribution } from "../src/domain/TorCircuits.js"
import { harIndex, warmHarEntries } from "../src/http/Har.js"
import { jsonStream, type ListedJson } from "../src/http/Responses.js"
import { connectionText, warmConnectionText } from "../src/http/SettledText.js"
import * as ReportWarmer from "../src/layers/ReportWarmer.js"
import { Reporter, type ReporterService } from "../src/services/Reporter.js"
import { Store, type StoreService } from "../src/services/Store.js"
import { closed, connectionWith, httpExchange, socksReply, socksRequest, torRelay } from "./support/Measurements.js"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** A keep-alive connection of two exchanges, closed (or still open), mutable as the store's are. */
const pageLoad = (id: number, open = false): Mutable<Connection> => {
  const first = httpExchange("GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [0.2, 0.3, 0.31])
  const second = httpExchange("GET /b HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", [0.4, 0.5, 0.5], first.state)
  return connectionWith(id, "example.com", [
    [0.1, socksRequest("example.com")],
    [0.15, socksReply()],
    ...first.events,
    ...second.events,
    ...(open ? [] : [[0.6, closed(120, 80)] as const])
  ])
}

const text = (item: string | ListedJson, first = true): string =>
  typeof item === "string" ? item : item.bytes.subarray(first ? 1 : 0).toString("utf8")

const path = [torRelay("guard1", "A"), torRelay("middle1", "B"), torRelay("exit1", "C")]
const tor = (circuit: string): TorAttribution => ({ stream: "9", circuit, path, circuitBuildTime: 0.5 })

describe("a settled connection's JSON", () => {
  it("is made once, is the JSON of connectionJson, and starts with the comma that separates array items", () => {
    const connection = pageLoad(1)
    const made = connectionText(connection, null)
    expect(typeof made).not.toBe("string")
    expect(text(made)).toBe(JSON.stringify(connectionJson(connection, null)))
    expect((made as ListedJson).bytes.subarray(0, 1).toString()).toBe(",")
    expect(connectionText(connection, null)).toBe(made)
    expect(warmConnectionText(connection, null)).toBe(false)
  })

  it("is made again when an event, a byte count or Tor's attribution changes after the close", () => {
    const connection = pageLoad(2)
    const before = connectionText(connection, tor("7"))
    expect(connectionText(connection, tor("7"))).toBe(before)

    connection.events = [...connection.events, stamp(0.7, { type: "DecodeError", error: { _tag: "HttpParseError", reason: "HeaderLine", message: "late", offset: 3 } })]
    const afterEvent = connectionText(connection, tor("7"))
    expect(afterEvent).not.toBe(before)
    expect(text(afterEvent)).toBe(JSON.stringify(connectionJson(connection, tor("7"))))

    connection.bytesDown += 5
    const afterBytes = connectionText(connection, tor("7"))
    expect(afterBytes).not.toBe(afterEvent)
    expect(text(afterBytes)).toContain(`"bytesDown":${connection.bytesDown}`)

    const otherCircuit = connectionText(connection, tor("8"))
    expect(otherCircuit).not.toBe(afterBytes)
    expect(text(otherCircuit)).toBe(JSON.stringify(connectionJson(connection, tor("8"))))
    expect(connectionText(connection, null)).not.toBe(otherCircuit)
  })

  it("of an open connection is made at every request and never kept", () => {
    const connection = pageLoad(3, true)
    const now = connectionText(connection, null)
    expect(now).toBe(JSON.stringify(connectionJson(connection, null)))
    expect(warmConnectionText(connection, null)).toBe(false)
    connection.state = "closed"
    connection.closedAt = 0.9
    expect(warmConnectionText(connection, null)).toBe(true)
    expect(text(connectionText(connection, null))).toBe(JSON.stringify(connectionJson(connection, null)))
  })
})

describe("a settled connection's HAR entries", () => {
  const options = { sessionStartMillis: Date.UTC(2026, 11, 1, 12), creatorVersion: "test" }

  it("are the entries harIndex builds, made once, and made again for another session start", () => {
    const connections = [pageLoad(10), pageLoad(11, true), pageLoad(12)]
    const index = harIndex(connections, options)
    const texts = index.entries.map(index.entryText)
    expect(texts.map((item) => text(item))).toEqual(index.entries.map((entry) => JSON.stringify(index.entry(entry))))
    // The open connection's entries are made now, as strings; the settled ones' are kept.
    expect(texts.filter((item) => typeof item === "string")).toHaveLength(2)
    const again = harIndex(connections, options)
    expect(again.entries.map(again.entryText).filter((item, i) => typeof item !== "string" && item === texts[i])).toHaveLength(4)
    expect(warmHarEntries(connections[0], options)).toBe(false)
    expect(warmHarEntries(connections[0], { ...options, sessionStartMillis: options.sessionStartMillis + 1000 })).toBe(true)
    const later = harIndex(connections, { ...options, sessionStartMillis: options.sessionStartMillis + 1000 })
    expect(text(later.entryText(later.entries[0]))).toBe(JSON.stringify(later.entry(later.entries[0])))
  })
})

describe("jsonStream", () => {
  it("sends kept items as they are and items made now as text, as the one array JSON.stringify gives", () =>
    Effect.gen(function*() {
      const connections = [pageLoad(20), pageLoad(21, true), pageLoad(22), pageLoad(23)]
      for (const first of [0, 1]) {
        const response = jsonStream(connections.slice(first), { text: (connection) => connectionText(connection, null) })
        if (response.body._tag !== "Stream") return yield* Effect.die("expected a streamed body")
        const body = Buffer.concat(Chunk.toReadonlyArray(yield* Stream.runCollect(response.body.stream))).toString("utf8")
        expect(body).toBe(JSON.stringify(connections.slice(first).map((connection) => connectionJson(connection, null))))
      }
    }))
})

describe("the report warmer", () => {
  /** A Reporter over fixed connections whose version moves only while `traffic.flowing`. */
  const reporterOf = (connections: ReadonlyArray<Connection>, traffic: { flowing: boolean }) => {
    let version = 0
    const service: Pick<ReporterService, "version" | "connections" | "sessionStartMillis" | "torOf"> = {
      version: Effect.sync(() => (traffic.flowing ? ++version : version)),
      connections: Effect.succeed(connections),
      sessionStartMillis: Effect.succeed(Date.UTC(2026, 11, 1, 12)),
      torOf: () => null
    }
    return Layer.succeed(Reporter, service as ReporterService)
  }
  /** A Store whose only use here is telling of closes: `close()` tells one. */
  const storeOf = () => {
    const listeners = new Set<(connection: Connection) => void>()
    const service: Pick<StoreService, "onClosed"> = {
      onClosed: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      }
    }
    return {
      layer: Layer.succeed(Store, service as StoreService),
      close: (connection: Connection) => listeners.forEach((listener) => listener(connection)),
      listening: () => listeners.size
    }
  }
  const har = { sessionStartMillis: Date.UTC(2026, 11, 1, 12), creatorVersion: "test" }

  it.scoped("after a close, makes the settled connections' JSON and HAR entries once measurements stand still, and nothing while they change", () =>
    Effect.gen(function*() {
      const connections = Array.from({ length: 450 }, (_, i) => pageLoad(100 + i, i % 50 === 0))
      const traffic = { flowing: false }
      const report = { read: false }
      const store = storeOf()
      yield* Layer.build(
        ReportWarmer.layer({ creatorVersion: "test", wanted: () => report.read }).pipe(
          Layer.provide(Layer.merge(reporterOf(connections, traffic), store.layer))
        )
      )
      expect(store.listening()).toBe(1)

      // Quiet, but nothing closed since it started: it sleeps.
      yield* TestClock.adjust("1 second")
      expect(warmConnectionText(connections[1], null)).toBe(true)

      // A close, quiet, but nobody ever read the report: nothing made ahead.
      store.close(connections[2])
      yield* TestClock.adjust("1 second")
      expect(warmConnectionText(connections[3], null)).toBe(true)

      // The report is read; a close while traffic flows: still nothing.
      report.read = true
      traffic.flowing = true
      store.close(connections[4])
      yield* TestClock.adjust("2 seconds")
      expect(warmConnectionText(connections[5], null)).toBe(true)

      traffic.flowing = false
      yield* TestClock.adjust("1 second")
      const settled = connections.filter((connection) => connection.state !== "open")
      expect(settled.filter((connection) => warmConnectionText(connection, null))).toEqual([])
      expect(settled.filter((connection) => warmHarEntries(connection, har))).toEqual([])
      // Open ones are left for the request to make.
      expect(warmConnectionText(connections[0], null)).toBe(false)
    }))

  it("is wanted once a connection's JSON or a HAR entry has been asked for, not before", async () => {
    for (const ask of ["json", "har"] as const) {
      vi.resetModules()
      const settledText = await import("../src/http/SettledText.js")
      const harModule = await import("../src/http/Har.js")
      const connection = pageLoad(600)
      settledText.warmConnectionText(connection, null)
      harModule.warmHarEntries(connection, har)
      expect(settledText.textWasAsked()).toBe(false)
      if (ask === "json") settledText.connectionText(connection, null)
      else {
        const index = harModule.harIndex([connection], har)
        index.entryText(index.entries[0])
      }
      expect(settledText.textWasAsked()).toBe(true)
    }
  })
})
