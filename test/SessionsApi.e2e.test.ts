/**
 * SPEC §8 over real loopback sockets: save → list → open → equal, a session's report,
 * connections and HAR, delete, import (and documents that are not HAR), compare of a
 * page loaded with and without an HTTP delay, and the token/Origin rules of SPEC §4.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { eventually, startMitm, tcpServer } from "./support/Loopback.js"
import { request } from "./support/ReportClient.js"
import { socks5Open } from "./support/SocksClient.js"

const json = { "content-type": "application/json" }

/** Every response the test origin sends: fixed, so a client knows where each ends. */
const response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"

/** An origin that answers each request head with `response` after `pauseMillis`, and closes after `Connection: close`. */
const origin = (pauseMillis = 0) =>
  tcpServer((socket) => {
    let received = ""
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1")
      for (let end = received.indexOf("\r\n\r\n"); end >= 0; end = received.indexOf("\r\n\r\n")) {
        const head = received.slice(0, end)
        received = received.slice(end + 4)
        setTimeout(() => (/connection: close/i.test(head) ? socket.end(response) : socket.write(response)), pauseMillis)
      }
    })
  })

/** `count` keep-alive GETs of /0 … /count-1 on one connection through MITM, one at a time as a browser sends them; the last closes it. */
const pageLoad = (proxyPort: number, originPort: number, count: number) =>
  Effect.gen(function*() {
    const { connection } = yield* socks5Open(proxyPort, "localhost", originPort)
    for (let index = 0; index < count; index++) {
      yield* connection.write(`GET /${index} HTTP/1.1\r\nHost: localhost:${originPort}\r\n${index === count - 1 ? "Connection: close\r\n" : ""}\r\n`)
      expect((yield* connection.read(response.length)).toString("latin1")).toBe(response)
    }
    yield* connection.readToEnd
  })

describe("sessions over HTTP (SPEC §8)", () => {
  it.scopedLive("save → list → open → equal: the session's connections are what /api/connections showed, after a reset too; its report, HAR and deletion", () =>
    Effect.gen(function*() {
      const server = yield* origin()
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const port = mitm.report.port
      const host = { host: `127.0.0.1:${port}` }
      yield* pageLoad(mitm.proxy.port, server.port, 3)
      yield* pageLoad(mitm.proxy.port, server.port, 2)
      yield* eventually(Effect.map(mitm.connections, (all) => (all.length === 2 && all.every((c) => c.state === "closed") ? all : undefined)))

      const shown = JSON.parse((yield* request(port, "GET", "/api/connections", { headers: host })).body)
      expect(shown).toHaveLength(2)
      const saved = yield* request(port, "POST", "/api/sessions", { headers: { ...host, ...json }, body: JSON.stringify({ name: "two loads" }) })
      expect(saved.status).toBe(200)
      const info = JSON.parse(saved.body)
      expect(info).toEqual({ id: expect.stringMatching(/^[A-Za-z0-9_-]+$/), name: "two loads", savedAt: expect.any(String), connections: 2, source: "mitm" })
      expect(Date.parse(info.savedAt)).not.toBeNaN()

      const other = JSON.parse((yield* request(port, "POST", "/api/sessions", { headers: { ...host, ...json }, body: JSON.stringify({ name: "later" }) })).body)
      const listed = JSON.parse((yield* request(port, "GET", "/api/sessions", { headers: host })).body)
      expect(listed.map((s: { id: string }) => s.id).sort()).toEqual([info.id, other.id].sort())
      // Newest first (the unit test orders sessions saved in one millisecond).
      expect(listed[0].savedAt >= listed[1].savedAt).toBe(true)
      expect(listed.find((s: { id: string }) => s.id === info.id)).toEqual(info)

      // The live measurements go; the session stays as it was.
      yield* request(port, "POST", "/api/reset", { headers: { ...host, ...json }, body: "{}" })
      yield* pageLoad(mitm.proxy.port, server.port, 1)
      const reopened = yield* request(port, "GET", `/api/sessions/${info.id}/connections`, { headers: host })
      expect(reopened.status).toBe(200)
      expect(JSON.parse(reopened.body)).toEqual(shown)
      const one = JSON.parse((yield* request(port, "GET", `/api/sessions/${info.id}/connections/2`, { headers: host })).body)
      expect(one).toEqual(shown[1])

      // Its report: the normal report, linking within the session.
      const report = yield* request(port, "GET", `/sessions/${info.id}`, { headers: host })
      expect(report.status).toBe(200)
      expect(report.body).toContain("two loads")
      expect(report.body).toContain(`<a href="/sessions/${info.id}/connections/1">`)
      expect(report.body).not.toContain(`href="/connections/1"`)
      expect((report.body.match(/<g class="row /g) ?? []).length).toBe(2)
      const page = yield* request(port, "GET", `/sessions/${info.id}/connections/1`, { headers: host })
      expect(page.status).toBe(200)
      expect(page.body).toMatch(/HttpRequestStart {2,}GET \/0 HTTP\/1\.1/)

      // Its HAR: HAR 1.2 with one entry per request and `_mitm` keeping the rest.
      const har = yield* request(port, "GET", `/sessions/${info.id}/har`, { headers: host })
      expect(har.headers["content-disposition"]).toMatch(/attachment; filename="mitm-session-.+\.har"/)
      const document = JSON.parse(har.body)
      expect(document.log.version).toBe("1.2")
      expect(document.log.entries.map((entry: { request: { url: string } }) => entry.request.url)).toEqual(
        [0, 1, 2, 0, 1].map((n) => `http://localhost:${server.port}/${n}`)
      )
      expect(document.log._mitm.connections).toHaveLength(2)

      const deleted = yield* request(port, "DELETE", `/api/sessions/${info.id}`, { headers: host })
      expect(JSON.parse(deleted.body)).toEqual({ deleted: info.id })
      expect((yield* request(port, "GET", `/api/sessions/${info.id}/connections`, { headers: host })).status).toBe(404)
      expect((yield* request(port, "DELETE", `/api/sessions/${info.id}`, { headers: host })).status).toBe(404)
      expect((yield* request(port, "GET", `/sessions/${info.id}`, { headers: host })).status).toBe(404)
      expect(JSON.parse((yield* request(port, "GET", "/api/sessions", { headers: host })).body).map((s: { id: string }) => s.id)).toEqual([other.id])
    }))

  it.scopedLive("state changes follow SPEC §4: JSON or the page's token, no foreign Origin; a bad name is refused", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const port = mitm.report.port
      const host = { host: `127.0.0.1:${port}` }
      const form = { ...host, "content-type": "application/x-www-form-urlencoded" }
      expect((yield* request(port, "POST", "/api/sessions", { headers: form, body: "name=x" })).status).toBe(415)
      expect((yield* request(port, "POST", "/api/sessions", { headers: { ...host, ...json, origin: "http://evil.example" }, body: "{\"name\":\"x\"}" })).status).toBe(403)
      expect((yield* request(port, "DELETE", "/api/sessions/x", { headers: { ...host, origin: "http://evil.example" } })).status).toBe(403)
      expect((yield* request(port, "GET", "/api/sessions", { headers: { host: "evil.example" } })).status).toBe(421)
      const badName = yield* request(port, "POST", "/api/sessions", { headers: { ...host, ...json }, body: JSON.stringify({ name: "" }) })
      expect(badName.status).toBe(400)
      expect(JSON.parse(badName.body)).toMatchObject({ field: "name" })

      // The sessions page's form: refused without its token, saved with it.
      expect((yield* request(port, "POST", "/sessions", { headers: form, body: "name=x" })).status).toBe(403)
      expect((yield* request(port, "POST", "/sessions", { headers: form, body: "name=x&token=wrong" })).status).toBe(403)
      const sessionsPage = (yield* request(port, "GET", "/sessions", { headers: host })).body
      const token = /name="token" value="([^"]+)"/.exec(sessionsPage)![1]
      const posted = yield* request(port, "POST", "/sessions", { headers: form, body: `name=by+form&token=${encodeURIComponent(token)}` })
      expect(posted.status).toBe(303)
      expect(posted.headers.location).toMatch(/^\/sessions\?notice=saved/)
      const [info] = JSON.parse((yield* request(port, "GET", "/api/sessions", { headers: host })).body)
      expect(info).toMatchObject({ name: "by form", connections: 0, source: "mitm" })
      expect((yield* request(port, "POST", `/sessions/${info.id}/delete`, { headers: form, body: "token=wrong" })).status).toBe(403)
      expect((yield* request(port, "POST", `/sessions/${info.id}/delete`, { headers: form, body: `token=${encodeURIComponent(token)}` })).status).toBe(303)
      expect(JSON.parse((yield* request(port, "GET", "/api/sessions", { headers: host })).body)).toEqual([])
    }))

  it.scopedLive("POST /api/sessions/import: a document that is not HAR gets 400 naming its first problem (path and expected shape)", () =>
    Effect.gen(function*() {
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const port = mitm.report.port
      const post = (body: string) => request(port, "POST", "/api/sessions/import", { headers: { host: `127.0.0.1:${port}`, ...json }, body })
      const cases: ReadonlyArray<readonly [string, string, string]> = [
        ["{ not json", "", "not a HAR document: not JSON"],
        ["[1, 2]", "", "not a HAR document: expected a HAR document: an object with a log"],
        ["{}", "log", "not a HAR document: log: is missing (expected a HAR log object ({ version, creator, entries }))"],
        [JSON.stringify({ log: { entries: {} } }), "log.entries", "not a HAR document: log.entries: expected an array of entries"],
        [
          JSON.stringify({ log: { entries: [{ startedDateTime: "2026-12-01T10:00:00Z", request: { method: "GET", url: 5 }, response: { status: 200 } }] } }),
          "log.entries[0].request.url",
          "not a HAR document: log.entries[0].request.url: expected string, got 5"
        ],
        [
          JSON.stringify({ log: { entries: [{ startedDateTime: "2026-12-01T10:00:00Z", request: { method: "GET", url: "/relative" }, response: { status: 200 } }] } }),
          "log.entries[0].request.url",
          "not a HAR document: log.entries[0].request.url: expected an absolute URL such as http://example.com/"
        ],
        [
          JSON.stringify({ log: { entries: [{ startedDateTime: "2026-12-01T10:00:00Z", request: { method: "GET", url: "http://a/" }, response: { status: 200 }, timings: { wait: "soon" } }] } }),
          "log.entries[0].timings.wait",
          "not a HAR document: log.entries[0].timings.wait: expected a number of milliseconds (or -1)"
        ]
      ]
      for (const [body, path, message] of cases) {
        const reply = yield* post(body)
        expect(reply.status, body).toBe(400)
        const error = JSON.parse(reply.body)
        if (path === "") expect(error.error).toMatch(new RegExp(`^${message.replace(/[()]/g, "\\$&")}`))
        else expect(error).toEqual({ error: message, path })
      }
      // Nothing was kept, and MITM still answers.
      expect(JSON.parse((yield* request(port, "GET", "/api/sessions", { headers: { host: `127.0.0.1:${port}` } })).body)).toEqual([])
    }))

  it.scopedLive("compare a page loaded without and with --http-delay 300ms: every request waits about 0.3 s longer, and the page says it came from more waiting", () =>
    Effect.gen(function*() {
      const server = yield* origin(5)
      const mitm = yield* startMitm({ upstream: { _tag: "Direct" } })
      const port = mitm.report.port
      const host = { host: `127.0.0.1:${port}` }
      const requests = 4
      const load = (name: string) =>
        Effect.gen(function*() {
          yield* request(port, "POST", "/api/reset", { headers: { ...host, ...json }, body: "{}" })
          yield* pageLoad(mitm.proxy.port, server.port, requests)
          yield* eventually(Effect.map(mitm.connections, (all) => (all.length === 1 && all[0].state === "closed" ? all : undefined)))
          return JSON.parse((yield* request(port, "POST", "/api/sessions", { headers: { ...host, ...json }, body: JSON.stringify({ name }) })).body).id as string
        })
      const plain = yield* load("no delay")
      const changed = yield* request(port, "PUT", "/api/settings", { headers: { ...host, ...json }, body: JSON.stringify({ httpDelay: "300ms" }) })
      expect(changed.status).toBe(200)
      const delayed = yield* load("http delay 300ms")

      const comparison = JSON.parse((yield* request(port, "GET", `/api/compare?a=${plain}&b=${delayed}`, { headers: host })).body)
      expect(Object.keys(comparison).sort()).toEqual(["a", "b", "delta", "onlyInA", "onlyInB", "servers"])
      expect(Object.keys(comparison.a).sort()).toEqual(["bytesDown", "connections", "firstRequestToLastByte", "meanSocksSetup", "meanWait", "requests", "responses"])
      expect(comparison.a).toMatchObject({ connections: 1, requests: requests, responses: requests })
      expect(comparison.delta).toMatchObject({ connections: 0, requests: 0, responses: 0, bytesDown: 0 })
      expect(comparison.delta.meanWait).toBeGreaterThan(0.28)
      expect(comparison.delta.meanWait).toBeLessThan(0.55)
      expect(comparison.delta.firstRequestToLastByte).toBeGreaterThan(requests * 0.28)
      expect(comparison.onlyInA).toEqual([])
      expect(comparison.onlyInB).toEqual([])
      expect(comparison.servers).toHaveLength(1)
      expect(comparison.servers[0].host).toBe("localhost")
      expect(comparison.servers[0].b.meanResponseTime - comparison.servers[0].a.meanResponseTime).toBeGreaterThan(0.28)

      // Every request, matched by URL, waited about 0.3 s longer.
      const waits = (id: string) =>
        Effect.map(request(port, "GET", `/api/sessions/${id}/connections`, { headers: host }), (reply) =>
          new Map<string, number>(JSON.parse(reply.body).flatMap((c: { exchanges: Array<{ url: string; wait: number }> }) => c.exchanges.map((e) => [e.url, e.wait]))))
      const before = yield* waits(plain)
      const after = yield* waits(delayed)
      expect(before.size).toBe(requests)
      for (const [url, wait] of before) {
        expect(after.get(url)! - wait, url).toBeGreaterThan(0.28)
        expect(after.get(url)! - wait, url).toBeLessThan(0.6)
      }

      const page = yield* request(port, "GET", `/compare?a=${plain}&b=${delayed}`, { headers: host })
      expect(page.status).toBe(200)
      expect(page.body).toMatch(/most of it came from more waiting for responses/)
      expect(page.body).toMatch(/More waiting for responses: \+0\.3\d\d s per request/)
      expect(page.body).toContain(`<svg id="timegraph-a"`)
      expect(page.body).toContain(`<svg id="timegraph-b"`)
      expect(page.body).toContain(`href="/sessions/${delayed}/connections/1"`)
      // Both graphs on one scale: the same ticks, 0 s at each one's first request.
      const ticks = (id: string) => {
        const svg = page.body.slice(page.body.indexOf(`<svg id="${id}"`))
        return svg.slice(0, svg.indexOf("</svg>")).match(/<line class="grid" x1="[\d.]+"/g)
      }
      expect(ticks("timegraph-a")).toEqual(ticks("timegraph-b"))
      expect(page.body).toMatch(/>0 s</)

      // `current` is a side too; an unknown id or a missing side is refused.
      const withCurrent = JSON.parse((yield* request(port, "GET", `/api/compare?a=${delayed}&b=current`, { headers: host })).body)
      expect(withCurrent.delta).toMatchObject({ connections: 0, requests: 0 })
      expect((yield* request(port, "GET", `/api/compare?a=${plain}&b=nope`, { headers: host })).status).toBe(404)
      const missing = yield* request(port, "GET", `/api/compare?a=${plain}`, { headers: host })
      expect(missing.status).toBe(400)
      expect(JSON.parse(missing.body).error).toMatch(/^a and b are required/)
    }), { timeout: 30_000 })
})
