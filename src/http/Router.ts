/**
 * The report's routes (SPEC §3), the same in-band and on the report port,
 * behind the request guard of SPEC §4.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
import { encodeSettings } from "../domain/Settings.js"
import { Reporter } from "../services/Reporter.js"
import { SettingsStore } from "../services/Settings.js"
import { guard, type Origins } from "./Guard.js"
import { indexPage } from "./IndexPage.js"
import { jsonError, securityHeaders } from "./Responses.js"

const json = (body: unknown, status = 200) =>
  HttpServerResponse.unsafeJson(body, { status, headers: securityHeaders })

const connectionId = Effect.map(HttpRouter.params, (params) => {
  const text = params.id ?? ""
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined
})

export const router = HttpRouter.empty.pipe(
  HttpRouter.get("/", Effect.map(Reporter, (reporter) => reporter).pipe(Effect.flatMap(indexPage))),
  HttpRouter.get(
    "/api/connections",
    Effect.flatMap(Reporter, (reporter) => Effect.map(reporter.connections, (connections) => json(connections)))
  ),
  HttpRouter.get(
    "/api/connections/:id",
    Effect.gen(function*() {
      const reporter = yield* Reporter
      const id = yield* connectionId
      const connection = id === undefined ? undefined : yield* reporter.connection(id)
      return connection === undefined ? jsonError(404, "no connection with that id") : json(connection)
    })
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
  )
)

/** The whole report app: the guard, then the routes; unknown routes get a JSON 404. */
export const reportApp = (origins: Origins) =>
  guard(origins, router).pipe(
    Effect.catchTag("RouteNotFound", () => Effect.succeed(jsonError(404, "no such route"))),
    Effect.catchAllDefect((defect) =>
      Effect.as(Effect.logError("report route failed", defect), jsonError(500, "internal error"))
    )
  )
