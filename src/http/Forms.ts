/**
 * The report's form posts: read the posted form, and refuse it when it lacks the
 * page's token (CSRF, SPEC §4).
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as UrlParams from "@effect/platform/UrlParams"
import { Effect } from "effect"
import { html } from "./Html.js"
import { page } from "./Layout.js"
import { formTokenMatches } from "./SettingsPage.js"

/** The posted form, or undefined when its token is missing or wrong. */
export const postedForm = (token: string) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const params = yield* Effect.orElseSucceed(request.urlParamsBody, () => UrlParams.empty)
    const form: Record<string, string> = {}
    for (const [name, value] of params) if (!(name in form)) form[name] = value
    return formTokenMatches(token, form.token) ? form : undefined
  })

export const refused = page({
  title: "Refused",
  status: 403,
  body: html`<p class="error">This form's token is missing or stale. <a href="/settings">Open the settings page again</a> and retry.</p>`
})
