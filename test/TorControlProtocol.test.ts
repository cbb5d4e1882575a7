import { describe, expect, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import fc from "fast-check"
import * as crypto from "node:crypto"
import {
  type AsyncReply,
  ControlCommand,
  type ControlMessage,
  decodeAuthChallenge,
  decodeCircuitStatus,
  decodeEvent,
  decodeGetInfo,
  decodeProtocolInfo,
  encodeCommand,
  makeControlReplyParser,
  maxLineLength,
  parseArguments,
  parsePath,
  safeCookieClientHash,
  safeCookieServerHash,
  type SyncReply,
  type TorEvent,
  unquote,
  verifySafeCookieServerHash
} from "../src/domain/TorControlProtocol.js"
import { decodeQstring, FP, ISO, path3 } from "./support/TorLines.js"


const transcript = [
  "250-PROTOCOLINFO 1",
  "250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/tmp/mitm-tor-86bXWH/client/control_auth_cookie\"",
  "250-VERSION Tor=\"0.4.9.11\"",
  "250 OK",
  "250 AUTHCHALLENGE SERVERHASH=87EB6BE76DF4F47FA4F4BF45C557EB7A654BF9A764001DF24B16F819802D2B35 SERVERNONCE=9AF0ECAFBB6DEECABCDD998EA0D8D57113F6ECDFBEC8F11B00C965DD8088CC51",
  "250 OK",
  "250-version=0.4.9.11",
  "250 OK",
  "250 OK",
  "250+circuit-status=",
  `1 BUILT $${FP.auth0}~auth0 BUILD_FLAGS=ONEHOP_TUNNEL,IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:21:18.419673`,
  `43 BUILT ${path3} BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_LINKED TIME_CREATED=2026-12-01T14:21:59.512402 CONFLUX_ID=0153DD4BF1EFDB76C95026FE8899E04F CONFLUX_RTT=14058`,
  `44 BUILT $${FP.auth1}~auth1,$${FP.auth2}~auth2,$${FP.exit0}~exit0 BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_LINKED TIME_CREATED=2026-12-01T14:21:59.512534 CONFLUX_ID=0153DD4BF1EFDB76C95026FE8899E04F CONFLUX_RTT=15281`,
  ".",
  "250 OK",
  "650 CIRC 48 FAILED BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY,NEED_UPTIME PURPOSE=HS_VANGUARDS TIME_CREATED=2026-12-01T14:22:00.511036 REASON=NOPATH",
  `650 STREAM 21 NEW 0 127.0.0.1:43957 SOURCE_ADDR=127.0.0.1:55882 PURPOSE=USER ${ISO}`,
  `650 STREAM 21 SENTCONNECT 43 127.0.0.1.${FP.exit0}.exit:43957 ${ISO}`,
  `650 STREAM 21 REMAP 43 127.0.0.1.${FP.exit0}.exit:43957 SOURCE=EXIT ${ISO}`,
  `650 STREAM 21 SUCCEEDED 43 127.0.0.1.${FP.exit0}.exit:43957 ${ISO}`,
  `650 STREAM 21 CLOSED 43 127.0.0.1.${FP.exit0}.exit:43957 REASON=END REMOTE_REASON=DONE ${ISO}`,
  "650 CIRC 49 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:22:00.868824",
  `650 CIRC 49 EXTENDED $${FP.auth2}~auth2 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:22:00.868824 SOCKS_USERNAME="alice" SOCKS_PASSWORD="p"`,
  "650 CIRC_BW ID=43 READ=5090 WRITTEN=3563 TIME=2026-12-01T14:22:01.727179 DELIVERED_READ=334 OVERHEAD_READ=4646 DELIVERED_WRITTEN=225 OVERHEAD_WRITTEN=3261 SS=1 CWND=124 RTT=0 MIN_RTT=0",
  `650 CIRC_MINOR 274 PURPOSE_CHANGED ${path3} BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_LINKED TIME_CREATED=2026-12-01T14:22:01.523498 CONFLUX_ID=CB7B13F1D21C678B6319C62049078F32 OLD_PURPOSE=CONFLUX_UNLINKED`,
  `650 STREAM 25 DETACHED 43 127.0.0.1:1 REASON=END REMOTE_REASON=MISC ${ISO}`,
  `650 STREAM 25 FAILED 0 127.0.0.1:1 REASON=CANT_ATTACH ${ISO}`,
  `650 STREAM 42 NEWRESOLVE 0 localhost:0 SOURCE_ADDR=127.0.0.1:37636 PURPOSE=DNS_REQUEST ${ISO}`,
  `650 STREAM 42 SENTRESOLVE 274 localhost:0 ${ISO}`,
  ""
].join("\r\n")

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "latin1"))

/** Messages as plain data: replies as they are, errors as `{ _tag, reason, line }`. */
const plain = (messages: ReadonlyArray<ControlMessage>) =>
  messages.map((message) =>
    message._tag === "TorControlParseError"
      ? { _tag: message._tag, reason: message.reason, line: message.line }
      : { _tag: message._tag, status: message.status, lines: message.lines.map((line) => ({ ...line })) }
  )

const feedAll = (chunks: ReadonlyArray<Uint8Array>) => {
  const parser = makeControlReplyParser()
  return plain(chunks.flatMap((chunk) => parser.feed(chunk)))
}

const splitAt = (data: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((cut) => cut % (data.length + 1)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const point of points) {
    chunks.push(data.subarray(start, point))
    start = point
  }
  chunks.push(data.subarray(start))
  return chunks
}

const replies = (text: string) => {
  const messages = makeControlReplyParser().feed(bytes(text))
  for (const message of messages) if (message._tag === "TorControlParseError") throw message
  return messages as ReadonlyArray<SyncReply | AsyncReply>
}

const sync = (text: string): SyncReply => {
  const [reply] = replies(text)
  expect(reply._tag).toBe("SyncReply")
  return reply as SyncReply
}

const event = (line: string): TorEvent => {
  const [reply] = replies(`${line}\r\n`)
  expect(reply._tag).toBe("AsyncReply")
  return Either.getOrThrow(decodeEvent(reply as AsyncReply))
}

describe("control-port replies", () => {
  it("a recorded session gives the handshake's replies in order, data blocks unstuffed, and every event", () => {
    const messages = feedAll([bytes(transcript)])
    expect(messages.filter((m) => m._tag === "TorControlParseError")).toEqual([])
    expect(messages.flatMap((m) => (m._tag === "SyncReply" ? [m.lines.length] : []))).toEqual([
      4, 1, 1, 2, 1, 2
    ])
    expect(messages.filter((m) => m._tag === "AsyncReply")).toHaveLength(14)
    const circuitStatus = messages[5]
    expect(circuitStatus).toMatchObject({
      _tag: "SyncReply",
      status: 250,
      lines: [{ text: "circuit-status=" }, { text: "OK", data: undefined }]
    })
    if (circuitStatus._tag !== "SyncReply") throw new Error("not a reply")
    expect(circuitStatus.lines[0].data?.split("\n").map((line) => line.split(" ")[0])).toEqual(["1", "43", "44"])
  })

  it.each([
    {
      name: "an event between the lines of a GETINFO reply is its own reply, and the GETINFO reply stays whole",
      text: "250-version=0.4.9.11\r\n650 CIRC 7 LAUNCHED PURPOSE=GENERAL\r\n250 OK\r\n",
      expected: [
        { _tag: "AsyncReply", status: 650, lines: [{ text: "CIRC 7 LAUNCHED PURPOSE=GENERAL", data: undefined }] },
        {
          _tag: "SyncReply",
          status: 250,
          lines: [{ text: "version=0.4.9.11", data: undefined }, { text: "OK", data: undefined }]
        }
      ]
    },
    {
      name: "a multi-line event (650- … 650 OK) between the lines of a reply",
      text: "250-a=1\r\n650-NS\r\n650+ns=\r\nr relay1\r\n.\r\n650 OK\r\n250 OK\r\n",
      expected: [
        {
          _tag: "AsyncReply",
          status: 650,
          lines: [
            { text: "NS", data: undefined },
            { text: "ns=", data: "r relay1" },
            { text: "OK", data: undefined }
          ]
        },
        { _tag: "SyncReply", status: 250, lines: [{ text: "a=1", data: undefined }, { text: "OK", data: undefined }] }
      ]
    },
    {
      name: "a data block is dot-unstuffed and ends at a lone dot",
      text: "250+config-text=\r\n..hidden\r\nplain\r\n\r\n.\r\n250 OK\r\n",
      expected: [
        {
          _tag: "SyncReply",
          status: 250,
          lines: [{ text: "config-text=", data: ".hidden\nplain\n" }, { text: "OK", data: undefined }]
        }
      ]
    },
    {
      name: "an empty data block",
      text: "250+circuit-status=\r\n.\r\n250 OK\r\n",
      expected: [
        {
          _tag: "SyncReply",
          status: 250,
          lines: [{ text: "circuit-status=", data: "" }, { text: "OK", data: undefined }]
        }
      ]
    },
    {
      name: "an error reply",
      text: "515 Authentication failed: Password did not match HashedControlPassword value from configuration\r\n",
      expected: [{
        _tag: "SyncReply",
        status: 515,
        lines: [{
          text: "Authentication failed: Password did not match HashedControlPassword value from configuration",
          data: undefined
        }]
      }]
    },
    {
      name: "bare LF line ends are accepted",
      text: "250-version=0.4.9.11\n250 OK\n",
      expected: [{
        _tag: "SyncReply",
        status: 250,
        lines: [{ text: "version=0.4.9.11", data: undefined }, { text: "OK", data: undefined }]
      }]
    },
    {
      name: "a line that is not a status line is an error, and the next reply is read",
      text: "HTTP/1.0 400 Bad Request\r\n250 OK\r\n",
      expected: [
        { _tag: "TorControlParseError", reason: "StatusLine", line: "HTTP/1.0 400 Bad Request" },
        { _tag: "SyncReply", status: 250, lines: [{ text: "OK", data: undefined }] }
      ]
    },
    {
      name: "lines of one reply with different status codes",
      text: "250-a=1\r\n552 Unrecognized key\r\n",
      expected: [
        { _tag: "TorControlParseError", reason: "MixedStatus", line: "552 Unrecognized key" },
        { _tag: "SyncReply", status: 552, lines: [{ text: "Unrecognized key", data: undefined }] }
      ]
    }
  ])("$name", ({ expected, text }) => {
    expect(feedAll([bytes(text)])).toEqual(expected)
  })

  it("a line longer than the limit is an error, and the parser goes on at the next line", () => {
    const long = `250-${"x".repeat(maxLineLength)}\r\n`
    const whole = feedAll([bytes(`${long}250 OK\r\n`)])
    expect(whole.map((m) => m._tag === "TorControlParseError" ? m.reason : m._tag)).toEqual(["LineTooLong", "SyncReply"])
    const data = bytes(`${long}250 OK\r\n`)
    expect(feedAll(splitAt(data, [10, 70_000, 500_000, maxLineLength + 3]))).toEqual(whole)
  })

  it("the recorded session fed one byte at a time gives the same replies", () => {
    const data = bytes(transcript)
    const oneByOne = Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1))
    expect(feedAll(oneByOne)).toEqual(feedAll([data]))
  })

  it("property: the recorded session split at any points gives the same replies", () => {
    const data = bytes(transcript)
    const whole = feedAll([data])
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 60 }), (cuts) => {
        expect(feedAll(splitAt(data, cuts))).toEqual(whole)
      }),
      { numRuns: 300 }
    )
  })

  it("property: any bytes, split anywhere, give the same messages and never throw", () => {
    const line = fc.oneof(
      fc.constantFrom("250 OK", "250-a=b", "250+d=", ".", "..x", "650 CIRC 1 BUILT", "650-X", "650 OK", "", "999 z"),
      fc.string({ maxLength: 20 })
    )
    const input = fc.tuple(
      fc.array(line, { maxLength: 30 }).map((lines) => lines.join("\r\n")),
      fc.uint8Array({ maxLength: 40 })
    ).map(([text, noise]) => Buffer.concat([Buffer.from(text, "latin1"), noise]))
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 20 }), (data, cuts) => {
        const view = new Uint8Array(data)
        expect(feedAll(splitAt(view, cuts))).toEqual(feedAll([view]))
      }),
      { numRuns: 500 }
    )
  })
})

describe("QuotedString and arguments", () => {
  it.each([
    { quoted: "\"plain\"", value: "plain" },
    { quoted: "\"a \\\"quoted\\\" word\"", value: "a \"quoted\" word" },
    { quoted: "\"back\\\\slash\"", value: "back\\slash" },
    { quoted: "\"line\\nbreak\\ttab\\rcr\"", value: "line\nbreak\ttab\rcr" },
    { quoted: "\"octal \\303\\251 and \\0\"", value: "octal \xc3\xa9 and \x00" },
    { quoted: "\"other \\q escape\"", value: "other q escape" },
    { quoted: "\"\"", value: "" }
  ])("$quoted reads as the value", ({ quoted, value }) => {
    expect(unquote(quoted)).toEqual(Either.right(value))
  })

  it.each(["\"unterminated", "\"ends in a backslash\\\"", "no quotes", "\"inner \" quote\"", "\"\\400\""])(
    "%s is a QuotedString error",
    (quoted) => {
      expect(Either.getLeft(unquote(quoted)).pipe((e) => e._tag === "Some" && e.value.reason)).toBe("QuotedString")
    }
  )

  it("keywords come in any order, quoted values keep their spaces, unknown keywords are kept but unused", () => {
    const parsed = Either.getOrThrow(parseArguments("7 BUILT Z=1 PATH_NAME=\"a b\\\"c\" A=2"))
    expect(parsed.positional).toEqual(["7", "BUILT"])
    expect(Object.fromEntries(parsed.keywords)).toEqual({ Z: "1", PATH_NAME: "a b\"c", A: "2" })
  })

  it.each([
    { text: `$${FP.exit0}~exit0`, relays: [{ fingerprint: FP.exit0, nickname: "exit0" }] },
    { text: `$${FP.exit0}=exit0`, relays: [{ fingerprint: FP.exit0, nickname: "exit0" }] },
    { text: `$${FP.exit0.toLowerCase()}`, relays: [{ fingerprint: FP.exit0, nickname: null }] },
    { text: "relay1,relay2", relays: [{ fingerprint: null, nickname: "relay1" }, { fingerprint: null, nickname: "relay2" }] },
    { text: "", relays: [] }
  ])("path $text", ({ relays, text }) => {
    expect(parsePath(text)).toEqual(Either.right(relays))
  })

  it.each(["$ABC~short", `$${FP.exit0}~name-with-dash`, "bad name"])("path %s is refused", (text) => {
    expect(Either.isLeft(parsePath(text))).toBe(true)
  })
})

describe("decoders", () => {
  it("PROTOCOLINFO: auth methods, the cookie file unescaped and read as UTF-8, Tor's version", () => {
    const reply = sync([
      "250-PROTOCOLINFO 1",
      "250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE=\"/var/lib/tor/caf\\303\\251 \\\"x\\\"/control_auth_cookie\"",
      "250-VERSION Tor=\"0.4.9.11\"",
      "250 OK",
      ""
    ].join("\r\n"))
    expect(decodeProtocolInfo(reply)).toEqual(Either.right({
      protocolInfoVersion: 1,
      authMethods: ["COOKIE", "SAFECOOKIE", "HASHEDPASSWORD"],
      cookieFile: "/var/lib/tor/café \"x\"/control_auth_cookie",
      torVersion: "0.4.9.11"
    }))
  })

  it("PROTOCOLINFO with NULL auth and no cookie file", () => {
    const reply = sync("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor=\"0.4.8.16\"\r\n250 OK\r\n")
    expect(decodeProtocolInfo(reply)).toEqual(Either.right({
      protocolInfoVersion: 1,
      authMethods: ["NULL"],
      cookieFile: null,
      torVersion: "0.4.8.16"
    }))
  })

  it("PROTOCOLINFO without an AUTH line is a MissingField error", () => {
    const result = decodeProtocolInfo(sync("250-PROTOCOLINFO 1\r\n250 OK\r\n"))
    expect(Either.isLeft(result) && result.left.reason).toBe("MissingField")
  })

  it("AUTHCHALLENGE: the server hash and nonce as bytes", () => {
    const result = Either.getOrThrow(decodeAuthChallenge(sync(transcript.split("\r\n")[4] + "\r\n")))
    expect(Buffer.from(result.serverHash).toString("hex").toUpperCase()).toBe(
      "87EB6BE76DF4F47FA4F4BF45C557EB7A654BF9A764001DF24B16F819802D2B35"
    )
    expect(Buffer.from(result.serverNonce).toString("hex").toUpperCase()).toBe(
      "9AF0ECAFBB6DEECABCDD998EA0D8D57113F6ECDFBEC8F11B00C965DD8088CC51"
    )
  })

  it("AUTHCHALLENGE with a short hash is a BadValue error", () => {
    const result = decodeAuthChallenge(sync("250 AUTHCHALLENGE SERVERHASH=ABCD SERVERNONCE=ABCD\r\n"))
    expect(Either.isLeft(result) && result.left.reason).toBe("BadValue")
  })

  it("GETINFO: key=value lines and key= data blocks", () => {
    const reply = sync("250-version=0.4.9.11\r\n250+circuit-status=\r\n1 BUILT\r\n2 LAUNCHED\r\n.\r\n250 OK\r\n")
    expect(Either.map(decodeGetInfo(reply), (values) => Object.fromEntries(values))).toEqual(Either.right({
      version: "0.4.9.11",
      "circuit-status": "1 BUILT\n2 LAUNCHED"
    }))
  })

  it("circuit-status: path, purpose, build flags, creation time and conflux set of each line", () => {
    const messages = makeControlReplyParser().feed(bytes(transcript))
    const reply = messages[5] as SyncReply
    const status = Either.getOrThrow(decodeGetInfo(reply)).get("circuit-status") ?? ""
    const entries = Either.getOrThrow(decodeCircuitStatus(status))
    expect(entries.map((e) => [e.id, e.status, e.path.map((r) => r.nickname).join(","), e.purpose, e.confluxId])).toEqual([
      ["1", "BUILT", "auth0", "GENERAL", null],
      ["43", "BUILT", "auth2,auth1,exit0", "CONFLUX_LINKED", "0153DD4BF1EFDB76C95026FE8899E04F"],
      ["44", "BUILT", "auth1,auth2,exit0", "CONFLUX_LINKED", "0153DD4BF1EFDB76C95026FE8899E04F"]
    ])
    expect(entries[0].buildFlags).toEqual(["ONEHOP_TUNNEL", "IS_INTERNAL", "NEED_CAPACITY"])
    expect(entries[1].timeCreated).toBe("2026-12-01T14:21:59.512402")
    expect(decodeCircuitStatus("")).toEqual(Either.right([]))
  })

  it.each([
    {
      line: "650 CIRC 48 FAILED BUILD_FLAGS=IS_INTERNAL,NEED_CAPACITY,NEED_UPTIME PURPOSE=HS_VANGUARDS TIME_CREATED=2026-12-01T14:22:00.511036 REASON=NOPATH",
      expected: {
        _tag: "CircEvent",
        id: "48",
        status: "FAILED",
        path: [],
        buildFlags: ["IS_INTERNAL", "NEED_CAPACITY", "NEED_UPTIME"],
        purpose: "HS_VANGUARDS",
        hsState: null,
        timeCreated: "2026-12-01T14:22:00.511036",
        confluxId: null,
        reason: "NOPATH",
        remoteReason: null
      }
    },
    {
      line: `650 CIRC 49 EXTENDED $${FP.auth2}~auth2 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:22:00.868824 SOCKS_USERNAME="alice" SOCKS_PASSWORD="p"`,
      expected: {
        _tag: "CircEvent",
        id: "49",
        status: "EXTENDED",
        path: [{ fingerprint: FP.auth2, nickname: "auth2" }],
        buildFlags: ["NEED_CAPACITY"],
        purpose: "GENERAL",
        hsState: null,
        timeCreated: "2026-12-01T14:22:00.868824",
        confluxId: null,
        reason: null,
        remoteReason: null
      }
    },
    {
      line: `650 CIRC 274 LAUNCHED BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_UNLINKED TIME_CREATED=2026-12-01T14:22:01.523498 CONFLUX_ID=CB7B13F1D21C678B6319C62049078F32`,
      expected: {
        _tag: "CircEvent",
        id: "274",
        status: "LAUNCHED",
        path: [],
        buildFlags: ["NEED_CAPACITY", "NEED_UPTIME"],
        purpose: "CONFLUX_UNLINKED",
        hsState: null,
        timeCreated: "2026-12-01T14:22:01.523498",
        confluxId: "CB7B13F1D21C678B6319C62049078F32",
        reason: null,
        remoteReason: null
      }
    },
    {
      line: `650 CIRC 9 CLOSED $${FP.auth0}=auth0 PURPOSE=GENERAL REMOTE_REASON=DESTROYED REASON=CHANNEL_CLOSED`,
      expected: {
        _tag: "CircEvent",
        id: "9",
        status: "CLOSED",
        path: [{ fingerprint: FP.auth0, nickname: "auth0" }],
        buildFlags: [],
        purpose: "GENERAL",
        hsState: null,
        timeCreated: null,
        confluxId: null,
        reason: "CHANNEL_CLOSED",
        remoteReason: "DESTROYED"
      }
    },
    {
      line: `650 CIRC_MINOR 274 PURPOSE_CHANGED ${path3} BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_LINKED TIME_CREATED=2026-12-01T14:22:01.523498 CONFLUX_ID=CB7B13F1D21C678B6319C62049078F32 OLD_PURPOSE=CONFLUX_UNLINKED`,
      expected: {
        _tag: "CircMinorEvent",
        id: "274",
        event: "PURPOSE_CHANGED",
        path: [
          { fingerprint: FP.auth2, nickname: "auth2" },
          { fingerprint: FP.auth1, nickname: "auth1" },
          { fingerprint: FP.exit0, nickname: "exit0" }
        ],
        buildFlags: ["NEED_CAPACITY", "NEED_UPTIME"],
        purpose: "CONFLUX_LINKED",
        hsState: null,
        timeCreated: "2026-12-01T14:22:01.523498",
        confluxId: "CB7B13F1D21C678B6319C62049078F32",
        oldPurpose: "CONFLUX_UNLINKED"
      }
    },
    {
      line: `650 STREAM 21 NEW 0 127.0.0.1:43957 SOURCE_ADDR=127.0.0.1:55882 PURPOSE=USER ${ISO}`,
      expected: {
        _tag: "StreamEvent",
        id: "21",
        status: "NEW",
        circuit: null,
        target: "127.0.0.1:43957",
        reason: null,
        remoteReason: null,
        source: null,
        sourceAddress: "127.0.0.1:55882",
        purpose: "USER"
      }
    },
    {
      line: `650 STREAM 21 REMAP 43 127.0.0.1.${FP.exit0}.exit:43957 SOURCE=EXIT ${ISO}`,
      expected: {
        _tag: "StreamEvent",
        id: "21",
        status: "REMAP",
        circuit: "43",
        target: `127.0.0.1.${FP.exit0}.exit:43957`,
        reason: null,
        remoteReason: null,
        source: "EXIT",
        sourceAddress: null,
        purpose: null
      }
    },
    {
      line: `650 STREAM 25 DETACHED 43 127.0.0.1:1 REASON=END REMOTE_REASON=MISC ${ISO}`,
      expected: {
        _tag: "StreamEvent",
        id: "25",
        status: "DETACHED",
        circuit: "43",
        target: "127.0.0.1:1",
        reason: "END",
        remoteReason: "MISC",
        source: null,
        sourceAddress: null,
        purpose: null
      }
    },
    {
      line: `650 STREAM 42 NEWRESOLVE 0 localhost:0 SOURCE_ADDR=127.0.0.1:37636 PURPOSE=DNS_REQUEST SOCKS_USERNAME="bob" SOCKS_PASSWORD="p" ${ISO}`,
      expected: {
        _tag: "StreamEvent",
        id: "42",
        status: "NEWRESOLVE",
        circuit: null,
        target: "localhost:0",
        reason: null,
        remoteReason: null,
        source: null,
        sourceAddress: "127.0.0.1:37636",
        purpose: "DNS_REQUEST"
      }
    },
    {
      line: "650 CIRC_BW ID=43 READ=5090 WRITTEN=3563 TIME=2026-12-01T14:22:01.727179 DELIVERED_READ=334 OVERHEAD_READ=4646 DELIVERED_WRITTEN=225 OVERHEAD_WRITTEN=3261 SS=1 CWND=124 RTT=37 MIN_RTT=21",
      expected: {
        _tag: "CircBwEvent",
        id: "43",
        read: 5090,
        written: 3563,
        time: "2026-12-01T14:22:01.727179",
        deliveredRead: 334,
        overheadRead: 4646,
        deliveredWritten: 225,
        overheadWritten: 3261,
        slowStart: true,
        cwnd: 124,
        rttMs: 37,
        minRttMs: 21
      }
    },
    {
      line: "650 CIRC_BW ID=337 READ=509 WRITTEN=1018 TIME=2026-12-01T14:22:01.727387 DELIVERED_READ=67 OVERHEAD_READ=431 DELIVERED_WRITTEN=334 OVERHEAD_WRITTEN=662",
      expected: {
        _tag: "CircBwEvent",
        id: "337",
        read: 509,
        written: 1018,
        time: "2026-12-01T14:22:01.727387",
        deliveredRead: 67,
        overheadRead: 431,
        deliveredWritten: 334,
        overheadWritten: 662,
        slowStart: null,
        cwnd: null,
        rttMs: null,
        minRttMs: null
      }
    },
    { line: "650 BW 1024 2048", expected: { _tag: "OtherEvent", keyword: "BW" } }
  ])("$expected._tag $line", ({ expected, line }) => {
    expect(event(line)).toEqual(expected)
  })

  it.each([
    "650 STREAM 21 NEW",
    "650 CIRC",
    "650 CIRC_BW READ=1",
    "650 CIRC 7 BUILT $NOTHEX~x",
    "650 STREAM 21 NEW 0 a:1 SOURCE_ADDR=\"unterminated"
  ])("%s is a decode error, not an exception", (line) => {
    const [reply] = replies(`${line}\r\n`)
    expect(Either.isLeft(decodeEvent(reply as AsyncReply))).toBe(true)
  })
})

describe("SAFECOOKIE", () => {
  const cookie = Uint8Array.from({ length: 32 }, (_, i) => i)
  const clientNonce = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i)
  const serverNonce = Uint8Array.from({ length: 32 }, (_, i) => 255 - i)
  const hmac = (key: string) =>
    crypto.createHmac("sha256", key).update(Buffer.concat([cookie, clientNonce, serverNonce])).digest()

  it("the client hash is HMAC-SHA256 of cookie | client nonce | server nonce with the controller-to-server key", () => {
    expect(Buffer.from(safeCookieClientHash(cookie, clientNonce, serverNonce))).toEqual(
      hmac("Tor safe cookie authentication controller-to-server hash")
    )
  })

  it("the server hash uses the server-to-controller key, and only the right one verifies", () => {
    const serverHash = new Uint8Array(hmac("Tor safe cookie authentication server-to-controller hash"))
    expect(safeCookieServerHash(cookie, clientNonce, serverNonce)).toEqual(serverHash)
    expect(verifySafeCookieServerHash(cookie, clientNonce, { serverHash, serverNonce })).toBe(true)
    const flipped = Uint8Array.from(serverHash)
    flipped[31] ^= 1
    expect(verifySafeCookieServerHash(cookie, clientNonce, { serverHash: flipped, serverNonce })).toBe(false)
    expect(verifySafeCookieServerHash(cookie, clientNonce, { serverHash: serverHash.subarray(0, 31), serverNonce }))
      .toBe(false)
    expect(verifySafeCookieServerHash(cookie, serverNonce, { serverHash, serverNonce })).toBe(false)
  })

  it("a real Tor's AUTHCHALLENGE answer verifies, and the client hash is the one that Tor accepted", () => {
    // Recorded from Tor 0.4.9.11: the cookie file, the nonce MITM sent, Tor's answer, and the AUTHENTICATE Tor took.
    const realCookie = Buffer.from("f86278c4ad20b9539108ff8a2fd133908d7a95f7aa00ccfcd3233cef692c0109", "hex")
    const realClientNonce = Buffer.from("38f2bf36f893b2eb8449a48c604ad27fd20c9aed563a020cceec121511a8d7ef", "hex")
    const challenge = Either.getOrThrow(decodeAuthChallenge(sync(transcript.split("\r\n")[4] + "\r\n")))
    expect(verifySafeCookieServerHash(realCookie, realClientNonce, challenge)).toBe(true)
    expect(Buffer.from(safeCookieClientHash(realCookie, realClientNonce, challenge.serverNonce)).toString("hex")).toBe(
      "ee36c0b56d1135f0dc26e8227395afcb8854a3f637ce5b29f5ea8930bcbb80bf"
    )
  })
})

describe("commands", () => {
  const text = (command: ControlCommand) => Buffer.from(encodeCommand(command)).toString("latin1")

  it.each([
    { command: ControlCommand.protocolInfo, line: "PROTOCOLINFO 1\r\n" },
    {
      command: ControlCommand.authChallenge(Uint8Array.from([0, 1, 0xab, 0xff])),
      line: "AUTHCHALLENGE SAFECOOKIE 0001ABFF\r\n"
    },
    { command: ControlCommand.authenticate({ _tag: "None" }), line: "AUTHENTICATE\r\n" },
    {
      command: ControlCommand.authenticate({ _tag: "Bytes", bytes: Redacted.make(Uint8Array.from([0xde, 0xad])) }),
      line: "AUTHENTICATE DEAD\r\n"
    },
    {
      command: ControlCommand.authenticate({ _tag: "Password", password: Redacted.make("plain") }),
      line: "AUTHENTICATE \"plain\"\r\n"
    },
    {
      command: ControlCommand.authenticate({ _tag: "Password", password: Redacted.make("a \"quote\" and \\ back") }),
      line: "AUTHENTICATE \"a \\\"quote\\\" and \\\\ back\"\r\n"
    },
    {
      command: ControlCommand.authenticate({ _tag: "Password", password: Redacted.make("café") }),
      line: "AUTHENTICATE \"caf\xc3\xa9\"\r\n"
    },
    {
      command: ControlCommand.authenticate({ _tag: "Password", password: Redacted.make("two\r\nlines") }),
      line: `AUTHENTICATE ${Buffer.from("two\r\nlines").toString("hex").toUpperCase()}\r\n`
    },
    { command: ControlCommand.getInfo("version", "circuit-status"), line: "GETINFO version circuit-status\r\n" },
    {
      command: ControlCommand.setEvents("STREAM", "CIRC", "CIRC_BW", "CIRC_MINOR"),
      line: "SETEVENTS STREAM CIRC CIRC_BW CIRC_MINOR\r\n"
    },
    { command: ControlCommand.setEvents(), line: "SETEVENTS\r\n" }
  ])("$line", ({ command, line }) => {
    expect(text(command)).toBe(line)
  })

  it("property: a quoted password is one line that Tor's decode_qstring reads back to its UTF-8 bytes", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (password) => {
        const line = Buffer.from(
          encodeCommand(ControlCommand.authenticate({ _tag: "Password", password: Redacted.make(password) }))
        )
        const argument = line.subarray("AUTHENTICATE ".length, line.length - 2)
        expect(line.subarray(0, line.length - 2).includes(0x0a)).toBe(false)
        expect(line.subarray(0, line.length - 2).includes(0x0d)).toBe(false)
        const utf8 = Buffer.from(password, "utf8")
        if (argument[0] === 0x22) expect(decodeQstring(argument)).toEqual(utf8)
        else expect(Buffer.from(argument.toString("latin1"), "hex")).toEqual(utf8)
      }),
      { numRuns: 500 }
    )
  })

  it("the password never shows when a command is printed", () => {
    const command = ControlCommand.authenticate({ _tag: "Password", password: Redacted.make("hunter2") })
    expect(JSON.stringify(command)).not.toContain("hunter2")
    expect(String(Object.values(command))).not.toContain("hunter2")
  })
})
