import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  applySettings,
  defaultSettings,
  delayFor,
  encodeSettings,
  formatDelaySpec,
  formatRate,
  parseRate,
  parseDelaySpec,
  parseUpstream
} from "../src/domain/Settings.js"

describe("delay SPEC", () => {
  it.each([
    ["0", { _tag: "None" }],
    ["250ms", { _tag: "Fixed", millis: 250 }],
    ["1.5s", { _tag: "Fixed", millis: 1500 }],
    ["200ms..800ms", { _tag: "Range", minMillis: 200, maxMillis: 800 }],
    ["1s..2.5s", { _tag: "Range", minMillis: 1000, maxMillis: 2500 }],
    ["0ms", { _tag: "None" }]
  ])("%s is understood", (text, spec) => {
    expect(parseDelaySpec(text)).toEqual(spec)
  })

  it("per-host rules: the first matching rule wins, and no match means no delay", () => {
    const spec = parseDelaySpec("*.onion=2s, example.com=100ms..400ms ,*=0")!
    expect(spec).toEqual({
      _tag: "PerHost",
      rules: [
        { pattern: "*.onion", delay: { _tag: "Fixed", millis: 2000 } },
        { pattern: "example.com", delay: { _tag: "Range", minMillis: 100, maxMillis: 400 } },
        { pattern: "*", delay: { _tag: "None" } }
      ]
    })
    expect(delayFor(spec, "abcdef.onion")).toEqual({ _tag: "Fixed", millis: 2000 })
    expect(delayFor(spec, "EXAMPLE.com.")).toEqual({ _tag: "Range", minMillis: 100, maxMillis: 400 })
    expect(delayFor(spec, "www.example.com")).toEqual({ _tag: "None" })
    expect(delayFor(parseDelaySpec("example.com=1s")!, "other.org")).toEqual({ _tag: "None" })
    expect(delayFor(parseDelaySpec("*.onion=1s")!, "onion")).toEqual({ _tag: "None" })
    expect(formatDelaySpec(spec)).toBe("*.onion=2s,example.com=100ms..400ms,*=0")
  })

  it.each(["soon", "250", "-1s", "800ms..200ms", "1m", "1s..", "..1s", "1s..2s..3s", "example.com=", "=1s", "a b=1s", "x=1s,y"])("%s is refused", (text) => {
    expect(parseDelaySpec(text)).toBeUndefined()
  })

  it("formats back to a SPEC that parses to the same delay", () => {
    for (const text of ["0", "250ms", "1.5s", "200ms..800ms", "2s..3s"]) {
      const spec = parseDelaySpec(text)!
      expect(parseDelaySpec(formatDelaySpec(spec))).toEqual(spec)
    }
  })
})

describe("bandwidth RATE", () => {
  it.each([
    ["off", 0],
    ["0", 0],
    ["250KiB/s", 256_000],
    ["1.5MiB/s", 1_572_864],
    ["500kB/s", 500_000],
    ["2Mbit/s", 250_000],
    ["100B/s", 100]
  ])("%s is %d bytes per second", (text, rate) => expect(parseRate(text)).toBe(rate))

  it.each(["fast", "250KiB", "-1KiB/s", "0.1B/s"])("%s is refused", (text) => expect(parseRate(text)).toBeUndefined())

  it("formats back", () => {
    expect(formatRate(256 * 1024)).toBe("256KiB/s")
    expect(formatRate(0)).toBe("off")
    expect(parseRate(formatRate(250_000))).toBe(250_000)
  })
})

describe("upstream URL", () => {
  it("takes direct, socks5://HOST:PORT with optional credentials, and IPv6 in brackets", () => {
    expect(parseUpstream("direct")).toEqual({ _tag: "Direct" })
    expect(parseUpstream("socks5://127.0.0.1:9050")).toEqual({ _tag: "Socks5", host: "127.0.0.1", port: 9050 })
    expect(parseUpstream("socks5://alice:s%40cret@localhost:9150")).toEqual({
      _tag: "Socks5",
      host: "localhost",
      port: 9150,
      username: "alice",
      password: "s@cret"
    })
    expect(parseUpstream("socks5://[::1]:9050")).toEqual({ _tag: "Socks5", host: "::1", port: 9050 })
  })

  it.each(["http://127.0.0.1:9050", "socks5://127.0.0.1", "socks5://127.0.0.1:70000", "tor", "socks5://:9050"])(
    "%s is refused",
    (text) => expect(parseUpstream(text)).toBeUndefined()
  )
})

describe("settings documents", () => {
  it("a valid partial document changes only its fields", () => {
    const result = applySettings(defaultSettings, { headers: "all", socksDelay: "1s" })
    expect(Either.getOrThrow(result)).toEqual({ ...defaultSettings, headers: "all", socksDelay: { _tag: "Fixed", millis: 1000 } })
  })

  it("an invalid field is refused with a message that names it and what it accepts", () => {
    const result = applySettings(defaultSettings, { maxConnections: 0 })
    expect(Either.isLeft(result)).toBe(true)
    const error = Either.flip(result).pipe(Either.getOrThrow)
    expect(error.field).toBe("maxConnections")
    expect(error.message).toBe("maxConnections: expected a whole number from 1 to 10000000, got 0")
  })

  it("unknown fields and non-objects are refused", () => {
    expect(Either.flip(applySettings(defaultSettings, { proxy: 1 })).pipe(Either.getOrThrow).message).toMatch(/proxy: unknown setting/)
    expect(Either.isLeft(applySettings(defaultSettings, [1]))).toBe(true)
    expect(Either.isLeft(applySettings(defaultSettings, null))).toBe(true)
  })

  it("encodes to the JSON shape of SPEC §3", () => {
    expect(encodeSettings(defaultSettings)).toEqual({
      headers: "first",
      socksDelay: "0",
      httpDelay: "0",
      upstream: "socks5://127.0.0.1:9050",
      maxConnections: 10000,
      bandwidth: "off",
      bandwidthTotal: "off",
      otlp: "off",
      otlpEncoding: "protobuf",
      vantage: defaultSettings.vantage
    })
  })
})
