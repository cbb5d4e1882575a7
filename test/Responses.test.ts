/**
 * `jsonStream` writes a large array item by item into batches of bytes: the bytes must be the
 * document JSON.stringify gives, whatever the items hold and however they fall on batch edges.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { jsonStream } from "../src/http/Responses.js"

const bodyOf = (response: ReturnType<typeof jsonStream>) =>
  Effect.gen(function*() {
    const body = response.body
    if (body._tag !== "Stream") return yield* Effect.die(`expected a streamed body, got ${body._tag}`)
    const pieces = Chunk.toReadonlyArray(yield* Stream.runCollect(body.stream))
    return { pieces: pieces.length, text: Buffer.concat(pieces).toString("utf8") }
  })

/** Items whose UTF-8 is longer than their JavaScript length, some larger than one batch. */
const hostileItems = Array.from({ length: 700 }, (_, i) => ({
  i,
  text: i % 7 === 0 ? "ä€😀\u2028\"\\\n".repeat(i * 40) : "x".repeat(i * 13),
  big: i === 333 ? "€".repeat(300_000) : null
}))

describe("jsonStream", () => {
  it.effect("sends the document JSON.stringify gives, in more than one piece, for multi-byte text and items larger than a batch", () =>
    Effect.gen(function*() {
      const { pieces, text } = yield* bodyOf(jsonStream(hostileItems))
      expect(pieces).toBeGreaterThan(3)
      expect(text).toBe(JSON.stringify(hostileItems))
    }))

  it.effect("builds each item as it is sent, and places the array where `within` puts it", () =>
    Effect.gen(function*() {
      const built: Array<number> = []
      const response = jsonStream([1, 2, 3], {
        build: (n) => {
          built.push(n)
          return { n, square: n * n }
        },
        within: (entries) => ({ log: { version: "1.2", entries, comment: "after" } })
      })
      expect(built).toEqual([])
      const { text } = yield* bodyOf(response)
      expect(JSON.parse(text)).toEqual({
        log: { version: "1.2", entries: [{ n: 1, square: 1 }, { n: 2, square: 4 }, { n: 3, square: 9 }], comment: "after" }
      })
      expect(built).toEqual([1, 2, 3])
    }))

  it.effect("an empty array is []", () =>
    Effect.gen(function*() {
      expect((yield* bodyOf(jsonStream([]))).text).toBe("[]")
    }))
})
