/**
 * The routes of SPEC §8: sessions (save, list, import, open, delete), a session's
 * report, connections and HAR, and the comparison of two sessions, as JSON and as
 * pages. State changes pass the same guard as the settings (SPEC §4): a JSON body, or
 * a form with the page's token.
 */
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Multipart from "@effect/platform/Multipart"
import { Effect, Either, Option, Schema, Stream } from "effect"
import { connectionJson } from "../domain/Connection.js"
import { compareSessions } from "../domain/Comparison.js"
import { type Session, type SessionNotFound, type SessionStorageError, torOf } from "../domain/Session.js"
import { currentMeasurements, saveCurrent } from "../layers/CurrentSession.js"
import { savedTorStatus } from "../layers/SessionReporter.js"
import type { Reporter } from "../services/Reporter.js"
import { SettingsStore } from "../services/Settings.js"
import { Sessions } from "../services/Sessions.js"
import { type CompareSide, compareBody } from "./ComparePage.js"
import { connectionBody, connectionLive } from "./ConnectionPage.js"
import { postedForm, refused } from "./Forms.js"
import { html } from "./Html.js"
import { fragment, page } from "./Layout.js"
import { parseFilter, reportBody, reportLive, type ReportView } from "./ReportPage.js"
import { jsonError, jsonStream, securityHeaders } from "./Responses.js"
import { connectionText } from "./SettledText.js"
import { formTokenMatches } from "./SettingsPage.js"
import { sessionHeader, sessionsBody, type SessionsNotice } from "./SessionsPage.js"

export interface SessionRoutesConfig {
  /** The token every form post must carry. */
  readonly formToken: string
}

/** A HAR larger than this is refused: it is read whole and decoded in memory. */
export const maxHarBytes = 256 * 1024 * 1024

const json = (body: unknown, status = 200) => HttpServerResponse.unsafeJson(body, { status, headers: securityHeaders })

const seeOther = (location: string) => HttpServerResponse.redirect(location, { status: 303, headers: securityHeaders })

const query = Effect.map(HttpServerRequest.HttpServerRequest, (request) =>
  Object.fromEntries(new URL(request.url, "http://mitm.proxy").searchParams))

const partial = Effect.map(HttpServerRequest.HttpServerRequest, (request) => request.headers["x-mitm-partial"] === "1")

const param = (name: string) => Effect.map(HttpRouter.params, (params) => params[name] ?? "")

const SaveBodySchema = Schema.Struct({
  name: Schema.optional(Schema.String.pipe(
    Schema.filter((name) => name.trim().length >= 1 && name.length <= 200, {
      message: () => "name: expected a text of 1 to 200 characters"
    })
  ))
})

/** When no name is given: when it was saved. */
const defaultName = Effect.map(Effect.clockWith((clock) => clock.currentTimeMillis), (millis) => `session of ${new Date(millis).toISOString()}`)

/** The body read with `maxHarBytes` as its bound. */
const bounded = <A, E, R>(effect: Effect.Effect<A, E, R>) => HttpIncomingMessage.withMaxBodySize(effect, Option.some(maxHarBytes))

const tooLarge = Effect.map(HttpServerRequest.HttpServerRequest, (request) => Number(request.headers["content-length"] ?? 0) > maxHarBytes)

/** A session's error as JSON: 404 when there is none, 500 when its storage failed. */
const sessionErrorJson = (error: SessionNotFound | SessionStorageError) =>
  error._tag === "SessionNotFound" ? jsonError(404, error.message) : jsonError(500, error.message)

const sessionErrorPage = (error: SessionNotFound | SessionStorageError) =>
  page({
    title: error._tag === "SessionNotFound" ? "Unknown session" : "Session not readable",
    status: error._tag === "SessionNotFound" ? 404 : 500,
    body: html`<p class="error">${error.message}. <a href="/sessions">Back to the sessions</a></p>`
  })

/** A session's report page (and its live part, for the filter form's refresh). */
const sessionReportView = (session: Session, filter: ReportView["filter"]): ReportView => {
  const { measurements } = session
  const hasTor = measurements.circuits.length > 0 || measurements.tor.size > 0
  return {
    connections: measurements.connections,
    counts: {
      total: measurements.connections.length,
      evicted: 0,
      eventsCut: measurements.connections.reduce((sum, connection) => sum + connection.eventsCut, 0)
    },
    now: measurements.now,
    version: 0,
    // A saved session does not change: nothing to update live.
    filter: { ...filter, live: false },
    tor: hasTor ? { status: savedTorStatus(measurements), circuits: measurements.circuits, torOf: torOf(measurements) } : undefined,
    base: `/sessions/${session.info.id}`
  }
}

/** One side of a comparison: `current` or a session. */
const compareSide = (id: string) =>
  Effect.gen(function*() {
    if (id === "current") {
      return { id, name: "current measurements", measurements: yield* currentMeasurements, base: "" } satisfies CompareSide
    }
    const session = yield* Effect.flatMap(Sessions, (sessions) => sessions.get(id))
    return { id, name: session.info.name, measurements: session.measurements, base: `/sessions/${id}` } satisfies CompareSide
  })

/** `a` and `b` of a compare request, or what is missing. */
const compareIds = Effect.map(query, (q): Either.Either<readonly [string, string], string> =>
  q.a === undefined || q.a === "" || q.b === undefined || q.b === ""
    ? Either.left("a and b are required: each a session id or current (e.g. /compare?a=current&b=20261201-101502-3fa9c1)")
    : Either.right([q.a, q.b] as const))

/** The multipart import form: its fields and its first file. */
const postedImport = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const fields: Record<string, string> = {}
  let file: { readonly name: string; readonly bytes: Uint8Array } | undefined
  yield* Stream.runForEach(request.multipartStream, (part) => {
    if (Multipart.isField(part)) {
      fields[part.key] ??= part.value
      return Effect.void
    }
    if (Multipart.isFile(part)) {
      return Effect.map(part.contentEffect, (bytes) => {
        file ??= { name: part.name, bytes }
      })
    }
    return Effect.void
  })
  return { fields, file }
})

/** The text as JSON, or why it is not. */
const parseJson = (text: string): Either.Either<unknown, string> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (error) {
    return Either.left(`not JSON (${error instanceof Error ? error.message : String(error)})`)
  }
}

/** The sessions page, with a notice or an error. */
const sessionsPage = (config: SessionRoutesConfig, options: { readonly notice?: SessionsNotice; readonly error?: string; readonly status?: number }) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const list = yield* Effect.orElseSucceed(sessions.list, () => [])
    const current = (yield* currentMeasurements).connections.length
    return page({
      title: "Sessions",
      status: options.status,
      body: sessionsBody({ sessions: list, token: config.formToken, currentConnections: current, notice: options.notice, error: options.error })
    })
  })

export const sessionRoutes = (config: SessionRoutesConfig): HttpRouter.HttpRouter<never, Reporter | Sessions | SettingsStore> =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/api/sessions",
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = yield* Effect.either(request.json)
        if (body._tag === "Left") return jsonError(400, "the body is not valid JSON")
        const decoded = Schema.decodeUnknownEither(SaveBodySchema)(body.right ?? {})
        if (Either.isLeft(decoded)) return jsonError(400, "expected { \"name\": \"…\" } with a name of 1 to 200 characters", { field: "name" })
        const name = decoded.right.name?.trim() ?? (yield* defaultName)
        return yield* saveCurrent(name).pipe(
          Effect.map((info) => json(info)),
          Effect.catchTag("SessionStorageError", (error) => Effect.succeed(jsonError(500, error.message)))
        )
      })
    ),
    HttpRouter.get(
      "/api/sessions",
      Effect.flatMap(Sessions, (sessions) =>
        sessions.list.pipe(
          Effect.map((list) => json(list)),
          Effect.catchTag("SessionStorageError", (error) => Effect.succeed(jsonError(500, error.message)))
        ))
    ),
    HttpRouter.post(
      "/api/sessions/import",
      Effect.gen(function*() {
        if (yield* tooLarge) return jsonError(413, `a HAR document of at most ${maxHarBytes / 1024 / 1024} MiB is accepted`)
        const request = yield* HttpServerRequest.HttpServerRequest
        const text = yield* Effect.either(bounded(request.text))
        if (text._tag === "Left") return jsonError(400, `the body could not be read (at most ${maxHarBytes / 1024 / 1024} MiB)`)
        const document = parseJson(text.right)
        if (Either.isLeft(document)) return jsonError(400, `not a HAR document: ${document.left}`)
        const name = (yield* query).name?.trim()
        const sessions = yield* Sessions
        return yield* sessions.importHar(document.right, name === undefined || name === "" ? undefined : name.slice(0, 200)).pipe(
          Effect.map((info) => json(info)),
          Effect.catchTags({
            HarDocumentError: (error) => Effect.succeed(jsonError(400, error.message, { path: error.path })),
            SessionStorageError: (error) => Effect.succeed(jsonError(500, error.message))
          })
        )
      })
    ),
    HttpRouter.get(
      "/api/sessions/:id/connections",
      Effect.gen(function*() {
        const sessions = yield* Sessions
        return yield* sessions.get(yield* param("id")).pipe(
          Effect.map(({ measurements }) =>
            jsonStream(measurements.connections, { text: (connection) => connectionText(connection, torOf(measurements)(connection.id)) })),
          Effect.catchAll((error) => Effect.succeed(sessionErrorJson(error)))
        )
      })
    ),
    HttpRouter.get(
      "/api/sessions/:id/connections/:connection",
      Effect.gen(function*() {
        const sessions = yield* Sessions
        const id = Number(yield* param("connection"))
        return yield* sessions.get(yield* param("id")).pipe(
          Effect.map(({ measurements }) => {
            const connection = measurements.connections.find((c) => c.id === id)
            return connection === undefined
              ? jsonError(404, "no connection with that id in this session")
              : json(connectionJson(connection, torOf(measurements)(connection.id)))
          }),
          Effect.catchAll((error) => Effect.succeed(sessionErrorJson(error)))
        )
      })
    ),
    HttpRouter.del(
      "/api/sessions/:id",
      Effect.gen(function*() {
        const sessions = yield* Sessions
        const id = yield* param("id")
        return yield* sessions.remove(id).pipe(
          Effect.as(json({ deleted: id })),
          Effect.catchAll((error) => Effect.succeed(sessionErrorJson(error)))
        )
      })
    ),
    HttpRouter.get(
      "/api/compare",
      Effect.gen(function*() {
        const ids = yield* compareIds
        if (Either.isLeft(ids)) return jsonError(400, ids.left)
        const [a, b] = ids.right
        return yield* Effect.all([compareSide(a), compareSide(b)]).pipe(
          Effect.map(([sideA, sideB]) => json(compareSessions(sideA.measurements.connections, sideB.measurements.connections))),
          Effect.catchAll((error) => Effect.succeed(sessionErrorJson(error)))
        )
      })
    ),
    HttpRouter.get(
      "/compare",
      Effect.gen(function*() {
        const ids = yield* compareIds
        const list = yield* Effect.orElseSucceed(Effect.flatMap(Sessions, (sessions) => sessions.list), () => [])
        if (Either.isLeft(ids)) return yield* page({ title: "Compare", status: 400, body: html`<p class="error">${ids.left}</p>` })
        const [a, b] = ids.right
        return yield* Effect.all([compareSide(a), compareSide(b)]).pipe(
          Effect.flatMap(([sideA, sideB]) => page({ title: "Compare", body: compareBody({ a: sideA, b: sideB, sessions: list }) })),
          Effect.catchAll((error) => sessionErrorPage(error))
        )
      })
    ),
    HttpRouter.get(
      "/sessions",
      Effect.gen(function*() {
        const notice = (yield* query).notice
        return yield* sessionsPage(config, { notice: notice === "saved" || notice === "imported" || notice === "deleted" ? notice : undefined })
      })
    ),
    HttpRouter.post(
      "/sessions",
      Effect.gen(function*() {
        const form = yield* postedForm(config.formToken)
        if (form === undefined) return yield* refused
        const name = (form.name ?? "").trim()
        if (name === "" || name.length > 200) return yield* sessionsPage(config, { error: "Name: expected a text of 1 to 200 characters.", status: 400 })
        return yield* saveCurrent(name).pipe(
          Effect.map((info) => seeOther(`/sessions?notice=saved#${info.id}`)),
          Effect.catchTag("SessionStorageError", (error) => sessionsPage(config, { error: error.message, status: 500 }))
        )
      })
    ),
    HttpRouter.post(
      "/sessions/import",
      Effect.gen(function*() {
        if (yield* tooLarge) return yield* sessionsPage(config, { error: `The file is too large: at most ${maxHarBytes / 1024 / 1024} MiB.`, status: 413 })
        // A .har file may come as application/json, which the multipart reader otherwise turns into a text field.
        const posted = yield* Effect.either(bounded(Multipart.withFieldMimeTypes(postedImport, [])))
        if (Either.isLeft(posted)) return yield* sessionsPage(config, { error: `The form could not be read: ${posted.left.message}`, status: 400 })
        const { fields, file } = posted.right
        if (!formTokenMatches(config.formToken, fields.token)) return yield* refused
        if (file === undefined || file.bytes.length === 0) return yield* sessionsPage(config, { error: "Choose a HAR file to import.", status: 400 })
        const document = parseJson(Buffer.from(file.bytes).toString("utf8"))
        if (Either.isLeft(document)) return yield* sessionsPage(config, { error: `${file.name} is ${document.left}.`, status: 400 })
        const name = (fields.name ?? "").trim().slice(0, 200)
        const sessions = yield* Sessions
        return yield* sessions.importHar(document.right, name === "" ? undefined : name).pipe(
          Effect.map((info) => seeOther(`/sessions/${info.id}`)),
          Effect.catchTags({
            HarDocumentError: (error) => sessionsPage(config, { error: `${file.name} is ${error.message}.`, status: 400 }),
            SessionStorageError: (error) => sessionsPage(config, { error: error.message, status: 500 })
          })
        )
      })
    ),
    HttpRouter.post(
      "/sessions/:id/delete",
      Effect.gen(function*() {
        const form = yield* postedForm(config.formToken)
        if (form === undefined) return yield* refused
        const sessions = yield* Sessions
        return yield* sessions.remove(yield* param("id")).pipe(
          Effect.as(seeOther("/sessions?notice=deleted")),
          Effect.catchAll((error) => sessionErrorPage(error))
        )
      })
    ),
    HttpRouter.get(
      "/sessions/:id",
      Effect.gen(function*() {
        const sessions = yield* Sessions
        const filter = parseFilter(yield* query)
        const asFragment = yield* partial
        return yield* sessions.get(yield* param("id")).pipe(
          Effect.flatMap((session) => {
            const view = sessionReportView(session, filter)
            return asFragment
              ? Effect.succeed(fragment(reportLive(view)))
              : page({ title: `Session ${session.info.name}`, body: html`${sessionHeader(session)}${reportBody(view)}` })
          }),
          Effect.catchAll((error) => sessionErrorPage(error))
        )
      })
    ),
    HttpRouter.get(
      "/sessions/:id/connections/:connection",
      Effect.gen(function*() {
        const sessions = yield* Sessions
        const settings = yield* SettingsStore
        const id = Number(yield* param("connection"))
        const headers = (yield* settings.get).headers
        const asFragment = yield* partial
        return yield* sessions.get(yield* param("id")).pipe(
          Effect.flatMap((session) => {
            const { measurements } = session
            const connection = measurements.connections.find((c) => c.id === id)
            const base = `/sessions/${session.info.id}`
            if (connection === undefined) {
              return page({ title: "Unknown connection", status: 404, body: html`<p>No connection with that id in this session. <a href="${base}">Back to its report</a></p>` })
            }
            const view = {
              connection,
              headers,
              now: measurements.now,
              version: 0,
              tor: sessionReportView(session, { live: false }).tor,
              base
            }
            return asFragment
              ? Effect.succeed(fragment(connectionLive(view)))
              : page({ title: `Connection ${connection.id} of ${session.info.name}`, body: connectionBody(view) })
          }),
          Effect.catchAll((error) => sessionErrorPage(error))
        )
      })
    ),
    HttpRouter.get(
      "/sessions/:id/har",
      Effect.gen(function*() {
        const sessions = yield* Sessions
        const id = yield* param("id")
        return yield* sessions.har(id).pipe(
          Effect.map((text) =>
            HttpServerResponse.text(text, {
              contentType: "application/json",
              headers: { ...securityHeaders, "content-disposition": `attachment; filename="mitm-session-${id}.har"` }
            })),
          Effect.catchAll((error) => Effect.succeed(sessionErrorJson(error)))
        )
      })
    )
  )
