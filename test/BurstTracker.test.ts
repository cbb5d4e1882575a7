import { describe, expect, it } from "@effect/vitest"
import { feedBurst, initialBursts } from "../src/domain/BurstTracker.js"
import { detailOf, type Direction } from "../src/domain/Event.js"
import { observe } from "../src/layers/ProtocolDecoder.js"

const run = (chunks: ReadonlyArray<readonly [Direction, number]>) => {
  let state = initialBursts
  const events: Array<string> = []
  for (const [direction, length] of chunks) {
    const [next, event] = feedBurst(state, direction, length)
    state = next
    if (event !== undefined) events.push(`${event.type} ${detailOf(event)}`)
  }
  return events
}

describe("exchanges inferred from encrypted traffic", () => {
  it("a client burst after server bytes is a request, a server burst after client bytes its response", () => {
    expect(run([["up", 517], ["up", 100], ["down", 4000], ["down", 1000], ["up", 80], ["down", 9000]])).toEqual([
      "InferredRequest exchange 1: client burst",
      "InferredResponse exchange 1: server burst, after 617 bytes up",
      "InferredRequest exchange 2: client burst, after 5000 bytes down",
      "InferredResponse exchange 2: server burst, after 80 bytes up"
    ])
  })

  it("a server that speaks first starts with a response to no request", () => {
    expect(run([["down", 20], ["up", 10]])).toEqual([
      "InferredResponse server burst before any request",
      "InferredRequest exchange 1: client burst, after 20 bytes down"
    ])
  })

  it("the connection observer infers exchanges on TLS and unknown connections, never on HTTP", () => {
    const tls = observe()
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00])
    const first = tls.feed("up", hello).map((e) => e.type)
    expect(first).toContain("InferredRequest")
    expect(tls.protocol()).toBe("tls")
    expect(tls.feed("down", Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0x00])).map((e) => e.type)).toContain("InferredResponse")
    const unknown = observe()
    expect(unknown.feed("up", Buffer.from("\x00\x01binary protocol")).map((e) => e.type)).toEqual(["InferredRequest"])
    expect(unknown.protocol()).toBe("unknown")
    const http = observe()
    const events = [...http.feed("up", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), ...http.feed("down", Buffer.from("HTTP/1.1 204 No Content\r\n\r\n"))]
    expect(events.map((e) => e.type)).toEqual(["HttpRequestStart", "HttpRequestEnd", "HttpResponseStart", "HttpResponseEnd"])
  })
})
