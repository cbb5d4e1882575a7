/**
 * `GET /sessions`: the saved and imported sessions, and the forms that save the
 * current measurements, import a HAR file from the browser, delete a session and
 * compare two. Every form post carries the page's token (SPEC §4).
 */
import type { Session, SessionInfo } from "../domain/Session.js"
import { type Html, html } from "./Html.js"

export type SessionsNotice = "saved" | "imported" | "deleted"

export interface SessionsView {
  readonly sessions: ReadonlyArray<SessionInfo>
  readonly token: string
  /** Connections measured now, which "save" would keep. */
  readonly currentConnections: number
  readonly notice?: SessionsNotice
  /** Why the last post was refused, shown above the forms. */
  readonly error?: string
}

const notices: Record<SessionsNotice, string> = {
  saved: "The current measurements were saved as a session.",
  imported: "The HAR file was imported as a session.",
  deleted: "The session was deleted."
}

/** `2026-12-01 10:15:02 UTC` */
export const savedAtText = (iso: string): string => iso.replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC")

/** A session as a compare form names it. */
const choice = (info: SessionInfo, selected: string | undefined): Html =>
  html`<option value="${info.id}"${info.id === selected ? html` selected` : ""}>${info.name} (${savedAtText(info.savedAt)})</option>`

/** Two selects, `a` and `b`: `current` or a session. */
export const compareForm = (sessions: ReadonlyArray<SessionInfo>, a?: string, b?: string): Html => html`
<form class="row" method="get" action="/compare" id="compare-form">
  <label>A<select name="a"><option value="current"${a === "current" ? html` selected` : ""}>current measurements</option>${sessions.map((info) => choice(info, a))}</select></label>
  <label>B<select name="b"><option value="current"${b === undefined || b === "current" ? html` selected` : ""}>current measurements</option>${sessions.map((info) => choice(info, b))}</select></label>
  <button>Compare</button>
</form>`

const sessionRow = (info: SessionInfo, token: string): Html => html`<tr data-id="${info.id}">
<td><a href="/sessions/${info.id}">${info.name}</a></td>
<td>${savedAtText(info.savedAt)}</td>
<td class="n">${info.connections}</td>
<td>${info.source === "mitm" ? "measured by MITM" : "imported HAR"}</td>
<td><a href="/sessions/${info.id}/har">HAR</a> · <a href="/api/sessions/${info.id}/connections">JSON</a> · <a href="/compare?a=${info.id}&amp;b=current">compare with current</a></td>
<td><form method="post" action="/sessions/${info.id}/delete" class="inline"><input type="hidden" name="token" value="${token}"><button class="delete">Delete</button></form></td>
</tr>`

export const sessionsBody = (view: SessionsView): Html => html`
${view.notice === undefined ? "" : html`<p class="ok" id="notice">${notices[view.notice]}</p>`}
${view.error === undefined ? "" : html`<p class="error" id="error">${view.error}</p>`}
<h2>Save the current measurements</h2>
<form method="post" action="/sessions" class="row" id="save-form">
  <input type="hidden" name="token" value="${view.token}">
  <label>Name<input name="name" size="40" maxlength="200" required placeholder="e.g. with --http-delay 300ms"></label>
  <button>Save ${view.currentConnections} connections</button>
</form>
<h2>Import a HAR file <span class="muted">(Chromium/DevTools, Firefox, Playwright or MITM)</span></h2>
<form method="post" action="/sessions/import" enctype="multipart/form-data" class="row" id="import-form">
  <input type="hidden" name="token" value="${view.token}">
  <label>HAR file<input type="file" name="har" accept=".har,application/json" required></label>
  <label>Name <span class="muted">(optional)</span><input name="name" size="30" maxlength="200"></label>
  <button>Import</button>
</form>
<h2>Compare two</h2>
${compareForm(view.sessions, "current", "current")}
<h2>Sessions <span class="muted">${view.sessions.length} kept</span></h2>
${view.sessions.length === 0
  ? html`<p class="muted">No sessions yet: save the current measurements or import a HAR file.</p>`
  : html`<table id="sessions"><thead><tr><th>Name</th><th>Saved</th><th class="n">Connections</th><th>Source</th><th></th><th></th></tr></thead><tbody>
${view.sessions.map((info) => sessionRow(info, view.token))}
</tbody></table>`}`

/** The line above a session's report: what it is, and where its HAR and JSON are. */
export const sessionHeader = (session: Session): Html => html`
<p class="muted" id="session"><a href="/sessions">← sessions</a> · Session <b>${session.info.name}</b> · saved ${savedAtText(session.info.savedAt)} · ${session.info.source === "mitm" ? "measured by MITM" : "imported from a HAR file: its phases come from the HAR's timings"} ·
<a href="/sessions/${session.info.id}/har">HAR</a> · <a href="/api/sessions/${session.info.id}/connections">JSON</a> · <a href="/compare?a=${session.info.id}&amp;b=current">compare with current</a></p>`
