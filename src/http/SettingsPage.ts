/**
 * `GET /settings` and its form: header detail, delays, upstream, max
 * connections, and reset. The form is decoded through the one settings schema;
 * an invalid field is shown next to the field and nothing changes.
 */
import * as crypto from "node:crypto"
import { accepts, encodeSettings, type Settings, type SettingsField, type SettingsJson } from "../domain/Settings.js"
import { type Html, html } from "./Html.js"

/** The page's token: a form post without it is refused (CSRF). One per process. */
export const makeFormToken = (): string => crypto.randomBytes(24).toString("base64url")

export const formTokenMatches = (expected: string, given: string | undefined): boolean => {
  if (given === undefined) return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}

/** A settings form as posted, turned into the settings document the schema decodes. */
export const settingsDocumentFromForm = (form: Readonly<Record<string, string | undefined>>): Record<string, unknown> => {
  const document: Record<string, unknown> = {}
  for (const field of Object.keys(accepts) as Array<SettingsField>) {
    const value = form[field]
    if (value === undefined) continue
    document[field] = field === "maxConnections" && /^\s*\d+\s*$/.test(value) ? Number(value) : value.trim()
  }
  return document
}

export interface SettingsView {
  readonly settings: Settings
  readonly token: string
  /** The values as the user typed them, after a refused post. */
  readonly submitted?: Readonly<Record<string, unknown>>
  readonly error?: { readonly field: string; readonly message: string }
  readonly notice?: "saved" | "switchedToDirect" | "reset"
}

const fieldError = (view: SettingsView, field: SettingsField) =>
  view.error?.field === field ? html`<div class="error" id="error-${field}">${view.error.message}</div>` : ""

export const settingsBody = (view: SettingsView): Html => {
  const current: SettingsJson = encodeSettings(view.settings)
  const value = (field: SettingsField) => String(view.submitted?.[field] ?? current[field])
  const direct = current.upstream === "direct"
  return html`
<h2>Settings</h2>
${view.notice === "saved" ? html`<p class="ok">Saved. Delays and the upstream apply to connections opened from now on; bandwidth limits apply at once.</p>` : ""}
${view.notice === "switchedToDirect" ? html`<p class="warn"><b>Traffic no longer goes through Tor.</b> New connections go straight to their targets from this machine (internal SOCKS); the sites see your address.</p>` : ""}
${view.notice === "reset" ? html`<p class="ok">All measurements forgotten; the session clock starts again with the next connection.</p>` : ""}
${view.error === undefined ? "" : html`<p class="error">Nothing was changed: ${view.error.message}</p>`}
<form class="settings" method="post" action="/settings">
  <input type="hidden" name="token" value="${view.token}">
  <label for="headers">Header lines</label>
  <div><select id="headers" name="headers">
    <option value="first"${value("headers") === "first" ? html` selected` : ""}>first line of each request/response</option>
    <option value="all"${value("headers") === "all" ? html` selected` : ""}>all header lines</option>
  </select>${fieldError(view, "headers")}</div>
  <label for="socksDelay">SOCKS connect delay</label>
  <div><input id="socksDelay" name="socksDelay" value="${value("socksDelay")}" size="18"><div class="hint">${accepts.socksDelay}: held before each SOCKS connect goes upstream</div>${fieldError(view, "socksDelay")}</div>
  <label for="httpDelay">HTTP request delay</label>
  <div><input id="httpDelay" name="httpDelay" value="${value("httpDelay")}" size="18"><div class="hint">${accepts.httpDelay}: held before each HTTP request goes upstream</div>${fieldError(view, "httpDelay")}</div>
  <label for="upstream">Upstream</label>
  <div><input id="upstream" name="upstream" value="${value("upstream")}" size="36">
    <div class="hint">${accepts.upstream}. Tor's SOCKS port is usually socks5://127.0.0.1:9050 (Tor Browser: 9150).</div>
    ${direct ? html`<div class="warn">Now: <b>direct</b>. Traffic does not go through Tor.</div>` : html`<div class="hint">Setting this to <code>direct</code> sends traffic around Tor, straight to the targets.</div>`}
    ${fieldError(view, "upstream")}</div>
  <label for="maxConnections">Max connections</label>
  <div><input id="maxConnections" name="maxConnections" value="${value("maxConnections")}" size="10" inputmode="numeric"><div class="hint">${accepts.maxConnections}; the oldest closed ones are evicted first</div>${fieldError(view, "maxConnections")}</div>
  <label for="bandwidth">Bandwidth per connection</label>
  <div><input id="bandwidth" name="bandwidth" value="${value("bandwidth")}" size="14"><div class="hint">${accepts.bandwidth}; applies at once</div>${fieldError(view, "bandwidth")}</div>
  <label for="bandwidthTotal">Bandwidth in total</label>
  <div><input id="bandwidthTotal" name="bandwidthTotal" value="${value("bandwidthTotal")}" size="14"><div class="hint">${accepts.bandwidthTotal}; applies at once</div>${fieldError(view, "bandwidthTotal")}</div>
  <label for="otlp">Telemetry collector</label>
  <div><input id="otlp" name="otlp" value="${value("otlp")}" size="36"><div class="hint">${accepts.otlp}: each closed connection is sent there as an OpenTelemetry trace</div>${fieldError(view, "otlp")}</div>
  <label for="otlpEncoding">Telemetry encoding</label>
  <div><select id="otlpEncoding" name="otlpEncoding">
    <option value="protobuf"${value("otlpEncoding") === "protobuf" ? html` selected` : ""}>protobuf</option>
    <option value="json"${value("otlpEncoding") === "json" ? html` selected` : ""}>JSON</option>
  </select>${fieldError(view, "otlpEncoding")}</div>
  <label for="vantage">Vantage</label>
  <div><input id="vantage" name="vantage" value="${value("vantage")}" size="24"><div class="hint">${accepts.vantage}; the traces' mitm.vantage, to tell this MITM from others in one backend</div>${fieldError(view, "vantage")}</div>
  <span></span><div><button type="submit">Save</button></div>
</form>
<h2>Reset</h2>
<form method="post" action="/reset">
  <input type="hidden" name="token" value="${view.token}">
  <button type="submit">Forget all measurements</button> <span class="muted">and restart the session clock</span>
</form>`
}
