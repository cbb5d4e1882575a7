import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, TestClock } from "effect"
import * as ClockDeadlines from "../src/layers/ClockDeadlines.js"

describe("deadlines on the clock service", () => {
  it.scoped("a deadline fires once its time has passed on TestClock, at most one resolution late, and only once", () =>
    Effect.gen(function*() {
      const deadlines = yield* ClockDeadlines.make(Duration.millis(250))
      const fired: Array<string> = []
      deadlines.schedule(Duration.seconds(30), () => fired.push("30 s"))
      deadlines.schedule(Duration.millis(1100), () => fired.push("1.1 s"))
      yield* TestClock.adjust("1 second")
      expect(fired).toEqual([])
      yield* TestClock.adjust("250 millis")
      expect(fired).toEqual(["1.1 s"])
      yield* TestClock.adjust("28749 millis")
      expect(fired).toEqual(["1.1 s"])
      yield* TestClock.adjust("1 millis")
      expect(fired).toEqual(["1.1 s", "30 s"])
      yield* TestClock.adjust("5 seconds")
      expect(fired).toEqual(["1.1 s", "30 s"])
    }))

  it.scoped("with no deadline waiting it does not wake at all, and wakes again for a new one", () =>
    Effect.gen(function*() {
      const deadlines = yield* ClockDeadlines.make(Duration.millis(250))
      yield* TestClock.adjust("1 second")
      expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toEqual([])
      const fired: Array<string> = []
      deadlines.schedule(Duration.millis(500), () => fired.push("0.5 s"))
      yield* TestClock.adjust("750 millis")
      expect(fired).toEqual(["0.5 s"])
      yield* TestClock.adjust("250 millis")
      expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toEqual([])
    }))

  it.scoped("a cancelled deadline never fires; the others still do", () =>
    Effect.gen(function*() {
      const deadlines = yield* ClockDeadlines.make(Duration.millis(250))
      const fired: Array<number> = []
      const cancels = [1, 2, 3].map((n) => deadlines.schedule(Duration.seconds(n), () => fired.push(n)))
      cancels[1]()
      yield* TestClock.adjust("10 seconds")
      expect(fired).toEqual([1, 3])
    }))

  it.scoped("a callback that throws does not stop the deadlines due with it or later", () =>
    Effect.gen(function*() {
      const deadlines = yield* ClockDeadlines.make(Duration.millis(250))
      const fired: Array<string> = []
      deadlines.schedule(Duration.seconds(1), () => {
        throw new Error("boom")
      })
      deadlines.schedule(Duration.seconds(1), () => fired.push("same time"))
      deadlines.schedule(Duration.seconds(5), () => fired.push("later"))
      yield* TestClock.adjust("6 seconds")
      expect(fired).toEqual(["same time", "later"])
    }))

  it.scoped("deadlines scheduled at different clock times fire by their own due time", () =>
    Effect.gen(function*() {
      const deadlines = yield* ClockDeadlines.make(Duration.millis(1000))
      const fired: Array<string> = []
      yield* TestClock.adjust("300 millis")
      deadlines.schedule(Duration.millis(1000), () => fired.push("due 1.3 s"))
      yield* TestClock.adjust("999 millis")
      expect(fired).toEqual([])
      yield* TestClock.adjust("1 second")
      expect(fired).toEqual(["due 1.3 s"])
    }))
})
