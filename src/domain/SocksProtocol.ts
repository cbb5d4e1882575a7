/**
 * The server side of a SOCKS handshake as a pure decoder: feed it what the client sent,
 * get back what MITM must answer and, at the end, the decoded request. SOCKS5 (RFC 1928)
 * with no-auth and username/password (RFC 1929), SOCKS4 and SOCKS4a, and Tor's RESOLVE
 * (0xF0) and RESOLVE_PTR (0xF1). No I/O, no clock: the relay writes the replies.
 */
import { formatIPv4, formatIPv6, hexByte as hex, parseIPv4, parseIPv6 } from "./Address.js"
import { SocksParseError } from "./Errors.js"
import type { SocksAddress, SocksCommand, SocksCredentials, SocksRequest, SocksVersion } from "./SocksRequest.js"

/** SOCKS5 reply codes (RFC 1928 §6). */
export const SocksReplyCode = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08
} as const

/** SOCKS4 reply codes. */
const socks4Granted = 0x5a
const socks4Rejected = 0x5b

/** What the decoder waits for next. */
type Phase =
  | { readonly _tag: "Greeting" }
  | { readonly _tag: "Auth"; readonly methods: ReadonlyArray<number> }
  | {
    readonly _tag: "Request"
    readonly methods: ReadonlyArray<number>
    readonly credentials: SocksCredentials | undefined
  }
  | { readonly _tag: "Done" }

/** Where a client's handshake stands. Opaque: only `feedSocksServer` reads it. */
export interface SocksServerState {
  readonly phase: Phase
  /** The start of the message being received (never more than one message). */
  readonly pending: Uint8Array
  /** Bytes fed before: where a refused message begins in the client's stream. */
  readonly fed: number
}

const empty = new Uint8Array(0)

/** A connection before its first byte. */
export const initialSocksServer: SocksServerState = { phase: { _tag: "Greeting" }, pending: empty, fed: 0 }

const done: SocksServerState = { phase: { _tag: "Done" }, pending: empty, fed: 0 }

/** What the relay must do after a feed. */
export type SocksServerStep =
  /** Write `bytes` to the client and keep reading (SOCKS5 method selection, RFC 1929 status). */
  | { readonly _tag: "Reply"; readonly bytes: Uint8Array }
  /** The handshake is complete; `rest` is what the client sent after it (optimistic data). */
  | { readonly _tag: "Request"; readonly request: SocksRequest; readonly rest: Uint8Array }
  /** Write `reply` if there is one, then close. */
  | { readonly _tag: "Refuse"; readonly error: SocksParseError; readonly reply: Uint8Array | undefined }

/** The longest message a client sends: SOCKS4a with a 255-byte user id and host, each + NUL. */
const maxMessage = 8 + 256 + 256

/** A field of variable length ends with NUL within this many bytes (SOCKS4). */
const maxNulField = 255

type Parsed =
  | { readonly _tag: "NeedMore" }
  | { readonly _tag: "Reply"; readonly consumed: number; readonly bytes: Uint8Array; readonly next: Phase }
  | { readonly _tag: "Request"; readonly consumed: number; readonly request: SocksRequest }
  | { readonly _tag: "Refuse"; readonly error: SocksParseError; readonly reply: Uint8Array | undefined }

const needMore: Parsed = { _tag: "NeedMore" }

const refuse = (
  reason: SocksParseError["reason"],
  detail: string,
  reply: Uint8Array | undefined
): Parsed => ({ _tag: "Refuse", error: new SocksParseError({ reason, detail, offset: null }), reply })


/** A copy that is a plain Uint8Array (`Buffer#slice` would share memory). */
const copy = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes)

/** Every byte becomes the char with the same code, so names round-trip exactly. */
const latin1 = (bytes: Uint8Array): string => {
  let text = ""
  for (const byte of bytes) text += String.fromCharCode(byte)
  return text
}


const socks5Commands: Readonly<Record<number, SocksCommand>> = {
  0x01: "connect",
  0x02: "bind",
  0x03: "udpAssociate",
  0xf0: "resolve",
  0xf1: "resolvePtr"
}

const socks4Commands: Readonly<Record<number, SocksCommand>> = {
  0x01: "connect",
  0x02: "bind",
  0xf0: "resolve"
}

const commandOf = (table: Readonly<Record<number, SocksCommand>>, code: number): SocksCommand | undefined =>
  Object.prototype.hasOwnProperty.call(table, code) ? table[code] : undefined

const socks5Refusal = (code: number): Uint8Array => socksReply(5, code)
const socks4Refusal = (): Uint8Array => socksReply(4, socks4Rejected)

/** The first message decides the protocol: 0x05 is a SOCKS5 greeting, 0x04 a SOCKS4 request. */
const parseFirst = (view: Uint8Array): Parsed => {
  if (view.length < 1) return needMore
  const version = view[0]
  if (version === 5) return parseGreeting(view)
  if (version === 4) return parseSocks4Request(view)
  const isLetter = (version >= 0x41 && version <= 0x5a) || (version >= 0x61 && version <= 0x7a)
  return refuse(
    "UnsupportedVersion",
    `first byte ${hex(version)} is not SOCKS4 or SOCKS5${isLetter ? " (an HTTP client?)" : ""}`,
    undefined
  )
}

/** VER NMETHODS METHODS. Username/password wins so its credentials can go upstream. */
const parseGreeting = (view: Uint8Array): Parsed => {
  if (view.length < 2) return needMore
  const end = 2 + view[1]
  if (view.length < end) return needMore
  const methods = Array.from(view.subarray(2, end))
  if (methods.includes(0x02)) {
    return { _tag: "Reply", consumed: end, bytes: Uint8Array.of(5, 0x02), next: { _tag: "Auth", methods } }
  }
  if (methods.includes(0x00)) {
    return {
      _tag: "Reply",
      consumed: end,
      bytes: Uint8Array.of(5, 0x00),
      next: { _tag: "Request", methods, credentials: undefined }
    }
  }
  return refuse(
    "NoAcceptableMethod",
    `client offered methods [${methods.map(hex).join(", ")}]; MITM accepts 0x00 (no authentication) or 0x02 (username/password)`,
    Uint8Array.of(5, 0xff)
  )
}

/** RFC 1929: VER ULEN UNAME PLEN PASSWD. Any credentials are accepted; the upstream judges them. */
const parseAuth = (view: Uint8Array, methods: ReadonlyArray<number>): Parsed => {
  if (view.length < 1) return needMore
  if (view[0] !== 0x01) {
    return refuse(
      "BadAuthVersion",
      `username/password sub-negotiation version ${hex(view[0])}, expected 0x01`,
      Uint8Array.of(1, 1)
    )
  }
  if (view.length < 2) return needMore
  const passwordLengthAt = 2 + view[1]
  if (view.length < passwordLengthAt + 1) return needMore
  const end = passwordLengthAt + 1 + view[passwordLengthAt]
  if (view.length < end) return needMore
  const credentials: SocksCredentials = {
    username: copy(view.subarray(2, passwordLengthAt)),
    password: copy(view.subarray(passwordLengthAt + 1, end))
  }
  return {
    _tag: "Reply",
    consumed: end,
    bytes: Uint8Array.of(1, 0),
    next: { _tag: "Request", methods, credentials }
  }
}

/** VER CMD RSV ATYP DST.ADDR DST.PORT. RSV is not checked: only VER matters. */
const parseSocks5Request = (
  view: Uint8Array,
  methods: ReadonlyArray<number>,
  credentials: SocksCredentials | undefined
): Parsed => {
  if (view.length < 1) return needMore
  if (view[0] !== 5) {
    return refuse(
      "BadRequest",
      `SOCKS5 request version ${hex(view[0])}, expected 0x05`,
      socks5Refusal(SocksReplyCode.generalFailure)
    )
  }
  if (view.length < 2) return needMore
  const command = commandOf(socks5Commands, view[1])
  if (command === undefined) {
    return refuse(
      "BadRequest",
      `SOCKS5 command ${hex(view[1])} is not supported`,
      socks5Refusal(SocksReplyCode.commandNotSupported)
    )
  }
  if (view.length < 4) return needMore
  const addressType = view[3]
  let address: SocksAddress
  let portAt: number
  if (addressType === 0x01) {
    portAt = 8
    if (view.length < portAt) return needMore
    address = { addressType: "ipv4", host: formatIPv4(view.subarray(4, 8)) }
  } else if (addressType === 0x04) {
    portAt = 20
    if (view.length < portAt) return needMore
    address = { addressType: "ipv6", host: formatIPv6(view.subarray(4, 20)) }
  } else if (addressType === 0x03) {
    if (view.length < 5) return needMore
    if (view[4] === 0) {
      return refuse("BadRequest", "SOCKS5 domain name is empty", socks5Refusal(SocksReplyCode.generalFailure))
    }
    portAt = 5 + view[4]
    if (view.length < portAt) return needMore
    address = { addressType: "domain", host: latin1(view.subarray(5, portAt)) }
  } else {
    return refuse(
      "UnsupportedAddressType",
      `SOCKS5 address type ${hex(addressType)} is not supported`,
      socks5Refusal(SocksReplyCode.addressTypeNotSupported)
    )
  }
  const end = portAt + 2
  if (view.length < end) return needMore
  return {
    _tag: "Request",
    consumed: end,
    request: {
      version: 5,
      command,
      ...address,
      port: (view[portAt] << 8) | view[portAt + 1],
      methods,
      credentials,
      userId: undefined
    }
  }
}

/** Where the NUL that ends a SOCKS4 field is, or why there is none yet. */
const findNul = (view: Uint8Array, from: number): number | "NeedMore" | "TooLong" => {
  const limit = Math.min(view.length, from + maxNulField + 1)
  for (let i = from; i < limit; i++) if (view[i] === 0) return i
  return view.length >= from + maxNulField + 1 ? "TooLong" : "NeedMore"
}

/** VN CD DSTPORT DSTIP USERID NUL, and HOST NUL when DSTIP is 0.0.0.x with x ≠ 0 (SOCKS4a). */
const parseSocks4Request = (view: Uint8Array): Parsed => {
  if (view.length < 2) return needMore
  const command = commandOf(socks4Commands, view[1])
  if (command === undefined) {
    return refuse("BadRequest", `SOCKS4 command ${hex(view[1])} is not supported`, socks4Refusal())
  }
  if (view.length < 8) return needMore
  const userIdEnd = findNul(view, 8)
  if (userIdEnd === "NeedMore") return needMore
  if (userIdEnd === "TooLong") {
    return refuse("TooLong", `SOCKS4 user id is longer than ${maxNulField} bytes`, socks4Refusal())
  }
  const ip = view.subarray(4, 8)
  const isSocks4a = ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0
  let address: SocksAddress
  let end: number
  if (isSocks4a) {
    const hostEnd = findNul(view, userIdEnd + 1)
    if (hostEnd === "NeedMore") return needMore
    if (hostEnd === "TooLong") {
      return refuse("TooLong", `SOCKS4a host name is longer than ${maxNulField} bytes`, socks4Refusal())
    }
    if (hostEnd === userIdEnd + 1) return refuse("BadRequest", "SOCKS4a host name is empty", socks4Refusal())
    address = { addressType: "domain", host: latin1(view.subarray(userIdEnd + 1, hostEnd)) }
    end = hostEnd + 1
  } else {
    address = { addressType: "ipv4", host: formatIPv4(ip) }
    end = userIdEnd + 1
  }
  return {
    _tag: "Request",
    consumed: end,
    request: {
      version: 4,
      command,
      ...address,
      port: (view[2] << 8) | view[3],
      methods: [],
      credentials: undefined,
      userId: copy(view.subarray(8, userIdEnd))
    }
  }
}

const parse = (phase: Phase, view: Uint8Array): Parsed => {
  switch (phase._tag) {
    case "Greeting":
      return parseFirst(view)
    case "Auth":
      return parseAuth(view, phase.methods)
    case "Request":
      return parseSocks5Request(view, phase.methods, phase.credentials)
    case "Done":
      return needMore
  }
}

/**
 * Feeds what the client sent next. Any split of the same bytes gives the same steps.
 * After a `Request` or a `Refuse` the state is terminal and further feeds give no steps.
 */
export const feedSocksServer = (
  state: SocksServerState,
  chunk: Uint8Array
): readonly [SocksServerState, ReadonlyArray<SocksServerStep>] => {
  if (state.phase._tag === "Done" || chunk.length === 0) return [state, []]
  const steps: Array<SocksServerStep> = []
  let phase: Phase = state.phase
  let pending = state.pending
  let offset = 0
  for (;;) {
    // One message never needs more than maxMessage bytes, so that is all a view holds.
    const taken = chunk.subarray(offset, offset + maxMessage - pending.length)
    let view = taken
    if (pending.length > 0) {
      view = new Uint8Array(pending.length + taken.length)
      view.set(pending)
      view.set(taken, pending.length)
    }
    const parsed = parse(phase, view)
    switch (parsed._tag) {
      case "NeedMore":
        return [{ phase, pending: view === taken ? copy(taken) : view, fed: state.fed + chunk.length }, steps]
      case "Refuse": {
        const { detail, reason } = parsed.error
        const error = new SocksParseError({ reason, detail, offset: state.fed + offset - pending.length })
        steps.push({ _tag: "Refuse", error, reply: parsed.reply })
        return [done, steps]
      }
      case "Request":
        // A message that was pending was incomplete, so it ends inside this chunk.
        offset += parsed.consumed - pending.length
        steps.push({ _tag: "Request", request: parsed.request, rest: chunk.subarray(offset) })
        return [done, steps]
      case "Reply":
        offset += parsed.consumed - pending.length
        steps.push({ _tag: "Reply", bytes: parsed.bytes })
        phase = parsed.next
        pending = empty
    }
  }
}

/** ATYP and address bytes of a SOCKS5 reply; an address that does not parse is sent as zeros. */
const encodeAddress = (address: SocksAddress): Array<number> => {
  switch (address.addressType) {
    case "ipv4":
      return [0x01, ...(parseIPv4(address.host) ?? [0, 0, 0, 0])]
    case "ipv6":
      return [0x04, ...(parseIPv6(address.host) ?? Array<number>(16).fill(0))]
    case "domain": {
      // latin1, as decoded: one byte per UTF-16 code unit.
      const host = address.host.slice(0, 255)
      const bytes: Array<number> = []
      for (let i = 0; i < host.length; i++) bytes.push(host.charCodeAt(i) & 0xff)
      return [0x03, bytes.length, ...bytes]
    }
  }
}

/**
 * The reply that ends a handshake. SOCKS5: `05 code 00 ATYP ADDR PORT`, bound to 0.0.0.0:0
 * unless told. SOCKS4: `00 code PORT IP` (8 bytes); only an IPv4 bound address fits, so
 * any other leaves the IP zero (a RESOLVE answer carries its IPv4 there).
 */
export const socksReply = (version: SocksVersion, code: number, bound?: SocksAddress & { port: number }): Uint8Array => {
  const port = (bound?.port ?? 0) & 0xffff
  if (version === 4) {
    const reply = new Uint8Array(8)
    reply[1] = code & 0xff
    reply[2] = port >> 8
    reply[3] = port & 0xff
    if (bound?.addressType === "ipv4") reply.set(parseIPv4(bound.host) ?? [0, 0, 0, 0], 4)
    return reply
  }
  return Uint8Array.from([
    5,
    code & 0xff,
    0,
    ...encodeAddress(bound ?? { addressType: "ipv4", host: "0.0.0.0" }),
    port >> 8,
    port & 0xff
  ])
}

/** The code a client of this version gets for a SOCKS5 outcome. */
export const failureCode = (version: SocksVersion, socks5Code: number): number =>
  version === 5 ? socks5Code : socks5Code === SocksReplyCode.succeeded ? socks4Granted : socks4Rejected

const socks5ReplyNames: Readonly<Record<number, string>> = {
  0x00: "succeeded",
  0x01: "general SOCKS server failure",
  0x02: "connection not allowed by ruleset",
  0x03: "network unreachable",
  0x04: "host unreachable",
  0x05: "connection refused",
  0x06: "TTL expired",
  0x07: "command not supported",
  0x08: "address type not supported",
  // Tor's extended codes (ExtendedErrors), for onion services.
  0xf0: "onion service descriptor can not be found",
  0xf1: "onion service descriptor is invalid",
  0xf2: "onion service introduction failed",
  0xf3: "onion service rendezvous failed",
  0xf4: "onion service missing client authorization",
  0xf5: "onion service wrong client authorization",
  0xf6: "onion service invalid address",
  0xf7: "onion service introduction timed out"
}

const socks4ReplyNames: Readonly<Record<number, string>> = {
  0x5a: "request granted",
  0x5b: "request rejected or failed",
  0x5c: "cannot connect to identd",
  0x5d: "different user-ids"
}

/** How a reply code reads in the report. */
export const socksReplyName = (version: SocksVersion, code: number): string => {
  const names = version === 5 ? socks5ReplyNames : socks4ReplyNames
  return Object.prototype.hasOwnProperty.call(names, code) ? names[code] : `unknown reply ${hex(code)}`
}
