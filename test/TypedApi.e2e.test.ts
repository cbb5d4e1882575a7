/**
 * SPEC §6 through the JSON API, end to end over loopback: every event carries
 * its facts as typed fields beside `time`, `type` and `detail`, and every
 * connection its `exchanges`, for HTTP (delayed), TLS, failed and undecodable
 * connections, and for a refused handshake.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as http from "node:http"
import * as https from "node:https"
import * as tls from "node:tls"
import { closedPort, eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { httpsOrigin } from "./support/SelfSigned.js"
import { connectRaw, socks5Open } from "./support/SocksClient.js"

interface ApiEvent {
  readonly time: number
  readonly type: string
  readonly detail: string
  readonly [field: string]: unknown
}

interface ApiConnection {
  readonly id: number
  readonly host: string
  readonly state: string
  readonly socksVersion: number
  readonly events: ReadonlyArray<ApiEvent>
  readonly exchanges: ReadonlyArray<Record<string, unknown>>
}

const getJson = (port: number, path: string) =>
  Effect.async<unknown, Error>((resume) => {
    http.get({ host: "127.0.0.1", port, path, headers: { host: `127.0.0.1:${port}` } }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resume(Effect.succeed(JSON.parse(Buffer.concat(chunks).toString()))))
    }).on("error", (error) => resume(Effect.fail(error)))
  })

const apiConnections = (reportPort: number) => Effect.map(getJson(reportPort, "/api/connections"), (body) => body as ReadonlyArray<ApiConnection>)

const event = (connection: ApiConnection, type: string) => connection.events.find((e) => e.type === type)

describe("typed events and exchanges in the JSON API (SPEC §6)", () => {
  it.scopedLive("an HTTP connection held by both delays: SOCKS, HTTP and delay facts, and one exchange with wait and blocked", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("hello"))
      const mitm = yield* startMitm({
        upstream: { _tag: "Direct" },
        socksDelay: { _tag: "Fixed", millis: 30 },
        httpDelay: { _tag: "Fixed", millis: 80 }
      })
      const { connection } = yield* socks5Open(mitm.proxy.port, "localhost", origin.port)
      yield* connection.write("GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      yield* connection.readToEnd
      yield* eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.state === "closed")))
      const [c] = yield* apiConnections(mitm.report.port)
      expect(event(c, "SocksRequestStart")).toMatchObject({ host: "localhost", port: origin.port, command: "connect", version: 5, detail: `localhost:${origin.port}` })
      expect(event(c, "SocksResponseEnd")).toMatchObject({ reply: 0, replyName: "succeeded" })
      expect(c.events.filter((e) => e.type === "DelayStart")).toEqual([
        expect.objectContaining({ delay: "socks", ms: 30, exchange: null }),
        expect.objectContaining({ delay: "http", ms: 80, exchange: 0 })
      ])
      expect(event(c, "HttpRequestStart")).toMatchObject({ exchange: 0, method: "GET", target: "/a?x=1", httpVersion: "HTTP/1.1", detail: "GET /a?x=1 HTTP/1.1" })
      expect(event(c, "HttpRequestEnd")).toMatchObject({ exchange: 0, bodyBytes: 0 })
      expect(event(c, "HttpResponseStart")).toMatchObject({ exchange: 0, status: 200, reason: "OK", httpVersion: "HTTP/1.1" })
      expect(event(c, "HttpResponseEnd")).toMatchObject({ exchange: 0, bodyBytes: 5 })
      expect(event(c, "ConnectionClose")).toMatchObject({ closedBy: "server", bytesDown: expect.any(Number), bytesUp: expect.any(Number) })
      expect(c.exchanges).toHaveLength(1)
      const exchange = c.exchanges[0] as Record<string, number>
      expect(exchange).toMatchObject({
        index: 0,
        inferred: false,
        method: "GET",
        url: `http://localhost/a?x=1`,
        status: 200,
        requestBodyBytes: 0,
        responseBodyBytes: 5
      })
      expect(exchange.blocked).toBeGreaterThanOrEqual(0.079)
      expect(exchange.wait).toBeGreaterThanOrEqual(exchange.blocked)
      expect(exchange.wait).toBeCloseTo(exchange.responseStart - exchange.requestStart, 5)
      expect(exchange.responseEnd).toBeGreaterThanOrEqual(exchange.responseStart)
    }))

  it.scopedLive("a TLS connection: ClientHello and ServerHello facts, and exchanges inferred from the bytes' direction", () =>
    Effect.gen(function*() {
      const { port } = yield* httpsOrigin((_request, response) => response.end("secret"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", port)
      yield* Effect.async<void, Error>((resume) => {
        const request = https.request({
          host: "127.0.0.1",
          port,
          createConnection: () => tls.connect({ socket: connection.socket, servername: "typed.localtest", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }),
          headers: { connection: "close" }
        }, (response) => {
          response.resume()
          response.on("end", () => resume(Effect.void))
        })
        request.on("error", (error) => resume(Effect.fail(error)))
        request.end()
      })
      yield* eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.state !== "open")))
      const [c] = yield* apiConnections(mitm.report.port)
      expect(event(c, "TlsClientHello")).toMatchObject({ sni: "typed.localtest", alpn: ["http/1.1"], versions: expect.arrayContaining(["TLS 1.3"]) })
      expect(event(c, "TlsServerHello")).toMatchObject({ tlsVersion: "TLS 1.3", cipher: expect.stringMatching(/^TLS_/), alpn: null })
      expect(c.exchanges.length).toBeGreaterThanOrEqual(1)
      expect(c.exchanges[0]).toMatchObject({ index: 0, inferred: true, method: null, url: null, status: null, blocked: 0 })
      expect(c.exchanges[0].responseStart).toEqual(expect.any(Number))
    }))

  it.scopedLive("a failed connect, an undecodable response and a refused SOCKS4 handshake are typed too", () =>
    Effect.gen(function*() {
      const closed = yield* closedPort
      const garbage = yield* httpOrigin((_request, response) => {
        // A raw, broken response: a header line without a colon.
        response.socket?.end("HTTP/1.1 200 OK\r\nbroken header\r\n\r\n")
      })
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })

      const refusedTcp = yield* socks5Open(mitm.proxy.port, "127.0.0.1", closed)
      expect(refusedTcp.reply[1]).toBe(0x05)
      yield* refusedTcp.connection.readToEnd

      const { connection } = yield* socks5Open(mitm.proxy.port, "127.0.0.1", garbage.port)
      yield* connection.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* connection.readToEnd

      const socks4 = yield* connectRaw(mitm.proxy.port)
      yield* socks4.write(Buffer.from([0x04, 0x09, 0x00, 0x50, 127, 0, 0, 1, 0x00]))
      yield* socks4.readToEnd

      const all = yield* eventually(Effect.map(Effect.orDie(apiConnections(mitm.report.port)), (list) => (list.length === 3 && list.every((c) => c.state !== "open") ? list : undefined)))
      const [failed, undecodable, refused] = all
      expect(failed.state).toBe("failed")
      expect(event(failed, "SocksResponseEnd")).toMatchObject({ reply: 5, replyName: "connection refused" })
      expect(event(failed, "ConnectionClose")).toMatchObject({ closedBy: null, bytesUp: 0, bytesDown: 0 })
      expect(failed.exchanges).toEqual([])

      expect(event(undecodable, "DecodeError")).toMatchObject({
        error: { _tag: "HttpParseError", reason: "HeaderLine", message: "invalid header line 2", offset: 17 },
        detail: "HttpParseError: invalid header line 2"
      })
      expect(undecodable.exchanges).toEqual([expect.objectContaining({ index: 0, method: "GET", status: null, wait: null, responseStart: null })])

      expect(refused.socksVersion).toBe(4)
      expect(event(refused, "SocksRequestStart")).toMatchObject({ command: "invalid", version: 4 })
      expect(event(refused, "DecodeError")).toMatchObject({ error: { _tag: "SocksParseError", reason: "BadRequest", offset: 0 } })
    }))
})
