/**
 * A connection as the JSON API sends it, written as text: the same document as
 * `JSON.stringify(connectionJson(connection, tor))`, without building the
 * copy and the exchange objects first. `/api/connections` at 10,000
 * connections is tens of megabytes, and its exchanges are the part that would
 * otherwise go through the generic serializer object by object.
 */
import type { Connection } from "../domain/Connection.js"
import { type Exchange, exchanges } from "../domain/Exchange.js"
import type { TorAttribution } from "../domain/TorCircuits.js"

const text = (value: string | null): string => (value === null ? "null" : JSON.stringify(value))

/** One exchange's SPEC §6 fields, in the order `exchangeJson` gives them. */
const exchangeText = (e: Exchange): string =>
  `{"index":${e.index},"inferred":${e.inferred},"method":${text(e.method)},"url":${text(e.url)},"status":${e.status},` +
  `"requestStart":${e.requestStart},"requestEnd":${e.requestEnd},"responseStart":${e.responseStart},` +
  `"responseEnd":${e.responseEnd},"wait":${e.wait},"blocked":${e.blocked},` +
  `"requestBodyBytes":${e.requestBodyBytes},"responseBodyBytes":${e.responseBodyBytes}}`

export const connectionText = (connection: Connection, tor: TorAttribution | null): string => {
  const fields = JSON.stringify(connection)
  const list = exchanges(connection)
  let written = ""
  for (let i = 0; i < list.length; i++) written += (i === 0 ? "" : ",") + exchangeText(list[i])
  return `${fields.slice(0, -1)},"exchanges":[${written}],"tor":${JSON.stringify(tor)}}`
}
