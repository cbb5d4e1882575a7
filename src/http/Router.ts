/**
 * The report's routes (SPEC §3), the same in-band and on the report port,
 * behind the request guard of SPEC §4.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { connectionJson } from "../domain/Connection.js"
import { encodeSettings } from "../domain/Settings.js"
import { Reporter } from "../services/Reporter.js"
import { SettingsStore } from "../services/Settings.js"
import { Telemetry } from "../services/Telemetry.js"
import { connectionBody, connectionLive } from "./ConnectionPage.js"
import { guard, type Origins } from "./Guard.js"
import { postedForm, refused } from "./Forms.js"
import { harIndex, harWith } from "./Har.js"
import { html } from "./Html.js"
import { fragment, page } from "./Layout.js"
import { processStats } from "./ProcessStats.js"
import { parseFilter, reportBody, reportLive } from "./ReportPage.js"
import { jsonError, jsonStream, securityHeaders } from "./Responses.js"
import { connectionText } from "./SettledText.js"
import { sessionRoutes } from "./SessionRoutes.js"
import { settingsBody, settingsDocumentFromForm, type SettingsView } from "./SettingsPage.js"

export interface ReportAppConfig {
  readonly origins: Origins
  /** The token every form post must carry. */
  readonly formToken: string
  readonly version: string
}

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status, headers: securityHeaders })

const query = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
  Object.fromEntries(new URL(request.url, "http://mitm.proxy").searchParams))

const partial = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.headers["x-mitm-partial"] === "1")

const connectionId = Effect.map(HttpRouter.params, (params) => {
  const text = params.id ?? ""
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined
})

const seeOther = (location: string) => HttpServerResponse.redirect(location, { status: 303, headers: securityHeaders })

export const makeRouter = (config: ReportAppConfig) =>
  HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      Effect.gen(function*() {
        const reporter = yield* Reporter
        const view = {
          connections: yield* reporter.connections,
          counts: yield* reporter.counts,
          now: yield* reporter.now,
          version: yield* reporter.version,
          filter: parseFilter(yield* query),
          tor: { status: yield* reporter.torStatus, circuits: yield* reporter.circuits, torOf: reporter.torOf }
        }
        return (yield* partial) ? fragment(reportLive(view)) : page({ title: "Report", body: reportBody(view) })
      })
    ),
    HttpRouter.get(
      "/connections/:id",
      Effect.gen(function*() {
        const reporter = yield* Reporter
        const settings = yield* SettingsStore
        const id = yield* connectionId
        const connection = id === undefined ? undefined : yield* reporter.connection(id)
        if (connection === undefined) {
          return page({ title: "Unknown connection", status: 404, body: html`<p>No connection with that id (it may have been evicted or reset). <a href="/">Back to the report</a></p>` })
        }
        const view = {
          connection,
          headers: (yield* settings.get).headers,
          now: yield* reporter.now,
          version: yield* reporter.version,
          tor: { status: yield* reporter.torStatus, circuits: yield* reporter.circuits, torOf: reporter.torOf }
        }
        return (yield* partial)
          ? fragment(connectionLive(view))
          : page({ title: `Connection ${connection.id}`, body: connectionBody(view) })
      })
    ),
    HttpRouter.get(
      "/settings",
      Effect.gen(function*() {
        const settings = yield* SettingsStore
        const notice = (yield* query).notice
        return page({
          title: "Settings",
          body: settingsBody({
            settings: yield* settings.get,
            token: config.formToken,
            notice: notice === "saved" || notice === "switchedToDirect" || notice === "reset" ? notice : undefined
          })
        })
      })
    ),
    HttpRouter.post(
      "/settings",
      Effect.gen(function*() {
        const settings = yield* SettingsStore
        const form = yield* postedForm(config.formToken)
        if (form === undefined) return yield* refused
        const before = yield* settings.get
        const document = settingsDocumentFromForm(form)
        return yield* settings.update(document).pipe(
          Effect.map((after) =>
            seeOther(`/settings?notice=${before.upstream._tag !== "Direct" && after.upstream._tag === "Direct" ? "switchedToDirect" : "saved"}`)
          ),
          Effect.catchTag("SettingsError", (error) => {
            const view: SettingsView = { settings: before, token: config.formToken, submitted: document, error }
            return page({ title: "Settings", status: 400, body: settingsBody(view) })
          })
        )
      })
    ),
    HttpRouter.post(
      "/reset",
      Effect.gen(function*() {
        const reporter = yield* Reporter
        const form = yield* postedForm(config.formToken)
        if (form === undefined) return yield* refused
        yield* reporter.reset
        return seeOther("/settings?notice=reset")
      })
    ),
    HttpRouter.get(
      "/har",
      Effect.gen(function*() {
        const reporter = yield* Reporter
        const connections = yield* reporter.connections
        const start = (yield* reporter.sessionStartMillis) ?? 0
        const { entries, entryText, log } = harIndex(connections, {
          sessionStartMillis: start,
          creatorVersion: config.version,
          torOf: reporter.torOf
        })
        const stamp = new Date(start).toISOString().replace(/[:.]/g, "-")
        // The entries are built and sent in pieces.
        return jsonStream(entries, {
          within: (marker) => harWith(log, marker),
          text: entryText,
          headers: { "content-disposition": `attachment; filename="mitm-${stamp}.har"` }
        })
      })
    ),
    HttpRouter.get(
      "/api/status",
      Effect.flatMap(Reporter, (reporter) =>
        Effect.all({
          version: reporter.version,
          now: reporter.now,
          counts: reporter.counts,
          process: Effect.sync(processStats),
          telemetry: Effect.flatMap(Telemetry, (telemetry) => telemetry.status)
        }).pipe(
          Effect.map((status) => json(status))
        ))
    ),
    HttpRouter.get(
      "/api/connections",
      Effect.flatMap(Reporter, (reporter) =>
        Effect.map(reporter.connections, (connections) =>
          jsonStream(connections, { text: (connection) => connectionText(connection, reporter.torOf(connection.id)) })))
    ),
    HttpRouter.get(
      "/api/connections/:id",
      Effect.gen(function*() {
        const reporter = yield* Reporter
        const id = yield* connectionId
        const connection = id === undefined ? undefined : yield* reporter.connection(id)
        return connection === undefined
          ? jsonError(404, "no connection with that id")
          : json(connectionJson(connection, reporter.torOf(connection.id)))
      })
    ),
    HttpRouter.get(
      "/api/tor",
      Effect.flatMap(Reporter, (reporter) => Effect.map(reporter.torStatus, (status) => json(status)))
    ),
    HttpRouter.get(
      "/api/circuits",
      Effect.flatMap(Reporter, (reporter) => Effect.map(reporter.circuits, (circuits) => json(circuits)))
    ),
    HttpRouter.get(
      "/api/servers",
      Effect.flatMap(Reporter, (reporter) => Effect.map(reporter.servers, (servers) => json(servers)))
    ),
    HttpRouter.get(
      "/api/settings",
      Effect.flatMap(SettingsStore, (settings) => Effect.map(settings.get, (current) => json(encodeSettings(current))))
    ),
    HttpRouter.put(
      "/api/settings",
      Effect.gen(function*() {
        const settings = yield* SettingsStore
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = yield* Effect.either(request.json)
        if (body._tag === "Left") return jsonError(400, "the body is not valid JSON")
        return yield* settings.update(body.right).pipe(
          Effect.map((updated) => json(encodeSettings(updated))),
          Effect.catchTag("SettingsError", (error) => Effect.succeed(jsonError(400, error.message, { field: error.field })))
        )
      })
    ),
    HttpRouter.post(
      "/api/reset",
      Effect.flatMap(Reporter, (reporter) => Effect.as(reporter.reset, json({ reset: true })))
    ),
    HttpRouter.concat(sessionRoutes({ formToken: config.formToken }))
  )

/** The whole report app: the guard, then the routes; unknown routes get a JSON 404. */
export const reportApp = (config: ReportAppConfig) =>
  guard(config.origins, makeRouter(config)).pipe(
    Effect.catchTag("RouteNotFound", () => Effect.succeed(jsonError(404, "no such route"))),
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError("report route failed", defect), jsonError(500, "internal error"))
    )
  )
