/**
 * The frame of every report page: navigation, styles, and the page's one
 * script (allowed by a per-response nonce): live updates, sortable tables and
 * graph filtering without a full reload.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as crypto from "node:crypto"
import { Html, html } from "./Html.js"
import { securityHeaders } from "./Responses.js"

const styles = `
:root{color-scheme:light;--fg:#1d1d1f;--muted:#667;--line:#dde;--accent:#0b62c4}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:var(--fg);background:#fff}
header{display:flex;gap:1.2em;align-items:baseline;padding:.6em 1.5em;border-bottom:1px solid var(--line);background:#f7f8fa}
header h1{font-size:1.05em;margin:0}
header nav a{margin-right:1em}
main{padding:.5em 1.5em 2em}
a{color:var(--accent)}
h2{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.3em 0}
td,th{border-bottom:1px solid var(--line);padding:2px 10px 2px 4px;text-align:left;vertical-align:top}
th{font-weight:600;background:#fafbfc}
th[data-sort]{cursor:pointer;user-select:none}
th[data-sort]:after{content:" ↕";color:#aab}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
.warn{background:#fff4e5;border:1px solid #f0b429;padding:.5em .8em;border-radius:4px}
.error{color:#b00020}
.ok{background:#e8f5e9;border:1px solid #81c784;padding:.5em .8em;border-radius:4px}
.cards{display:flex;flex-wrap:wrap;gap:.6em;margin:.4em 0}
.card{border:1px solid var(--line);border-radius:6px;padding:.35em .8em;min-width:7em}
.card b{display:block;font-size:1.25em;font-variant-numeric:tabular-nums}
.lists{display:flex;flex-wrap:wrap;gap:2em}
pre.log{font:12.5px/1.5 ui-monospace,Menlo,Consolas,monospace;background:#fafbfc;border:1px solid var(--line);padding:.6em;overflow:auto;white-space:pre}
form.filter,form.row{display:flex;gap:.6em;align-items:end;flex-wrap:wrap;margin:.4em 0}
form.filter label,form.row label,form.settings label{display:flex;flex-direction:column;font-size:.9em;color:var(--muted)}
form.settings{display:grid;grid-template-columns:max-content 1fr;gap:.6em 1em;align-items:start;max-width:60em}
form.settings .hint{font-size:.85em;color:var(--muted)}
input,select,button{font:inherit}
.graph{overflow-x:auto}
.swatch{display:inline-block;width:.7em;height:.7em;margin-right:.3em;border-radius:2px}
ol.path{margin:0;padding-left:1.4em}
.more{color:#b00020}
.less{color:#1b7f3b}
form.inline{display:inline;margin:0}
`

const script = `
(() => {
  const live = document.getElementById("live");
  const enhance = () => {
    for (const table of document.querySelectorAll("table.sortable")) {
      table.querySelectorAll("th[data-sort]").forEach((th, column) => {
        if (th.dataset.bound) return;
        th.dataset.bound = "1";
        th.addEventListener("click", () => {
          const body = table.tBodies[0];
          const down = th.dataset.dir !== "down";
          th.dataset.dir = down ? "down" : "up";
          const index = Array.from(th.parentNode.children).indexOf(th);
          const key = (row) => row.children[index].dataset.value ?? row.children[index].textContent;
          const numeric = th.dataset.sort === "n";
          const rows = Array.from(body.rows).sort((a, b) => {
            const x = key(a), y = key(b);
            const order = numeric ? (Number(x) - Number(y)) : String(x).localeCompare(String(y));
            return down ? -order : order;
          });
          rows.forEach((row) => body.appendChild(row));
        });
      });
    }
  };
  const refresh = async () => {
    const response = await fetch(location.pathname + location.search, { headers: { "x-mitm-partial": "1" }, cache: "no-store" });
    if (response.ok && live) { live.innerHTML = await response.text(); enhance(); }
  };
  for (const form of document.querySelectorAll("form.filter")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      for (const [name, value] of new FormData(form)) if (String(value) !== "" && !(name === "live" && value === "1")) query.set(name, String(value));
      history.replaceState(null, "", location.pathname + (query.size ? "?" + query : ""));
      if (live) {
        if (query.get("live") === "0") delete live.dataset.version;
        else if (live.dataset.version === undefined) { live.dataset.version = "?"; startTicking(); }
      }
      refresh();
    });
  }
  enhance();
  let ticking = false;
  const startTicking = () => { if (!ticking) { ticking = true; setTimeout(tick, 1000); } };
  const tick = async () => {
    if (!live || live.dataset.version === undefined) { ticking = false; return; }
    try {
      if (!document.hidden) {
        const status = await (await fetch("/api/status", { cache: "no-store" })).json();
        if (live.dataset.version !== undefined && String(status.version) !== live.dataset.version) {
          live.dataset.version = String(status.version);
          await refresh();
        }
      }
    } catch {}
    setTimeout(tick, 1000);
  };
  if (live && live.dataset.version !== undefined) startTicking();
})();
`

export interface PageOptions {
  readonly title: string
  readonly body: Html
  readonly status?: number
}

/** A whole page, with a Content-Security-Policy that allows only its own script and no third party. */
export const page = (options: PageOptions) => {
  const nonce = crypto.randomBytes(16).toString("base64")
  const document = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${options.title} · MITM</title><style>${new Html(styles)}</style></head>
<body><header><h1>MITM</h1><nav><a href="/">Report</a><a href="/sessions">Sessions</a><a href="/settings">Settings</a><a href="/har">HAR</a><a href="/api/connections">JSON</a></nav></header>
<main>${options.body}</main>
<script nonce="${nonce}">${new Html(script)}</script>
</body></html>`
  return HttpServerResponse.html(document.text).pipe(
    HttpServerResponse.setStatus(options.status ?? 200),
    HttpServerResponse.setHeaders({
      ...securityHeaders,
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`
    })
  )
}

/** The live part of a page alone, for the page's script to swap in. */
export const fragment = (body: Html) =>
  HttpServerResponse.html(body.text).pipe(HttpServerResponse.setHeaders({ ...securityHeaders, vary: "x-mitm-partial" }))
