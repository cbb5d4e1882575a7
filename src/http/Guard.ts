/**
 * SPEC §4's request rules, before any route runs: the Host must be the
 * report's own (DNS rebinding), and a state change must come from the report's
 * own origin with a JSON body or the page's form token (CSRF). No route
 * changes state on GET.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect } from "effect"
import { formatHostPort } from "../domain/Address.js"
import type { ListenAddress } from "../services/ReportServer.js"
import { jsonError } from "./Responses.js"

/** The hosts (with port where one is needed) this report answers to. */
export interface Origins {
  readonly hosts: ReadonlySet<string>
}

const loopbackNames = ["127.0.0.1", "localhost", "[::1]"]

export const originsFor = (reportAddress: ListenAddress | undefined): Origins => {
  const hosts = new Set(["mitm.proxy", "mitm.proxy:80"])
  if (reportAddress !== undefined) {
    const own = formatHostPort(reportAddress.host, reportAddress.port)
    hosts.add(own)
    const loopback = reportAddress.host === "127.0.0.1" || reportAddress.host === "::1" || reportAddress.host === "0.0.0.0" || reportAddress.host === "::"
    if (loopback) for (const name of loopbackNames) hosts.add(`${name}:${reportAddress.port}`)
  }
  return { hosts }
}

const stateChanging = new Set(["POST", "PUT", "PATCH", "DELETE"])

export const guard = <E, R>(origins: Origins, app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const host = (request.headers.host ?? "").toLowerCase()
    if (!origins.hosts.has(host)) {
      return jsonError(421, `this report answers only to ${Array.from(origins.hosts).join(", ")} (Host was ${JSON.stringify(host)})`)
    }
    if (stateChanging.has(request.method)) {
      const origin = request.headers.origin
      if (origin !== undefined && !origins.hosts.has(origin.replace(/^https?:\/\//, "").toLowerCase())) {
        return jsonError(403, `cross-origin request refused (Origin ${JSON.stringify(origin)})`)
      }
      // The JSON API takes JSON only (a cross-site form cannot send it without CORS, which
      // MITM never grants); the pages' forms carry the page's token, checked by their routes.
      const type = (request.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase()
      const api = request.url.startsWith("/api/")
      // DELETE carries no body: a cross-site page cannot send one without a CORS preflight either.
      if (api && type !== "application/json" && !(request.method === "DELETE" && type === "")) {
        return jsonError(415, "a state change needs a JSON body (Content-Type: application/json)")
      }
      // multipart/form-data: a file the page's import form sends; its route checks the token too.
      if (!api && type !== "application/x-www-form-urlencoded" && type !== "multipart/form-data") {
        return jsonError(415, "a form post needs Content-Type: application/x-www-form-urlencoded (or multipart/form-data) and the page's token")
      }
    }
    return yield* app
  })
