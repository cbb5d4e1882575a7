/**
 * The one escaping function for everything captured from the network that a
 * page shows: headers, URLs, SNI and host names are attacker-controlled, and
 * the report is viewed in the same browser.
 */
const replacements: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "'": "&#39;"
}

export const escapeHtml = (text: string | number): string =>
  String(text).replace(/[&<>"']/g, (character) => replacements[character])


/** Markup that is already safe: our own constant text, or the output of `html`. */
export class Html {
  constructor(readonly text: string) {}
  toString() {
    return this.text
  }
}

/** A template tag that escapes every interpolated value unless it is already `Html`. */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>): Html =>
  new Html(strings.reduce((out, part, index) => {
    if (index === 0) return part
    const value = values[index - 1]
    const rendered = Array.isArray(value)
      ? value.map((item) => (item instanceof Html ? item.text : escapeHtml(String(item)))).join("")
      : value instanceof Html
      ? value.text
      : value === undefined || value === null
      ? ""
      : escapeHtml(String(value))
    return out + rendered + part
  }, ""))
