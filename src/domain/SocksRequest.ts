/**
 * What a browser asks of a SOCKS server, as MITM decoded it. The same value
 * goes upstream, so credentials and names are kept exactly as received.
 */

/** 4 covers SOCKS4 and SOCKS4a (a SOCKS4 request that carries a host name). */
export type SocksVersion = 4 | 5

export type SocksCommand = "connect" | "bind" | "udpAssociate" | "resolve" | "resolvePtr"

export type AddressType = "ipv4" | "domain" | "ipv6"

export interface SocksAddress {
  readonly addressType: AddressType
  /** Dotted IPv4, IPv6 text (lower case, `::` compressed) or the host name as sent (latin1). */
  readonly host: string
}

/** RFC 1929 username/password, raw bytes: Tor isolates streams by them. */
export interface SocksCredentials {
  readonly username: Uint8Array
  readonly password: Uint8Array
}

export interface SocksRequest extends SocksAddress {
  readonly version: SocksVersion
  readonly command: SocksCommand
  readonly port: number
  /** SOCKS5 authentication methods the client offered (empty for SOCKS4). */
  readonly methods: ReadonlyArray<number>
  /** SOCKS5 username/password when the client authenticated with method 0x02. */
  readonly credentials: SocksCredentials | undefined
  /** SOCKS4 USERID field (may be empty). */
  readonly userId: Uint8Array | undefined
}

/** `host:port`, with IPv6 in brackets: how a target reads in events and pages. */
export const formatTarget = (address: SocksAddress, port: number): string =>
  address.addressType === "ipv6" ? `[${address.host}]:${port}` : `${address.host}:${port}`

const commandNames: Readonly<Record<SocksCommand, "connect" | "resolve" | "resolve_ptr" | "bind" | "udp_associate">> = {
  connect: "connect",
  resolve: "resolve",
  resolvePtr: "resolve_ptr",
  bind: "bind",
  udpAssociate: "udp_associate"
}

/** The command as events and the JSON API name it (SPEC §6): `connect`, `resolve`, `resolve_ptr` … */
export const commandName = (command: SocksCommand) => commandNames[command]
