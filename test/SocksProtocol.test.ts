import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import {
  failureCode,
  feedSocksServer,
  initialSocksServer,
  type SocksServerState,
  type SocksServerStep,
  socksReply,
  SocksReplyCode,
  socksReplyName
} from "../src/domain/SocksProtocol.js"
import type { SocksRequest } from "../src/domain/SocksRequest.js"

const bytes = (...parts: ReadonlyArray<number | string | Uint8Array | ReadonlyArray<number>>): Uint8Array => {
  const out: Array<number> = []
  for (const part of parts) {
    if (typeof part === "number") out.push(part)
    else if (typeof part === "string") for (let i = 0; i < part.length; i++) out.push(part.charCodeAt(i) & 0xff)
    else out.push(...part)
  }
  return Uint8Array.from(out)
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => bytes(...parts)

/** Steps as plain data, so Buffer, Uint8Array and subarrays compare by their bytes. */
type Plain =
  | { readonly _tag: "Reply"; readonly bytes: Array<number> }
  | {
    readonly _tag: "Request"
    readonly request: Record<string, unknown>
    readonly rest: Array<number>
  }
  | { readonly _tag: "Refuse"; readonly reason: string; readonly detail: string; readonly reply: Array<number> | undefined }

const plainRequest = (request: SocksRequest): Record<string, unknown> => ({
  ...request,
  methods: [...request.methods],
  credentials: request.credentials === undefined
    ? undefined
    : { username: Array.from(request.credentials.username), password: Array.from(request.credentials.password) },
  userId: request.userId === undefined ? undefined : Array.from(request.userId)
})

const plain = (step: SocksServerStep, extraRest: Uint8Array = new Uint8Array(0)): Plain => {
  switch (step._tag) {
    case "Reply":
      return { _tag: "Reply", bytes: Array.from(step.bytes) }
    case "Request":
      return { _tag: "Request", request: plainRequest(step.request), rest: [...step.rest, ...extraRest] }
    case "Refuse":
      return {
        _tag: "Refuse",
        reason: step.error.reason,
        detail: step.error.detail,
        reply: step.reply === undefined ? undefined : Array.from(step.reply)
      }
  }
}

/**
 * Feeds the chunks in order, as the relay would. Chunks that arrive after the handshake
 * ended must give no steps; those after a Request belong to it, so they are appended to
 * its `rest` (the relay forwards them the same way).
 */
const feedChunks = (chunks: ReadonlyArray<Uint8Array>): { steps: Array<Plain>; state: SocksServerState } => {
  let state = initialSocksServer
  const raw: Array<SocksServerStep> = []
  const afterEnd: Array<Uint8Array> = []
  let ended = false
  for (const chunk of chunks) {
    const [next, steps] = feedSocksServer(state, chunk)
    if (ended) {
      expect(steps).toEqual([])
      afterEnd.push(chunk)
    } else {
      raw.push(...steps)
      ended = steps.some((step) => step._tag !== "Reply")
    }
    state = next
  }
  const steps = raw.map((step) => step._tag === "Request" ? plain(step, concat(afterEnd)) : plain(step))
  return { steps, state }
}

const feedWhole = (input: Uint8Array) => feedChunks([input]).steps

const request = (steps: ReadonlyArray<Plain>) => {
  const last = steps[steps.length - 1]
  if (last?._tag !== "Request") throw new Error(`expected a Request, got ${JSON.stringify(last)}`)
  return last
}

const refusal = (steps: ReadonlyArray<Plain>) => {
  const last = steps[steps.length - 1]
  if (last?._tag !== "Refuse") throw new Error(`expected a Refuse, got ${JSON.stringify(last)}`)
  return last
}

const noAuthGreeting = bytes(5, 1, 0)
const port = (n: number) => [n >> 8, n & 0xff]

describe("SOCKS5 handshake", () => {
  it("a no-auth CONNECT to an IPv4 address selects method 0x00 and gives the dotted address", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0, 1, 93, 184, 216, 34, port(443)))
    expect(steps).toEqual([
      { _tag: "Reply", bytes: [5, 0] },
      {
        _tag: "Request",
        request: {
          version: 5,
          command: "connect",
          addressType: "ipv4",
          host: "93.184.216.34",
          port: 443,
          methods: [0],
          credentials: undefined,
          userId: undefined
        },
        rest: []
      }
    ])
  })

  it("a no-auth CONNECT to a domain name gives the name as sent", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0, 3, 11, "example.com", port(80)))
    expect(request(steps).request).toMatchObject({ addressType: "domain", host: "example.com", port: 80 })
  })

  it("a domain name's bytes round-trip through latin1, 0x80–0x9F included (not windows-1252)", () => {
    const name = [0x80, 0x9f, 0xe9, 0xff, 0x41]
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0, 3, name.length, name, port(80)))
    const host = request(steps).request.host as string
    expect(Array.from(host, (char) => char.charCodeAt(0))).toEqual(name)
  })

  it.each([
    [[0, 0, 0, 0, 0, 0, 0, 1], "::1"],
    [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], "2001:db8::1"],
    [[0, 0, 0, 0, 0, 0, 0, 0], "::"],
    [[0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1"],
    [[0x2001, 0, 0, 1, 0, 0, 0, 1], "2001:0:0:1::1"],
    [[0xfe80, 0, 0, 0, 0xabcd, 0, 0, 0], "fe80::abcd:0:0:0"],
    [[0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304], "::ffff:102:304"]
  ])("a no-auth CONNECT to IPv6 groups %j (decimal) gives the RFC 5952 text %s", (groups, text) => {
    const address = groups.flatMap((group) => port(group))
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0, 4, address, port(443)))
    expect(request(steps).request).toMatchObject({ addressType: "ipv6", host: text, port: 443 })
  })

  it("a SOCKS5 greeting offering username/password selects method 0x02 and the credentials reach the request byte for byte", () => {
    const steps = feedWhole(bytes(5, 2, 0, 2, 1, 5, "alice", 6, "s3cret", 5, 1, 0, 3, 3, "a.b", port(80)))
    expect(steps.slice(0, 2)).toEqual([{ _tag: "Reply", bytes: [5, 2] }, { _tag: "Reply", bytes: [1, 0] }])
    expect(request(steps).request).toMatchObject({
      methods: [0, 2],
      credentials: { username: Array.from(bytes("alice")), password: Array.from(bytes("s3cret")) }
    })
  })

  it("an empty username and an empty password are credentials too (Tor isolates by them)", () => {
    const steps = feedWhole(bytes(5, 1, 2, 1, 0, 0, 5, 1, 0, 1, 10, 0, 0, 1, port(80)))
    expect(request(steps).request.credentials).toEqual({ username: [], password: [] })
  })

  it("credential bytes that are not UTF-8 are kept, and are copies of the client's buffer", () => {
    const username = [0xff, 0xfe, 0x00, 0xc3]
    const password = [0x80, 0x00]
    const input = Buffer.from(bytes(5, 1, 2, 1, username.length, username, password.length, password, 5, 1, 0, 1, 1, 2, 3, 4, port(1)))
    const [, steps] = feedSocksServer(initialSocksServer, input)
    input.fill(0x55)
    const last = steps[steps.length - 1]
    expect(last._tag).toBe("Request")
    if (last._tag !== "Request") return
    expect(Array.from(last.request.credentials?.username ?? [])).toEqual(username)
    expect(Array.from(last.request.credentials?.password ?? [])).toEqual(password)
    expect(last.request.credentials?.username).not.toBeInstanceOf(Buffer)
  })

  it.each([
    ["F0", "resolve (Tor)", "resolve", bytes(3, 11, "example.com")],
    ["F1", "resolve PTR (Tor)", "resolvePtr", bytes(1, 8, 8, 8, 8)],
    ["02", "BIND", "bind", bytes(1, 0, 0, 0, 0)],
    ["03", "UDP ASSOCIATE", "udpAssociate", bytes(1, 0, 0, 0, 0)]
  ] as const)("command 0x%s, %s, decodes as %s (the relay decides how to answer it)", (code, _, command, address) => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, parseInt(code, 16), 0, address, port(0)))
    expect(request(steps).request.command).toBe(command)
  })

  it("a non-zero RSV byte is accepted", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0x7f, 1, 1, 2, 3, 4, port(8080)))
    expect(request(steps).request).toMatchObject({ host: "1.2.3.4", port: 8080 })
  })

  it("an unknown command is refused with 05 07 (command not supported)", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, 0x09, 0, 1, 1, 2, 3, 4, port(80)))
    expect(refusal(steps)).toMatchObject({
      reason: "BadRequest",
      detail: "SOCKS5 command 0x09 is not supported",
      reply: [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]
    })
  })

  it("an unknown address type is refused with 05 08 (address type not supported)", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0, 0x05, 1, 2, 3, 4, port(80)))
    expect(refusal(steps)).toMatchObject({ reason: "UnsupportedAddressType", reply: [5, 8, 0, 1, 0, 0, 0, 0, 0, 0] })
  })

  it("an empty domain name is refused with 05 01 (general failure)", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 5, 1, 0, 3, 0, port(80)))
    expect(refusal(steps)).toMatchObject({ reason: "BadRequest", reply: [5, 1, 0, 1, 0, 0, 0, 0, 0, 0] })
  })

  it("a request whose version is not 5 is refused with 05 01", () => {
    const steps = feedWhole(bytes(noAuthGreeting, 4, 1, 0, 1, 1, 2, 3, 4, port(80)))
    expect(refusal(steps)).toMatchObject({ reason: "BadRequest", reply: [5, 1, 0, 1, 0, 0, 0, 0, 0, 0] })
  })

  it.each([
    ["GSSAPI only", [1]],
    ["no methods at all", []]
  ])("a greeting with %s is refused with 05 FF", (_, methods) => {
    const steps = feedWhole(bytes(5, methods.length, methods))
    expect(steps).toEqual([
      {
        _tag: "Refuse",
        reason: "NoAcceptableMethod",
        detail: expect.stringContaining("offered methods"),
        reply: [5, 0xff]
      }
    ])
  })

  it("a username/password sub-negotiation with version 5 is refused with 01 01", () => {
    const steps = feedWhole(bytes(5, 1, 2, 5, 1, "u", 1, "p"))
    expect(steps).toEqual([
      { _tag: "Reply", bytes: [5, 2] },
      { _tag: "Refuse", reason: "BadAuthVersion", detail: expect.any(String), reply: [1, 1] }
    ])
  })

  it("optimistic data after the CONNECT request in the same chunk is handed over in rest", () => {
    const http = "GET / HTTP/1.1\r\n"
    const [state] = feedSocksServer(initialSocksServer, noAuthGreeting)
    const [, steps] = feedSocksServer(state, bytes(5, 1, 0, 3, 11, "example.com", port(80), http))
    expect(steps).toHaveLength(1)
    expect(plain(steps[0])).toMatchObject({ _tag: "Request", rest: Array.from(bytes(http)) })
  })

  it("greeting, credentials and request sent together give both replies and the request", () => {
    const steps = feedWhole(bytes(5, 1, 2, 1, 1, "u", 1, "p", 5, 1, 0, 1, 1, 1, 1, 1, port(1), "xyz"))
    expect(steps.map((step) => step._tag)).toEqual(["Reply", "Reply", "Request"])
    expect(request(steps).rest).toEqual(Array.from(bytes("xyz")))
  })

  it("after the request the state is terminal: further bytes give no steps", () => {
    const [state] = feedSocksServer(initialSocksServer, bytes(noAuthGreeting, 5, 1, 0, 1, 1, 2, 3, 4, port(80)))
    expect(feedSocksServer(state, bytes("more"))[1]).toEqual([])
  })

  it("bytes fed one at a time give the same steps as the whole handshake", () => {
    const input = bytes(5, 2, 0, 2, 1, 2, "ab", 0, 5, 1, 0, 4, new Uint8Array(16), port(443))
    const oneByOne = feedChunks(Array.from(input, (byte) => Uint8Array.of(byte))).steps
    expect(oneByOne).toEqual(feedWhole(input))
  })
})

describe("SOCKS4 and SOCKS4a", () => {
  it("a SOCKS4 CONNECT to an IPv4 address carries its user id", () => {
    const steps = feedWhole(bytes(4, 1, port(80), 10, 0, 0, 1, "bob", 0))
    expect(steps).toEqual([
      {
        _tag: "Request",
        request: {
          version: 4,
          command: "connect",
          addressType: "ipv4",
          host: "10.0.0.1",
          port: 80,
          methods: [],
          credentials: undefined,
          userId: Array.from(bytes("bob"))
        },
        rest: []
      }
    ])
  })

  it("a SOCKS4a request (0.0.0.x) carries the host name, which goes upstream as a name", () => {
    const steps = feedWhole(bytes(4, 1, port(443), 0, 0, 0, 1, 0, "example.org", 0, "tail"))
    expect(request(steps)).toMatchObject({
      request: { version: 4, addressType: "domain", host: "example.org", port: 443, userId: [] },
      rest: Array.from(bytes("tail"))
    })
  })

  it("Tor's RESOLVE 0xF0 over SOCKS4a and BIND decode", () => {
    expect(request(feedWhole(bytes(4, 0xf0, port(0), 0, 0, 0, 9, 0, "x.onion", 0))).request.command).toBe("resolve")
    expect(request(feedWhole(bytes(4, 2, port(0), 1, 2, 3, 4, 0))).request.command).toBe("bind")
  })

  it("an unknown SOCKS4 command is refused with 5B", () => {
    const steps = feedWhole(bytes(4, 3, port(80), 1, 2, 3, 4, 0))
    expect(refusal(steps)).toMatchObject({ reason: "BadRequest", reply: [0, 0x5b, 0, 0, 0, 0, 0, 0] })
  })

  it("a user id of 255 bytes is accepted; one of 256 bytes without NUL is refused TooLong, one byte at a time too", () => {
    expect(request(feedWhole(bytes(4, 1, port(80), 1, 2, 3, 4, new Uint8Array(255).fill(0x61), 0))).request.userId)
      .toHaveLength(255)
    const input = bytes(4, 1, port(80), 1, 2, 3, 4, new Uint8Array(10_000).fill(0x61))
    let state = initialSocksServer
    for (let i = 0; i < input.length; i++) {
      const [next, steps] = feedSocksServer(state, input.subarray(i, i + 1))
      state = next
      if (steps.length > 0) {
        expect(i).toBe(8 + 255) // the 256th user id byte decides
        expect(plain(steps[0])).toMatchObject({ reason: "TooLong", reply: [0, 0x5b, 0, 0, 0, 0, 0, 0] })
        return
      }
    }
    expect.unreachable("no refusal")
  })

  it("a SOCKS4a host name of 256 bytes without NUL is refused TooLong", () => {
    const steps = feedWhole(bytes(4, 1, port(80), 0, 0, 0, 1, 0, new Uint8Array(300).fill(0x62)))
    expect(refusal(steps)).toMatchObject({ reason: "TooLong", reply: [0, 0x5b, 0, 0, 0, 0, 0, 0] })
  })
})

describe("other protocols", () => {
  it("an HTTP request on the SOCKS port is refused without a reply, and the detail says so", () => {
    expect(feedWhole(bytes("GET / HTTP/1.1\r\n\r\n"))).toEqual([
      {
        _tag: "Refuse",
        reason: "UnsupportedVersion",
        detail: "first byte 0x47 is not SOCKS4 or SOCKS5 (an HTTP client?)",
        reply: undefined
      }
    ])
  })

  it("a TLS ClientHello is refused without a reply and without the HTTP hint", () => {
    expect(refusal(feedWhole(bytes(0x16, 3, 1)))).toEqual({
      _tag: "Refuse",
      reason: "UnsupportedVersion",
      detail: "first byte 0x16 is not SOCKS4 or SOCKS5",
      reply: undefined
    })
  })

  it("nothing fed, nothing decided", () => {
    const [state, steps] = feedSocksServer(initialSocksServer, new Uint8Array(0))
    expect(steps).toEqual([])
    expect(state).toBe(initialSocksServer)
  })
})

describe("replies", () => {
  it.each([
    ["the default bound 0.0.0.0:0", 5, 0, undefined, [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]],
    ["an IPv4 bound", 5, 0, { addressType: "ipv4", host: "127.0.0.1", port: 9050 }, [5, 0, 0, 1, 127, 0, 0, 1, 0x23, 0x5a]],
    [
      "an IPv6 bound",
      5,
      4,
      { addressType: "ipv6", host: "2001:db8::1", port: 1 },
      [5, 4, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]
    ],
    [
      "an IPv4-mapped IPv6 bound in mixed notation",
      5,
      0,
      { addressType: "ipv6", host: "::ffff:1.2.3.4", port: 0 },
      [5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4, 0, 0]
    ],
    ["a domain bound", 5, 0, { addressType: "domain", host: "a.bc", port: 80 }, [5, 0, 0, 3, 4, 0x61, 0x2e, 0x62, 0x63, 0, 80]],
    ["an unparsable IPv4 bound, as zeros", 5, 1, { addressType: "ipv4", host: "nope", port: 0 }, [5, 1, 0, 1, 0, 0, 0, 0, 0, 0]],
    ["SOCKS4 granted with a resolved IPv4", 4, 0x5a, { addressType: "ipv4", host: "1.2.3.4", port: 0 }, [0, 0x5a, 0, 0, 1, 2, 3, 4]],
    ["SOCKS4 rejected", 4, 0x5b, undefined, [0, 0x5b, 0, 0, 0, 0, 0, 0]],
    ["SOCKS4 with a non-IPv4 bound keeps the port, zero IP", 4, 0x5a, { addressType: "ipv6", host: "::1", port: 443 }, [0, 0x5a, 1, 0xbb, 0, 0, 0, 0]]
  ] as const)("encodes %s", (_, version, code, bound, expected) => {
    expect(Array.from(socksReply(version, code, bound))).toEqual(expected)
  })

  it("failure codes map to SOCKS4 as granted or rejected", () => {
    expect(failureCode(5, SocksReplyCode.hostUnreachable)).toBe(0x04)
    expect(failureCode(5, 0xf6)).toBe(0xf6)
    expect(failureCode(4, SocksReplyCode.succeeded)).toBe(0x5a)
    expect(failureCode(4, SocksReplyCode.connectionRefused)).toBe(0x5b)
  })

  it.each([
    [5, 0x00, "succeeded"],
    [5, 0x01, "general SOCKS server failure"],
    [5, 0x02, "connection not allowed by ruleset"],
    [5, 0x03, "network unreachable"],
    [5, 0x04, "host unreachable"],
    [5, 0x05, "connection refused"],
    [5, 0x06, "TTL expired"],
    [5, 0x07, "command not supported"],
    [5, 0x08, "address type not supported"],
    [5, 0xf0, "onion service descriptor can not be found"],
    [5, 0xf1, "onion service descriptor is invalid"],
    [5, 0xf2, "onion service introduction failed"],
    [5, 0xf3, "onion service rendezvous failed"],
    [5, 0xf4, "onion service missing client authorization"],
    [5, 0xf5, "onion service wrong client authorization"],
    [5, 0xf6, "onion service invalid address"],
    [5, 0xf7, "onion service introduction timed out"],
    [5, 0x09, "unknown reply 0x09"],
    [5, 0xf8, "unknown reply 0xf8"],
    [4, 0x5a, "request granted"],
    [4, 0x5b, "request rejected or failed"],
    [4, 0x5c, "cannot connect to identd"],
    [4, 0x5d, "different user-ids"],
    [4, 0x00, "unknown reply 0x00"]
  ] as const)("SOCKS%s reply code %i reads %j", (version, code, name) => {
    expect(socksReplyName(version, code)).toBe(name)
  })
})

// ---------------------------------------------------------------------------------------
// Properties

const bytesWithoutNul = (minLength: number) =>
  fc.uint8Array({ minLength, maxLength: 255 }).map((b) => b.map((byte) => byte === 0 ? 1 : byte))

const ipv6Groups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8
})

/** A valid handshake, the request it encodes and the bytes sent after it. */
interface Handshake {
  readonly input: Uint8Array
  readonly expected: Record<string, unknown>
  readonly trailing: Uint8Array
}

/** An address on the wire and the text it decodes to; IPv6 text comes from Node's WHATWG URL (RFC 5952 too). */
const socks5Address = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((ip) => ({
    wire: bytes(1, ip),
    addressType: "ipv4",
    host: Array.from(ip).join(".")
  })),
  fc.uint8Array({ minLength: 1, maxLength: 255 }).map((name) => ({
    wire: bytes(3, name.length, name),
    addressType: "domain",
    host: String.fromCharCode(...name)
  })),
  ipv6Groups.map((groups) => ({
    wire: bytes(4, groups.flatMap(port)),
    addressType: "ipv6",
    host: new URL(`http://[${groups.map((g) => g.toString(16)).join(":")}]/`).hostname.slice(1, -1)
  }))
)

const socks5Handshake: fc.Arbitrary<Handshake> = fc
  .record({
    others: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 30 }),
    accepted: fc.constantFrom(0x00, 0x02),
    at: fc.nat(),
    username: fc.uint8Array({ maxLength: 255 }),
    password: fc.uint8Array({ maxLength: 255 }),
    command: fc.constantFrom([1, "connect"], [2, "bind"], [3, "udpAssociate"], [0xf0, "resolve"], [0xf1, "resolvePtr"]),
    rsv: fc.integer({ min: 0, max: 255 }),
    address: socks5Address,
    port: fc.integer({ min: 0, max: 0xffff }),
    trailing: fc.uint8Array({ maxLength: 40 })
  })
  .map((h) => {
    const methods = [...h.others]
    methods.splice(h.at % (methods.length + 1), 0, h.accepted)
    const withAuth = methods.includes(2)
    const input = bytes(
      5,
      methods.length,
      methods,
      withAuth ? bytes(1, h.username.length, h.username, h.password.length, h.password) : [],
      5,
      h.command[0],
      h.rsv,
      h.address.wire,
      port(h.port),
      h.trailing
    )
    const expected = {
      version: 5,
      command: h.command[1],
      addressType: h.address.addressType,
      host: h.address.host,
      port: h.port,
      methods,
      credentials: withAuth ? { username: Array.from(h.username), password: Array.from(h.password) } : undefined,
      userId: undefined
    }
    return { input, expected, trailing: h.trailing }
  })

const socks4Handshake: fc.Arbitrary<Handshake> = fc
  .record({
    command: fc.constantFrom([1, "connect"], [2, "bind"], [0xf0, "resolve"]),
    port: fc.integer({ min: 0, max: 0xffff }),
    target: fc.oneof(
      fc.uint8Array({ minLength: 4, maxLength: 4 }).filter((ip) => !(ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0)),
      fc.tuple(fc.integer({ min: 1, max: 255 }), bytesWithoutNul(1))
    ),
    userId: bytesWithoutNul(0),
    trailing: fc.uint8Array({ maxLength: 40 })
  })
  .map((h) => {
    const is4a = !(h.target instanceof Uint8Array)
    const ip = h.target instanceof Uint8Array ? h.target : bytes(0, 0, 0, h.target[0])
    const host = h.target instanceof Uint8Array ? undefined : h.target[1]
    const input = bytes(4, h.command[0], port(h.port), ip, h.userId, 0, host === undefined ? [] : bytes(host, 0), h.trailing)
    const expected = {
      version: 4,
      command: h.command[1],
      addressType: is4a ? "domain" : "ipv4",
      host: host === undefined ? Array.from(ip).join(".") : String.fromCharCode(...host),
      port: h.port,
      methods: [],
      credentials: undefined,
      userId: Array.from(h.userId)
    }
    return { input, expected, trailing: h.trailing }
  })

/** Cuts `input` at arbitrary points (empty chunks included). */
const split = (input: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [0, ...cuts.map((cut) => cut % (input.length + 1)).sort((a, b) => a - b), input.length]
  return points.slice(1).map((end, i) => input.subarray(points[i], end))
}

const cuts = fc.array(fc.nat(), { maxLength: 40 })

describe("properties", () => {
  it("every valid handshake, split anywhere, decodes to the same steps and the request it encodes", () => {
    fc.assert(
      fc.property(fc.oneof(socks5Handshake, socks4Handshake), cuts, (handshake, cutPoints) => {
        const whole = feedWhole(handshake.input)
        expect(request(whole)).toEqual({
          _tag: "Request",
          request: handshake.expected,
          rest: Array.from(handshake.trailing)
        })
        expect(feedChunks(split(handshake.input, cutPoints)).steps).toEqual(whole)
      }),
      { numRuns: 1000 }
    )
  })

  it("the same holds one byte at a time", () => {
    fc.assert(
      fc.property(fc.oneof(socks5Handshake, socks4Handshake), (handshake) => {
        const chunks = Array.from(handshake.input, (byte) => Uint8Array.of(byte))
        expect(feedChunks(chunks).steps).toEqual(feedWhole(handshake.input))
      }),
      { numRuns: 200 }
    )
  })

  const prefixes = [[], [5], [4], [5, 1, 0], [5, 1, 2], [5, 1, 2, 1], [5, 1, 0, 5, 1, 0], [5, 1, 0, 5, 1, 0, 3], [4, 1]]
  const arbitraryInput = fc
    .tuple(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 1200 }))
    .map(([prefix, tail]) => bytes(prefix, tail))

  it("arbitrary bytes in arbitrary chunks never throw, split the same as whole, and end terminal after a Refuse", () => {
    fc.assert(
      fc.property(arbitraryInput, cuts, (input, cutPoints) => {
        const whole = feedWhole(input)
        const chunked = feedChunks(split(input, cutPoints))
        expect(chunked.steps).toEqual(whole)
        const last = whole[whole.length - 1]
        if (last !== undefined && last._tag !== "Reply") {
          expect(feedSocksServer(chunked.state, Uint8Array.of(5, 1, 0))[1]).toEqual([])
        }
        if (last?._tag === "Refuse" && last.reply !== undefined) {
          expect([[5, 0xff], [1, 1]].some((r) => r.join() === last.reply?.join()) || last.reply.length >= 8).toBe(true)
        }
      }),
      { numRuns: 2000 }
    )
  })

  it("fed more than a whole handshake needs, the decoder has decided, and it never buffers more than one message", () => {
    // Greeting 257 + credentials 513 + request 262 bytes at most: past that there is always an end.
    const longInput = fc
      .tuple(fc.constantFrom(...prefixes), fc.uint8Array({ minLength: 1040, maxLength: 1500 }))
      .map(([prefix, tail]) => bytes(prefix, tail))
    fc.assert(
      fc.property(longInput, cuts, (input, cutPoints) => {
        let state = initialSocksServer
        let ended = false
        for (const chunk of split(input, cutPoints)) {
          const [next, steps] = feedSocksServer(state, chunk)
          state = next
          ended ||= steps.some((step) => step._tag !== "Reply")
          expect(state.pending.length).toBeLessThanOrEqual(520)
        }
        expect(ended).toBe(true)
      }),
      { numRuns: 300 }
    )
  })
})
