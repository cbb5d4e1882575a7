/**
 * Header lines as the decoder captured them (`Name: value`), read without
 * lower-casing every name.
 */

/** Whether `line` is a header named `lowerName` (given in lower case). */
const isNamed = (line: string, lowerName: string): boolean => {
  if (line.length <= lowerName.length || line.charCodeAt(lowerName.length) !== 58) return false
  for (let i = 0; i < lowerName.length; i++) {
    const c = line.charCodeAt(i)
    // ASCII upper case to lower case; header names are tokens, so nothing else needs folding.
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lowerName.charCodeAt(i)) return false
  }
  return true
}

/** The value of the first header named `lowerName`, trimmed; undefined when absent. */
export const headerValue = (lines: ReadonlyArray<string>, lowerName: string): string | undefined => {
  for (const line of lines) if (isNamed(line, lowerName)) return line.slice(lowerName.length + 1).trim()
  return undefined
}
