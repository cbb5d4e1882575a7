import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { sniffProtocol } from "../src/domain/ProtocolSniffer.js"

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

describe("ProtocolSniffer", () => {
  it.each([
    ["GET ", "http"],
    ["GET / HTTP/1.1\r\n", "http"],
    ["POST ", "http"],
    ["CONNECT example.com:443 HTTP/1.1\r\n", "http"],
    ["PROPFIND ", "http"],
    ["VERSION-CONTROL ", "http"],
    ["\x16\x03\x01", "tls"],
    ["\x16\x03\x03\x00\xc8\x01", "tls"],
    ["\x16\x03\x00", "tls"],
    ["\x16\x03\x04", "tls"],
    ["\x16\x03\x05", "unknown"],
    ["\x16\x02", "unknown"],
    ["\x00", "unknown"],
    ["\x05\x01\x00", "unknown"],
    ["get / HTTP/1.1", "unknown"],
    [" GET", "unknown"],
    ["GET\t/", "unknown"],
    ["SSH-2.0-OpenSSH_9.6\r\n", "unknown"],
    ["ABCDEFGHIJKLMNOPQRST ", "http"],
    ["ABCDEFGHIJKLMNOPQRSTU ", "unknown"]
  ] as const)("%j is %s", (bytes, expected) => {
    expect(sniffProtocol(latin1(bytes))).toBe(expected)
  })

  it.each(["", "G", "GE", "GET", "PROPFIND", "\x16", "\x16\x03"])("%j is too short to tell", (bytes) => {
    expect(sniffProtocol(latin1(bytes))).toBeUndefined()
  })

  it("24 bytes are always enough to decide", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 64 }), (bytes) => {
        expect(sniffProtocol(bytes)).toBeDefined()
      })
    )
  })

  it("once decided, more bytes never change the answer", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 30 }), fc.uint8Array({ maxLength: 30 }), (first, more) => {
        const verdict = sniffProtocol(first)
        if (verdict === undefined) return
        const longer = new Uint8Array(first.length + more.length)
        longer.set(first)
        longer.set(more, first.length)
        expect(sniffProtocol(longer)).toBe(verdict)
      })
    )
  })

  it("every method token followed by a space is http", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Z-]{1,20}$/), (method) => {
        expect(sniffProtocol(latin1(`${method} /`))).toBe("http")
      })
    )
  })
})
