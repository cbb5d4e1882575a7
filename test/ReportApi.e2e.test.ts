/**
 * The report's JSON routes, on the report port and in-band through the proxy
 * at http://mitm.proxy/, with SPEC §4's Host and Origin rules.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connectionJson } from "../src/domain/Connection.js"
import { defaultSettings } from "../src/domain/Settings.js"
import { eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { request } from "./support/ReportClient.js"
import { socks5Open } from "./support/SocksClient.js"

const json = { "content-type": "application/json" }

describe("the report's JSON API", () => {
  it.scopedLive("GET /api/connections, /api/connections/:id and /api/servers show what went through", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const { connection } = yield* socks5Open(mitm.proxy.port, "localhost", origin.port)
      yield* connection.write("GET /a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
      yield* connection.readToEnd
      yield* eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.state === "closed")))

      const host = { host: `127.0.0.1:${mitm.report.port}` }
      const list = yield* request(mitm.report.port, "GET", "/api/connections", { headers: host })
      expect(list.status).toBe(200)
      expect(list.headers["content-type"]).toMatch(/application\/json/)
      expect(list.headers["access-control-allow-origin"]).toBeUndefined()
      const connections = JSON.parse(list.body)
      expect(connections).toHaveLength(1)
      expect(connections[0]).toMatchObject({
        id: 1,
        host: "localhost",
        port: origin.port,
        upstream: "direct",
        state: "closed",
        protocol: "http",
        error: null
      })
      expect(connections[0].client).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(typeof connections[0].openedAt).toBe("number")
      expect(typeof connections[0].closedAt).toBe("number")

      const one = yield* request(mitm.report.port, "GET", "/api/connections/1", { headers: host })
      expect(JSON.parse(one.body).events.filter((e: { type: string }) => e.type === "HttpRequestStart").map((e: { detail: string }) => e.detail))
        .toEqual(["GET /a HTTP/1.1", "GET /b HTTP/1.1"])
      const missing = yield* request(mitm.report.port, "GET", "/api/connections/99", { headers: host })
      expect(missing.status).toBe(404)
      expect(JSON.parse(missing.body).error).toMatch(/no connection/)

      const servers = JSON.parse((yield* request(mitm.report.port, "GET", "/api/servers", { headers: host })).body)
      expect(servers).toEqual([expect.objectContaining({
        host: "localhost",
        ports: [origin.port],
        connections: 1,
        openConnections: 0,
        requests: 2,
        responses: 2
      })])
      expect(servers[0].meanResponseTime).toBeGreaterThanOrEqual(0)
      expect(servers[0].totalConnectionTime).toBeGreaterThan(0)
    }))

  it.scopedLive("the report is served in-band to a browser that asks the proxy for mitm.proxy, and that is not measured", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const { connection, reply } = yield* socks5Open(mitm.proxy.port, "mitm.proxy", 80)
      expect(reply[1]).toBe(0x00)
      yield* connection.write("GET /api/settings HTTP/1.1\r\nHost: mitm.proxy\r\nConnection: close\r\n\r\n")
      const response = (yield* connection.readToEnd).toString()
      expect(response).toMatch(/^HTTP\/1\.1 200 OK/)
      expect(JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4))).toEqual({
        headers: "first",
        socksDelay: "0",
        httpDelay: "0",
        upstream: "direct",
        maxConnections: 10000,
        bandwidth: "off",
        bandwidthTotal: "off",
        otlp: "off",
        otlpEncoding: "protobuf",
        vantage: defaultSettings.vantage
      })
      expect(yield* mitm.connections).toHaveLength(0)
    }))

  it.scopedLive("PUT /api/settings validates through the settings schema: a bad field is named and nothing changes", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const host = { host: `127.0.0.1:${mitm.report.port}` }
      const bad = yield* request(mitm.report.port, "PUT", "/api/settings", {
        headers: { ...host, ...json },
        body: JSON.stringify({ socksDelay: "soon", headers: "all" })
      })
      expect(bad.status).toBe(400)
      expect(JSON.parse(bad.body)).toMatchObject({ field: "socksDelay" })
      expect(JSON.parse(bad.body).error).toMatch(/socksDelay: expected 0, a duration like 250ms/)
      const unchanged = JSON.parse((yield* request(mitm.report.port, "GET", "/api/settings", { headers: host })).body)
      expect(unchanged.headers).toBe("first")

      const good = yield* request(mitm.report.port, "PUT", "/api/settings", {
        headers: { ...host, ...json },
        body: JSON.stringify({ ...unchanged, socksDelay: "200ms..800ms", headers: "all", maxConnections: 50 })
      })
      expect(good.status).toBe(200)
      expect(JSON.parse(good.body)).toMatchObject({ socksDelay: "200ms..800ms", headers: "all", maxConnections: 50 })
      const unknown = yield* request(mitm.report.port, "PUT", "/api/settings", {
        headers: { ...host, ...json },
        body: JSON.stringify({ colour: "blue" })
      })
      expect(unknown.status).toBe(400)
      expect(JSON.parse(unknown.body).error).toMatch(/colour: unknown setting/)
    }))

  it.scopedLive("POST /api/reset forgets all measurements, and ids start again from 1", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const first = yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      first.connection.socket.destroy()
      yield* eventually(Effect.map(mitm.connections, (all) => all.find((c) => c.state !== "open")))
      const host = { host: `127.0.0.1:${mitm.report.port}` }
      const reset = yield* request(mitm.report.port, "POST", "/api/reset", { headers: { ...host, ...json }, body: "{}" })
      expect(reset.status).toBe(200)
      expect(yield* mitm.connections).toHaveLength(0)
      yield* socks5Open(mitm.proxy.port, "127.0.0.1", origin.port)
      const after = yield* eventually(Effect.map(mitm.connections, (all) => all[0]))
      expect(after.id).toBe(1)
      expect(after.openedAt).toBe(0)
    }))

  it.scopedLive("the settings form works with the page's token, and only from the report's own origin", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const port = mitm.report.port
      const host = { host: `127.0.0.1:${port}` }
      const page = yield* request(port, "GET", "/settings", { headers: host })
      expect(page.headers["content-security-policy"]).toMatch(/script-src 'nonce-[^']+'/)
      expect(page.headers["x-content-type-options"]).toBe("nosniff")
      const token = /name="token" value="([^"]+)"/.exec(page.body)![1]
      const form = { ...host, "content-type": "application/x-www-form-urlencoded" }
      const saved = yield* request(port, "POST", "/settings", { headers: { ...form, origin: `http://127.0.0.1:${port}` }, body: `token=${token}&headers=all&httpDelay=250ms` })
      expect(saved.status).toBe(303)
      expect(saved.headers.location).toBe("/settings?notice=saved")
      const settings = JSON.parse((yield* request(port, "GET", "/api/settings", { headers: host })).body)
      expect(settings).toMatchObject({ headers: "all", httpDelay: "250ms" })
      const invalid = yield* request(port, "POST", "/settings", { headers: form, body: `token=${token}&maxConnections=0` })
      expect(invalid.status).toBe(400)
      expect(invalid.body).toMatch(/id="error-maxConnections">maxConnections: expected a whole number/)
      const crossSite = yield* request(port, "POST", "/settings", { headers: { ...form, origin: "http://evil.example" }, body: `token=${token}&headers=first` })
      expect(crossSite.status).toBe(403)
    }))

  it.scopedLive("a foreign Host (DNS rebinding), a cross-origin Origin, or a non-JSON state change is refused", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const port = mitm.report.port
      const rebound = yield* request(port, "GET", "/api/connections", { headers: { host: `evil.example:${port}` } })
      expect(rebound.status).toBe(421)
      const crossOrigin = yield* request(port, "POST", "/api/reset", {
        headers: { host: `127.0.0.1:${port}`, origin: "http://evil.example", ...json },
        body: "{}"
      })
      expect(crossOrigin.status).toBe(403)
      const form = yield* request(port, "PUT", "/api/settings", {
        headers: { host: `127.0.0.1:${port}`, "content-type": "text/plain" },
        body: JSON.stringify({ headers: "all" })
      })
      expect(form.status).toBe(415)
      const formWithoutToken = yield* request(port, "POST", "/settings", {
        headers: { host: `127.0.0.1:${port}`, "content-type": "application/x-www-form-urlencoded" },
        body: "headers=all"
      })
      expect(formWithoutToken.status).toBe(403)
      const resetWithWrongToken = yield* request(port, "POST", "/reset", {
        headers: { host: `127.0.0.1:${port}`, "content-type": "application/x-www-form-urlencoded" },
        body: "token=guess"
      })
      expect(resetWithWrongToken.status).toBe(403)
      const formToTheApi = yield* request(port, "POST", "/api/reset", {
        headers: { host: `127.0.0.1:${port}`, "content-type": "application/x-www-form-urlencoded" },
        body: "x=1"
      })
      expect(formToTheApi.status).toBe(415)
      const getReset = yield* request(port, "GET", "/api/reset", { headers: { host: `127.0.0.1:${port}` } })
      expect(getReset.status).toBe(404)
      const settings = JSON.parse((yield* request(port, "GET", "/api/settings", { headers: { host: `localhost:${port}` } })).body)
      expect(settings.headers).toBe("first")
    }))

  it.scopedLive("/api/connections and /har, sent in pieces, are whole JSON documents with every connection and exchange", () =>
    Effect.gen(function*() {
      const origin = yield* httpOrigin((_request, response) => response.end("ok"))
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      // More connections than one piece holds (32), so many pieces are joined.
      const count = 600
      for (let n = 0; n < count; n += 50) {
        yield* Effect.all(Array.from({ length: Math.min(50, count - n) }, (_, k) =>
          Effect.gen(function*() {
            const { connection } = yield* socks5Open(mitm.proxy.port, "localhost", origin.port)
            yield* connection.write(`GET /${n + k} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
            yield* connection.readToEnd
          })), { concurrency: "unbounded" })
      }
      yield* eventually(Effect.map(mitm.connections, (all) => all.filter((c) => c.state !== "open").length === count ? true : undefined))
      const host = { host: `127.0.0.1:${mitm.report.port}` }

      const list = yield* request(mitm.report.port, "GET", "/api/connections", { headers: host })
      expect(list.status).toBe(200)
      expect(list.headers["content-type"]).toMatch(/application\/json/)
      const connections = JSON.parse(list.body) as Array<{ id: number }>
      expect(connections.map((c) => c.id)).toEqual(Array.from({ length: count }, (_, k) => k + 1))
      expect(connections).toEqual(JSON.parse(JSON.stringify((yield* mitm.connections).map((c) => connectionJson(c)))))

      const har = yield* request(mitm.report.port, "GET", "/har", { headers: host })
      expect(har.status).toBe(200)
      expect(har.headers["content-disposition"]).toMatch(/^attachment; filename="mitm-.*\.har"$/)
      const document = JSON.parse(har.body)
      expect(document.log.version).toBe("1.2")
      expect(document.log.creator.name).toBe("MITM")
      expect(document.log.entries).toHaveLength(count)
      expect(new Set(document.log.entries.map((e: { request: { url: string } }) => e.request.url)).size).toBe(count)
      expect(har.body).not.toMatch(/mitm-array/)
    }))
})
