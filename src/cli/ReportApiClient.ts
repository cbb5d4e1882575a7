/**
 * `measure` talks to its own MITM's report API for what lives behind it:
 * saving the current measurements as a session (`POST /api/sessions`, SPEC §8)
 * and comparing two sessions (`GET /api/compare`). A JSON body from a client
 * that sends no Origin passes the report's guard (SPEC §4), like any script's.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Effect, Schema } from "effect"
import { formatHostPort } from "../domain/Address.js"
import type { ListenAddress } from "../services/ReportServer.js"

/** The report API did not give what was asked: the route's status and message, or why it could not be reached. */
export class ReportApiError extends Schema.TaggedError<ReportApiError>()("ReportApiError", {
  route: Schema.String,
  message: Schema.String
}) {}

const SavedSession = Schema.Struct({ id: Schema.String, name: Schema.String })

const describe = (route: string, status: number, body: string): ReportApiError => {
  let message = body.trim().slice(0, 200)
  try {
    const parsed = JSON.parse(body) as { error?: unknown }
    if (typeof parsed.error === "string") message = parsed.error
  } catch {
    // not JSON: the text as it came
  }
  return new ReportApiError({ route, message: `${route} answered ${status}${message === "" ? "" : `: ${message}`}` })
}

/** One call: the answer's JSON when its status is 2xx, a ReportApiError otherwise. */
const call = (route: string, request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = yield* client.execute(request)
    const body = yield* response.text
    if (response.status < 200 || response.status > 299) return yield* Effect.fail(describe(route, response.status, body))
    return yield* Effect.try({
      try: () => JSON.parse(body) as unknown,
      catch: () => new ReportApiError({ route, message: `${route} answered ${response.status} with a body that is not JSON` })
    })
  }).pipe(
    Effect.scoped,
    Effect.catchTags({
      RequestError: (error) => Effect.fail(new ReportApiError({ route, message: `${route} failed: ${error.message}` })),
      ResponseError: (error) => Effect.fail(new ReportApiError({ route, message: `${route} failed: ${error.message}` }))
    })
  )

const base = (report: ListenAddress) => `http://${formatHostPort(report.host, report.port)}`

/** Saves the current measurements under `name`; the new session's id. */
export const saveSession = (report: ListenAddress, name: string) =>
  call("POST /api/sessions", HttpClientRequest.post(`${base(report)}/api/sessions`).pipe(HttpClientRequest.bodyUnsafeJson({ name }))).pipe(
    Effect.flatMap((answer) =>
      Schema.decodeUnknown(SavedSession)(answer).pipe(
        Effect.map((session) => session.id),
        Effect.mapError(() => new ReportApiError({ route: "POST /api/sessions", message: "POST /api/sessions answered without a session id" }))
      )
    )
  )

/** `GET /api/compare?a=…&b=…`: the comparison document as the API gives it. */
export const compareSessions = (report: ListenAddress, a: string, b: string) =>
  call(
    "GET /api/compare",
    HttpClientRequest.get(`${base(report)}/api/compare`, { urlParams: { a, b } })
  )
