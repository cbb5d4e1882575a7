/**
 * What the control-port tests feed the decoders: the relays of a Tor 0.4.9.11
 * client of the private test network (test/support/TorNetwork.ts) as its
 * control port names them, the isolation fields it writes on STREAM events,
 * and how Tor itself reads a quoted string.
 */

/** Fingerprints of the network's relays auth0..auth2, exit0, exit1. */
export const FP = {
  auth0: "CFACCF996B1146876C0C108AB5942E9D3EB7149A",
  auth1: "C561E4C935C1C82138CFBBA08BDF8995EE319CAB",
  auth2: "8BB56D066064A9440A7A5A96958B8BECF8DCD4E0",
  exit0: "65EA94A66DB3167709FF17B3F8CA574FD8EFFC12",
  exit1: "D80DEFB767BB6E7C848B746421844AD84CBAADA2"
}

/** The isolation fields of a SOCKS5 stream, as STREAM events carry them. */
export const ISO = "CLIENT_PROTOCOL=SOCKS5 NYM_EPOCH=0 SESSION_GROUP=-4 ISO_FIELDS=SOCKS_USERNAME,SOCKS_PASSWORD,CLIENTADDR,SESSION_GROUP,NYM_EPOCH"

/** A three-hop path auth2 → auth1 → exit0, as CIRC events write it. */
export const path3 = `$${FP.auth2}~auth2,$${FP.auth1}~auth1,$${FP.exit0}~exit0`

/** Tor's decode_qstring (lib/encoding/qstring.c): a backslash takes the next byte as it is; the quotes go. */
export const decodeQstring = (argument: Buffer): Buffer => {
  const out: Array<number> = []
  for (let i = 1; i < argument.length - 1; i++) {
    if (argument[i] === 0x5c) i++
    out.push(argument[i])
  }
  return Buffer.from(out)
}
