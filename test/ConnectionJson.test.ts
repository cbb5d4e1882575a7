/**
 * `/api/connections` writes each connection as text; the text must be exactly the
 * document of `connectionJson`, whatever the connection holds.
 */
import { describe, expect, it } from "@effect/vitest"
import { connectionJson } from "../src/domain/Connection.js"
import { feedBurst, initialBursts } from "../src/domain/BurstTracker.js"
import { connectionText } from "../src/http/ConnectionJson.js"
import { closed, connectionWith, delayEnd, delayStart, httpExchange, socksReply, socksRequest, type Timed, tlsClientHello } from "./support/Measurements.js"

const tor = {
  stream: "42",
  circuit: "7",
  path: [{ fingerprint: "A".repeat(40), nickname: "guard \"quoted\"" }, { fingerprint: "B".repeat(40), nickname: null }],
  circuitBuildTime: 0.84
}

describe("a connection written as JSON text", () => {
  it("is the connectionJson document: HTTP with a held and an unanswered request, inferred exchanges, Tor's circuit, hostile text", () => {
    const first = httpExchange("GET /a?q=\"x\" HTTP/1.1\r\nHost: ex\u00e4mple.com\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", [1, 1.4, 1.5])
    const second = httpExchange("POST /b HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", "", [2, 2, 2], first.state)
    const http = connectionWith(1, "example.com", [
      [0, socksRequest("example.com")],
      [0.3, socksReply()],
      ...first.events.slice(0, 2),
      [1, delayStart("http", 300, 0)],
      [1.3, delayEnd("http", 300, 0)],
      ...first.events.slice(2),
      ...second.events,
      [3, closed()]
    ])
    let bursts = initialBursts
    const inferred: Array<Timed> = []
    for (const [time, direction, bytes] of [[1, "up", 500], [1.2, "down", 4000], [2, "up", 80], [2.5, "down", 900]] as const) {
      const [next, event] = feedBurst(bursts, direction, bytes)
      bursts = next
      if (event !== undefined) inferred.push([time, event])
    }
    const tls = connectionWith(2, "<script>", [[0, socksRequest("<script>", 443)], [0.2, socksReply()], [0.9, tlsClientHello("</b>")], ...inferred], { protocol: "tls" })
    for (const [connection, attribution] of [[http, tor], [tls, null], [connectionWith(3, "", []), null]] as const) {
      const text = connectionText(connection, attribution)
      expect(text).toBe(JSON.stringify(connectionJson(connection, attribution)))
      expect(JSON.parse(text).exchanges.length).toBe(connectionJson(connection, attribution).exchanges.length)
    }
    expect(JSON.parse(connectionText(http, tor)).exchanges[0]).toMatchObject({ index: 0, blocked: 0.3, wait: 0.4, url: "http://ex\u00e4mple.com/a?q=\"x\"" })
    expect(JSON.parse(connectionText(tls, null)).exchanges).toHaveLength(2)
  })
})
