/**
 * The meter: what the relay asks about each chunk. It records the decoder's
 * typed events at the chunk's arrival time and answers the holds (HTTP request
 * delays at each request's offset, bandwidth waits), driven by TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import type { Connection } from "../src/domain/Connection.js"
import type { ConnectionEvent, Direction } from "../src/domain/Event.js"
import { makeMeter } from "../src/layers/Meter.js"
import { observe } from "../src/layers/ProtocolDecoder.js"
import * as SessionClockLive from "../src/layers/SessionClockLive.js"
import { planned } from "../src/layers/SettingsDelayPolicy.js"
import type { ConnectionRecorder } from "../src/services/Store.js"
import type { ConnectionThrottle } from "../src/services/Throttle.js"

/** A recorder that keeps what the meter tells it. */
const recording = () => {
  const events: Array<ConnectionEvent> = []
  const bytes = { up: 0, down: 0 }
  let protocol = "pending"
  const recorder: ConnectionRecorder = {
    id: 1,
    record: (event) => void events.push(event),
    addBytes: (direction, count) => void (bytes[direction] += count),
    current: () => ({ bytesUp: bytes.up, bytesDown: bytes.down } as Connection),
    setProtocol: (next) => void (protocol = next),
    finish: () => {}
  }
  return { recorder, events, bytes, protocol: () => protocol }
}

const noThrottle: ConnectionThrottle = { take: () => undefined }

/** What the meter wrote on, in order. */
const written: Array<string> = []
const write = (bytes: Buffer) => void written.push(bytes.toString("latin1"))

const chunk = (text: string) => Buffer.from(text, "latin1")

describe("the meter", () => {
  it.effect("without a delay or limit nothing is held: each chunk is written before it is decoded, and events carry its arrival time", () =>
    Effect.gen(function*() {
      const clock = yield* SessionClockLive.make
      const { events, protocol, recorder, bytes } = recording()
      written.length = 0
      const writeThenCount = (chunk: Buffer) => {
        write(chunk)
        written.push(`events so far: ${events.length}`)
      }
      const meter = makeMeter({ recorder, clock, decoder: observe(), throttle: noThrottle, httpDelay: undefined })
      expect(meter.chunk("up", chunk("GET / HTTP/1.1\r\n\r\n"), 1.25, writeThenCount)).toBeUndefined()
      expect(meter.chunk("down", chunk("HTTP/1.1 204 No Content\r\n\r\n"), 2.5, writeThenCount)).toBeUndefined()
      expect(written).toEqual(["GET / HTTP/1.1\r\n\r\n", "events so far: 0", "HTTP/1.1 204 No Content\r\n\r\n", "events so far: 2"])
      expect(events.map((e) => [e.time, e.type])).toEqual([
        [1.25, "HttpRequestStart"],
        [1.25, "HttpRequestEnd"],
        [2.5, "HttpResponseStart"],
        [2.5, "HttpResponseEnd"]
      ])
      expect(protocol()).toBe("http")
      expect(bytes).toEqual({ up: 18, down: 27 })
    }))

  it.effect("an HTTP delay holds each request of a chunk at its offset, recorded with the exchange it held", () =>
    Effect.gen(function*() {
      const clock = yield* SessionClockLive.make
      clock.unsafeNow() // the session starts now
      const { events, recorder } = recording()
      const meter = makeMeter({
        recorder,
        clock,
        decoder: observe(),
        throttle: noThrottle,
        httpDelay: Effect.succeed(planned(Duration.millis(300)))
      })
      const two = chunk("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
      written.length = 0
      const holds = meter.chunk("up", two, 0, write)!
      // A held chunk is not written by the meter: the relay writes it around its holds.
      expect(written).toEqual([])
      expect(holds.map((hold) => hold.at)).toEqual([0, 19])
      // Responses are never held by the request delay.
      expect(meter.chunk("down", chunk("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0, write)).toBeUndefined()

      const first = yield* Effect.fork(holds[0].release)
      yield* Effect.yieldNow()
      yield* TestClock.adjust("299 millis")
      expect(first.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(first)
      const second = yield* Effect.fork(holds[1].release)
      yield* Effect.yieldNow()
      yield* TestClock.adjust("300 millis")
      yield* Fiber.join(second)
      const delays = events.filter((e) => e.type === "DelayStart" || e.type === "DelayEnd")
      expect(delays.map((e) => [e.time, e.type, "exchange" in e ? e.exchange : undefined])).toEqual([
        [0, "DelayStart", 0],
        [0.3, "DelayEnd", 0],
        [0.3, "DelayStart", 1],
        [0.6, "DelayEnd", 1]
      ])
      expect(delays[0]).toMatchObject({ delay: "http", ms: 300, detail: "HTTP request held 300ms" })
    }))

  it.effect("a chunk that does not start a request is not held by the HTTP delay", () =>
    Effect.gen(function*() {
      const clock = yield* SessionClockLive.make
      const { recorder } = recording()
      const meter = makeMeter({ recorder, clock, decoder: observe(), throttle: noThrottle, httpDelay: Effect.succeed(planned(Duration.seconds(1))) })
      written.length = 0
      const holds = meter.chunk("up", chunk("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n"), 0, write)
      expect(holds?.length).toBe(1)
      expect(meter.chunk("up", chunk("0123456789"), 0, write)).toBeUndefined()
      expect(written).toEqual(["0123456789"])
    }))

  it.effect("a bandwidth limit's wait holds the whole chunk at its start, for the time the throttle says", () =>
    Effect.gen(function*() {
      const clock = yield* SessionClockLive.make
      const { recorder } = recording()
      const asked: Array<[Direction, number]> = []
      const throttle: ConnectionThrottle = {
        take: (direction, count) => {
          asked.push([direction, count])
          return direction === "down" ? Duration.millis(500) : undefined
        }
      }
      const meter = makeMeter({ recorder, clock, decoder: observe(), throttle, httpDelay: undefined })
      expect(meter.chunk("up", chunk("\u0000binary"), 0, write)).toBeUndefined()
      const holds = meter.chunk("down", chunk("x".repeat(100)), 0, write)!
      expect(holds.map((hold) => hold.at)).toEqual([0])
      const wait = yield* Effect.fork(holds[0].release)
      yield* Effect.yieldNow()
      yield* TestClock.adjust("499 millis")
      expect(wait.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(wait)
      expect(asked).toEqual([["up", 7], ["down", 100]])
    }))

  it.effect("the end of a direction reports what the decoder learns from it, at the time it ends", () =>
    Effect.gen(function*() {
      const clock = yield* SessionClockLive.make
      clock.unsafeNow()
      const { events, recorder } = recording()
      const meter = makeMeter({ recorder, clock, decoder: observe(), throttle: noThrottle, httpDelay: undefined })
      meter.chunk("up", chunk("GET / HTTP/1.0\r\n\r\n"), 0, write)
      meter.chunk("down", chunk("HTTP/1.0 200 OK\r\n\r\nbody until close"), 0, write)
      yield* TestClock.adjust("2 seconds")
      meter.ended("down")
      expect(events.at(-1)).toMatchObject({ type: "HttpResponseEnd", time: 2, exchange: 0, bodyBytes: 16 })
    }))
})
