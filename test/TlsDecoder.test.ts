import { describe, expect, it } from "@effect/vitest"
import * as net from "node:net"
import * as tls from "node:tls"
import * as fc from "fast-check"
import { type DecoderEvent, detailOf, type Direction, type EventType } from "../src/domain/Event.js"
import { feedTls, initialTlsDecoder, tlsDecoderDone, type TlsDecoderState } from "../src/domain/TlsDecoder.js"
import { selfSigned } from "./support/SelfSigned.js"

// --- building TLS bytes by hand ---

const bytes = (...parts: ReadonlyArray<Uint8Array | ReadonlyArray<number>>): Uint8Array =>
  new Uint8Array(Buffer.concat(parts.map((part) => Uint8Array.from(part))))
const u16 = (n: number): Array<number> => [n >> 8, n & 0xff]
const u24 = (n: number): Array<number> => [n >> 16, (n >> 8) & 0xff, n & 0xff]
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0))

const record = (type: number, body: Uint8Array, version = 0x0303): Uint8Array =>
  bytes([type], u16(version), u16(body.length), body)
const handshake = (type: number, body: Uint8Array): Uint8Array => bytes([type], u24(body.length), body)
const extension = (type: number, data: Uint8Array): Uint8Array => bytes(u16(type), u16(data.length), data)
const withLength16 = (data: Uint8Array): Uint8Array => bytes(u16(data.length), data)

const sniExtension = (host: string): Uint8Array => {
  const name = ascii(host)
  return extension(0, withLength16(bytes([0], u16(name.length), name)))
}
const alpnExtension = (protocols: ReadonlyArray<string>): Uint8Array =>
  extension(16, withLength16(bytes(...protocols.map((p) => bytes([p.length], ascii(p))))))

interface ClientHelloSpec {
  readonly sni?: string
  readonly alpn?: ReadonlyArray<string>
  readonly versions?: ReadonlyArray<number>
  readonly extra?: ReadonlyArray<Uint8Array>
}
const clientHello = (spec: ClientHelloSpec = {}): Uint8Array => {
  const extensions: Array<Uint8Array> = [...(spec.extra ?? [])]
  if (spec.sni !== undefined) extensions.push(sniExtension(spec.sni))
  if (spec.alpn !== undefined) extensions.push(alpnExtension(spec.alpn))
  if (spec.versions !== undefined) {
    extensions.push(extension(43, bytes([spec.versions.length * 2], ...spec.versions.map(u16))))
  }
  const body = bytes(
    u16(0x0303),
    new Uint8Array(32).fill(7),
    [32],
    new Uint8Array(32).fill(9),
    withLength16(bytes(u16(0x1301), u16(0x1302), u16(0xc02f))),
    [1, 0],
    withLength16(bytes(...extensions))
  )
  return handshake(1, body)
}

const HRR_RANDOM = Uint8Array.from(
  Buffer.from("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C", "hex")
)

interface ServerHelloSpec {
  readonly suite: number
  readonly supportedVersion?: number
  readonly alpn?: string
  readonly random?: Uint8Array
}
const serverHello = (spec: ServerHelloSpec): Uint8Array => {
  const extensions: Array<Uint8Array> = []
  if (spec.supportedVersion !== undefined) extensions.push(extension(43, Uint8Array.from(u16(spec.supportedVersion))))
  if (spec.alpn !== undefined) extensions.push(alpnExtension([spec.alpn]))
  return handshake(
    2,
    bytes(
      u16(0x0303),
      spec.random ?? new Uint8Array(32).fill(3),
      [0],
      u16(spec.suite),
      [0],
      withLength16(bytes(...extensions))
    )
  )
}

const HANDSHAKE = 22
const CCS = record(20, Uint8Array.of(1))
const appData = (n: number) => record(23, new Uint8Array(n).fill(0xaa))

// --- feeding ---

type Step = readonly [Direction, Uint8Array]

/** An event as its log line shows it: the type and the display text made from its fields. */
interface Seen {
  readonly type: EventType
  readonly detail: string
}

const run = (steps: ReadonlyArray<Step>, start: TlsDecoderState = initialTlsDecoder) => {
  let state = start
  const typed: Array<DecoderEvent> = []
  for (const [direction, chunk] of steps) {
    const [next, out] = feedTls(state, direction, chunk)
    state = next
    typed.push(...out)
  }
  const events: Array<Seen> = typed.map((event) => ({ type: event.type, detail: detailOf(event) }))
  return { events, typed, state, done: tlsDecoderDone(state) }
}

const clientHelloEvent = (detail: string): Seen => ({ type: "TlsClientHello", detail })
const serverHelloEvent = (detail: string): Seen => ({ type: "TlsServerHello", detail })
const appDataEvent = (direction: Direction): Seen => ({
  type: "TlsApplicationData",
  detail: `first application data ${direction}`
})
const decodeError = (detail: string): Seen => ({ type: "DecodeError", detail: `TlsParseError: ${detail}` })

/** A TLS 1.3 conversation as the relay would see it, one step per write. */
const tls13Conversation: ReadonlyArray<Step> = [
  ["up", record(HANDSHAKE, clientHello({ sni: "example.com", alpn: ["h2", "http/1.1"], versions: [0x0304, 0x0303] }), 0x0301)],
  ["down", bytes(record(HANDSHAKE, serverHello({ suite: 0x1301, supportedVersion: 0x0304 })), CCS, appData(40))],
  ["up", bytes(CCS, appData(60))],
  ["down", appData(100)]
]
const tls13Events: ReadonlyArray<Seen> = [
  clientHelloEvent("SNI example.com, ALPN h2,http/1.1, versions TLS 1.3,TLS 1.2"),
  serverHelloEvent("TLS 1.3, cipher TLS_AES_128_GCM_SHA256 (0x1301)"),
  appDataEvent("down"),
  appDataEvent("up")
]

/** Cuts a chunk at the given points (taken modulo its length). */
const cut = (chunk: Uint8Array, points: ReadonlyArray<number>): Array<Uint8Array> => {
  const at = [...new Set(points.map((p) => p % (chunk.length + 1)))].sort((a, b) => a - b)
  const pieces: Array<Uint8Array> = []
  let from = 0
  for (const p of [...at, chunk.length]) {
    pieces.push(chunk.subarray(from, p))
    from = p
  }
  return pieces
}

// --- real bytes from Node ---

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

/** The bytes Node's TLS client sends first: a real ClientHello. */
const captureClientHello = async (options: tls.ConnectionOptions): Promise<Uint8Array> => {
  const received: Array<Buffer> = []
  let done!: () => void
  const got = new Promise<void>((resolve) => (done = resolve))
  const server = net.createServer((socket) => {
    socket.on("data", (data) => {
      received.push(data)
      const all = Buffer.concat(received)
      if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
        done()
        socket.destroy()
      }
    })
  })
  const port = await listen(server)
  const client = tls.connect({ ...options, host: "127.0.0.1", port })
  client.on("error", () => {})
  await got
  client.destroy()
  server.close()
  return new Uint8Array(Buffer.concat(received))
}

/** A full handshake and one echo through a recording relay; returns the relayed chunks in order. */
const recordRealHandshake = async (maxVersion: tls.SecureVersion): Promise<Array<Step>> => {
  const { cert, key } = selfSigned()
  const server = tls.createServer({ key, cert, ALPNProtocols: ["h2"], maxVersion }, (socket) => {
    socket.on("data", (data) => socket.write(data))
    socket.on("error", () => {})
  })
  const serverPort = await listen(server)
  const steps: Array<Step> = []
  const relay = net.createServer((inbound) => {
    const outbound = net.connect(serverPort, "127.0.0.1")
    inbound.on("data", (d) => {
      steps.push(["up", new Uint8Array(d)])
      outbound.write(d)
    })
    outbound.on("data", (d) => {
      steps.push(["down", new Uint8Array(d)])
      inbound.write(d)
    })
    inbound.on("error", () => outbound.destroy())
    outbound.on("error", () => inbound.destroy())
    inbound.on("close", () => outbound.destroy())
    outbound.on("close", () => inbound.destroy())
  })
  const relayPort = await listen(relay)
  await new Promise<void>((resolve, reject) => {
    const client = tls.connect({
      host: "127.0.0.1",
      port: relayPort,
      servername: "example.com",
      ALPNProtocols: ["h2", "http/1.1"],
      rejectUnauthorized: false
    })
    client.on("error", reject)
    client.on("secureConnect", () => client.write("ping"))
    client.on("data", () => {
      client.end()
      resolve()
    })
  })
  relay.close()
  server.close()
  return steps
}

describe("TlsDecoder", () => {
  describe("ClientHello", () => {
    it("Node's real ClientHello gives SNI, offered ALPN and supported versions", async () => {
      const hello = await captureClientHello({ servername: "example.com", ALPNProtocols: ["h2", "http/1.1"] })
      const { events, done } = run([["up", hello]])
      expect(events).toEqual([clientHelloEvent("SNI example.com, ALPN h2,http/1.1, versions TLS 1.3,TLS 1.2")])
      expect(done).toBe(false)
    })

    it("a ClientHello without SNI or ALPN says none; GREASE versions and extensions are skipped", () => {
      const grease = extension(0x3a3a, new Uint8Array(0))
      const hello = clientHello({ versions: [0x1a1a, 0x0304, 0x0303, 0x0302], extra: [grease] })
      expect(run([["up", record(HANDSHAKE, hello)]]).events).toEqual([
        clientHelloEvent("SNI none, ALPN none, versions TLS 1.3,TLS 1.2,TLS 1.1")
      ])
    })

    it("the hellos' facts are typed fields: SNI, ALPN offered and versions; version, cipher and ALPN chosen", () => {
      const { typed } = run([
        ["up", record(HANDSHAKE, clientHello({ sni: "typed.test", alpn: ["h2", "http/1.1"], versions: [0x0304, 0x0303] }))],
        ["down", record(HANDSHAKE, serverHello({ suite: 0xc02f, alpn: "h2" }))]
      ])
      expect(typed).toEqual([
        { type: "TlsClientHello", sni: "typed.test", alpn: ["h2", "http/1.1"], versions: ["TLS 1.3", "TLS 1.2"] },
        { type: "TlsServerHello", tlsVersion: "TLS 1.2", cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xc02f)", alpn: "h2", helloRetryRequest: false }
      ])
    })

    it("a DecodeError carries the typed error, with where in that direction's stream the bad record began", () => {
      const { typed } = run([["up", CCS], ["up", Uint8Array.of(99, 3, 3, 0, 1, 0)]])
      expect(typed.at(-1)).toEqual({
        type: "DecodeError",
        error: { _tag: "TlsParseError", reason: "Record", message: "bad record type 99", offset: CCS.length }
      })
    })

    it("unknown versions are shown in hex", () => {
      const hello = clientHello({ sni: "a.test", versions: [0x7f1c, 0x0304] })
      expect(run([["up", record(HANDSHAKE, hello)]]).events).toEqual([
        clientHelloEvent("SNI a.test, ALPN none, versions 0x7f1c,TLS 1.3")
      ])
    })

    it("without supported_versions the legacy version is the offer", () => {
      const hello = clientHello({ sni: "old.test", alpn: ["http/1.1"] })
      expect(run([["up", record(HANDSHAKE, hello)]]).events).toEqual([
        clientHelloEvent("SNI old.test, ALPN http/1.1, versions TLS 1.2")
      ])
    })

    it("a ClientHello split over two records (inside its handshake header) is one event", () => {
      const hello = clientHello({ sni: "split.test", alpn: ["h2"], versions: [0x0304] })
      const stream = bytes(record(HANDSHAKE, hello.subarray(0, 2)), record(HANDSHAKE, hello.subarray(2)))
      expect(run([["up", stream]]).events).toEqual([clientHelloEvent("SNI split.test, ALPN h2, versions TLS 1.3")])
    })

    it("a ClientHello over many small records and chunks is one event", () => {
      const hello = clientHello({ sni: "many.test", versions: [0x0304] })
      const records: Array<Uint8Array> = []
      for (let i = 0; i < hello.length; i += 7) records.push(record(HANDSHAKE, hello.subarray(i, i + 7)))
      const stream = bytes(...records)
      const steps: Array<Step> = Array.from(stream, (b) => ["up", Uint8Array.of(b)] as const)
      expect(run(steps).events).toEqual([clientHelloEvent("SNI many.test, ALPN none, versions TLS 1.3")])
    })
  })

  describe("ServerHello", () => {
    it("TLS 1.3: the version comes from supported_versions and ALPN is not visible", () => {
      const hello = serverHello({ suite: 0x1302, supportedVersion: 0x0304, alpn: "h2" })
      expect(run([["down", record(HANDSHAKE, hello)]]).events).toEqual([
        serverHelloEvent("TLS 1.3, cipher TLS_AES_256_GCM_SHA384 (0x1302)")
      ])
    })

    it("TLS 1.2: the legacy version, an ECDHE suite and the chosen ALPN", () => {
      const hello = serverHello({ suite: 0xc02f, alpn: "h2" })
      expect(run([["down", record(HANDSHAKE, hello)]]).events).toEqual([
        serverHelloEvent("TLS 1.2, cipher TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xc02f), ALPN h2")
      ])
    })

    it("an unknown cipher suite is shown in hex", () => {
      expect(run([["down", record(HANDSHAKE, serverHello({ suite: 0x1234 }))]]).events).toEqual([
        serverHelloEvent("TLS 1.2, cipher 0x1234")
      ])
    })

    it("a HelloRetryRequest is reported, and so are the second ClientHello and the real ServerHello", () => {
      const { events } = run([
        ["up", record(HANDSHAKE, clientHello({ sni: "hrr.test", versions: [0x0304] }), 0x0301)],
        ["down", record(HANDSHAKE, serverHello({ suite: 0x1301, supportedVersion: 0x0304, random: HRR_RANDOM }))],
        ["down", CCS],
        ["up", bytes(CCS, record(HANDSHAKE, clientHello({ sni: "hrr.test", versions: [0x0304] })))],
        ["down", record(HANDSHAKE, serverHello({ suite: 0x1301, supportedVersion: 0x0304 }))]
      ])
      expect(events).toEqual([
        clientHelloEvent("SNI hrr.test, ALPN none, versions TLS 1.3"),
        serverHelloEvent("HelloRetryRequest, TLS 1.3, cipher TLS_AES_128_GCM_SHA256 (0x1301)"),
        clientHelloEvent("SNI hrr.test, ALPN none, versions TLS 1.3"),
        serverHelloEvent("TLS 1.3, cipher TLS_AES_128_GCM_SHA256 (0x1301)")
      ])
    })

    it("TLS 1.2: Certificate and ServerHelloDone after the hello, then an encrypted Finished, are skipped", () => {
      const certificate = handshake(11, new Uint8Array(3000).fill(0x55))
      const done = handshake(14, new Uint8Array(0))
      // Parsed as plaintext, these bytes would be a 131586-byte ServerHello: an error.
      const encryptedFinished = record(HANDSHAKE, new Uint8Array(40).fill(0x02))
      const { events } = run([
        ["down", bytes(record(HANDSHAKE, bytes(serverHello({ suite: 0xc030 }), certificate.subarray(0, 100))))],
        ["down", record(HANDSHAKE, bytes(certificate.subarray(100), done))],
        ["down", bytes(CCS, encryptedFinished, appData(10))]
      ])
      expect(events).toEqual([
        serverHelloEvent("TLS 1.2, cipher TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (0xc030)"),
        appDataEvent("down")
      ])
    })
  })

  it("TLS 1.2: the client's encrypted Finished after its ChangeCipherSpec is not parsed", () => {
    const { events } = run([
      ["up", record(HANDSHAKE, clientHello({ sni: "tls12.test" }))],
      ["down", record(HANDSHAKE, serverHello({ suite: 0xc02f }))],
      ["up", bytes(CCS, record(HANDSHAKE, new Uint8Array(40).fill(0x01)))]
    ])
    expect(events.map((e) => e.type)).toEqual(["TlsClientHello", "TlsServerHello"])
  })

  describe("application data and the end of decoding", () => {
    it("the first application-data record each way is reported once, then the decoder is done", () => {
      const { events, state, done } = run(tls13Conversation)
      expect(events).toEqual(tls13Events)
      expect(done).toBe(true)
      expect(run([["up", appData(5)], ["down", ascii("garbage that is not TLS")]], state).events).toEqual([])
    })

    it("after one direction's application data, only the other direction still reports", () => {
      const { events, done } = run([
        ["up", appData(5)],
        ["up", appData(5)],
        ["up", ascii("no longer parsed")]
      ])
      expect(events).toEqual([appDataEvent("up")])
      expect(done).toBe(false)
    })

    it("alerts and ChangeCipherSpec are ignored", () => {
      const alert = record(21, Uint8Array.of(2, 40))
      expect(run([["down", bytes(CCS, alert)], ["up", alert]]).events).toEqual([])
    })

    it("feeding the same state twice gives the same result (the state is a value)", () => {
      const hello = record(HANDSHAKE, clientHello({ sni: "twice.test" }))
      const [half] = feedTls(initialTlsDecoder, "up", hello.subarray(0, 50))
      const first = feedTls(half, "up", hello.subarray(50))
      const second = feedTls(half, "up", hello.subarray(50))
      expect(first[1]).toEqual(second[1])
      expect(first[1]).toHaveLength(1)
    })
  })

  describe("decode errors", () => {
    const cases: ReadonlyArray<readonly [string, Step, string]> = [
      ["plain HTTP is a bad record type", ["up", ascii("GET / HTTP/1.1\r\n\r\n")], "bad record type 71"],
      ["a record version with major != 3", ["up", Uint8Array.of(22, 2, 0, 0, 1, 0)], "bad record version 0x0200"],
      ["a record over 2^14 + 2048 bytes", ["down", Uint8Array.of(23, 3, 3, 0x48, 0x01)], "record of 18433 bytes is too long"],
      [
        "a ClientHello over 64 KiB",
        ["up", record(HANDSHAKE, Uint8Array.of(1, ...u24(65537)))],
        "ClientHello of 65537 bytes is too long"
      ],
      [
        "a ClientHello with a 40-byte session id",
        ["up", record(HANDSHAKE, handshake(1, bytes(u16(0x0303), new Uint8Array(32), [40], new Uint8Array(40))))],
        "malformed ClientHello: session id of 40 bytes"
      ],
      [
        "a ServerHello cut short",
        ["down", record(HANDSHAKE, handshake(2, bytes(u16(0x0303), new Uint8Array(10))))],
        "malformed ServerHello: ServerHello is truncated"
      ],
      [
        "an extension longer than its block",
        ["up", record(HANDSHAKE, handshake(1, bytes(clientHello().subarray(4, 4 + 2 + 32 + 33 + 8 + 2), u16(4), u16(0), u16(9))))],
        "malformed ClientHello: extensions is truncated"
      ],
      [
        "cipher suites of an odd length",
        ["up", record(HANDSHAKE, handshake(1, bytes(u16(0x0303), new Uint8Array(32), [0], u16(3), [1, 2, 3], [1, 0])))],
        "malformed ClientHello: cipher suites of 3 bytes"
      ],
      [
        "no compression methods",
        ["up", record(HANDSHAKE, handshake(1, bytes(u16(0x0303), new Uint8Array(32), [0], u16(2), u16(0x1301), [0])))],
        "malformed ClientHello: no compression methods"
      ],
      [
        "an empty ALPN protocol name",
        ["up", record(HANDSHAKE, clientHello({ extra: [extension(16, withLength16(Uint8Array.of(2, 0x68, 0x32, 0)))] }))],
        "malformed ClientHello: empty ALPN protocol name"
      ],
      [
        "supported_versions of an odd length",
        ["up", record(HANDSHAKE, clientHello({ extra: [extension(43, Uint8Array.of(3, 3, 4, 3))] }))],
        "malformed ClientHello: supported_versions of 3 bytes"
      ],
      [
        "a server_name extension with bytes after its list",
        ["up", record(HANDSHAKE, clientHello({ extra: [extension(0, bytes(withLength16(bytes([0], u16(1), ascii("a"))), [0]))] }))],
        "malformed ClientHello: extension 0 has 1 extra bytes"
      ],
      [
        "a ServerHello choosing two ALPN protocols",
        ["down", record(HANDSHAKE, handshake(2, bytes(u16(0x0303), new Uint8Array(32), [0], u16(0x1301), [0], withLength16(alpnExtension(["h2", "x"])))))],
        "malformed ServerHello: ALPN with 2 protocols"
      ],
      [
        "a name list longer than its extension, then a good extension: the first failure is the one told",
        ["up", record(HANDSHAKE, clientHello({ extra: [extension(0, bytes(u16(40), [0])), alpnExtension(["h2"])] }))],
        "malformed ClientHello: extension 0 is truncated"
      ]
    ]
    for (const [name, step, detail] of cases) {
      it(`${name} is one DecodeError, and then the decoder is done`, () => {
        const { events, state, done } = run([step])
        expect(events).toEqual([decodeError(detail)])
        expect(done).toBe(true)
        expect(run([["up", appData(1)], ["down", appData(1)]], state).events).toEqual([])
      })
    }

    it("a ClientHello of exactly 64 KiB is accepted (padding extension)", () => {
      const base = clientHello({ sni: "big.test" })
      const padLength = 65536 - (base.length - 4) - 4
      const hello = clientHello({ sni: "big.test", extra: [extension(21, new Uint8Array(padLength))] })
      expect(hello.length - 4).toBe(65536)
      const records: Array<Uint8Array> = []
      for (let i = 0; i < hello.length; i += 16384) records.push(record(HANDSHAKE, hello.subarray(i, i + 16384)))
      expect(run([["up", bytes(...records)]]).events).toEqual([
        clientHelloEvent("SNI big.test, ALPN none, versions TLS 1.2")
      ])
    })
  })

  describe("properties", () => {
    it("every split of a conversation into chunks gives the same events", () => {
      const stepsArb = fc.array(fc.array(fc.nat(), { maxLength: 12 }), {
        minLength: tls13Conversation.length,
        maxLength: tls13Conversation.length
      })
      fc.assert(
        fc.property(stepsArb, (cutsPerStep) => {
          const steps = tls13Conversation.flatMap(([direction, chunk], i) =>
            cut(chunk, cutsPerStep[i]).map((piece) => [direction, piece] as const)
          )
          expect(run(steps).events).toEqual(tls13Events)
        }),
        { numRuns: 300 }
      )
    })

    it("arbitrary bytes never throw and give at most one DecodeError", () => {
      const stepArb = fc.tuple(
        fc.constantFrom<Direction>("up", "down"),
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          // Mostly-valid record headers, so the hello parsers see junk too.
          fc
            .tuple(fc.constantFrom(20, 21, 22, 23), fc.uint8Array({ maxLength: 200 }))
            .map(([type, body]) => record(type, body)),
          fc.uint8Array({ maxLength: 120 }).map((body) => record(HANDSHAKE, handshake(1, body))),
          fc.uint8Array({ maxLength: 120 }).map((body) => record(HANDSHAKE, handshake(2, body)))
        )
      )
      fc.assert(
        fc.property(fc.array(stepArb, { maxLength: 12 }), (steps) => {
          const { events, done } = run(steps)
          const errors = events.filter((e) => e.type === "DecodeError")
          expect(errors.length).toBeLessThanOrEqual(1)
          if (errors.length === 1) {
            expect(events[events.length - 1]).toBe(errors[0])
            expect(done).toBe(true)
          }
        }),
        { numRuns: 1000 }
      )
    })
  })

  describe("a real handshake through a loopback relay", () => {
    it("TLS 1.3: both hellos, then the first application data each way", async () => {
      const { events, done } = run(await recordRealHandshake("TLSv1.3"))
      expect(events[0]).toEqual(clientHelloEvent("SNI example.com, ALPN h2,http/1.1, versions TLS 1.3,TLS 1.2"))
      expect(events[1].type).toBe("TlsServerHello")
      expect(events[1].detail).toMatch(/^TLS 1\.3, cipher TLS_\w+ \(0x130[123]\)$/)
      expect(events.slice(2)).toEqual(expect.arrayContaining([appDataEvent("up"), appDataEvent("down")]))
      expect(events).toHaveLength(4)
      expect(done).toBe(true)
    })

    it("TLS 1.2: the ServerHello shows the chosen ALPN", async () => {
      const { events, done } = run(await recordRealHandshake("TLSv1.2"))
      expect(events[0]).toEqual(clientHelloEvent("SNI example.com, ALPN h2,http/1.1, versions TLS 1.3,TLS 1.2"))
      expect(events[1].type).toBe("TlsServerHello")
      expect(events[1].detail).toMatch(/^TLS 1\.2, cipher TLS_ECDHE_\w+ \(0x[0-9a-f]{4}\), ALPN h2$/)
      expect(events).toHaveLength(4)
      expect(done).toBe(true)
    })
  })
})
