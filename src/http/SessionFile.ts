/**
 * A session as the HAR 1.2 file it is kept in (SPEC §8). A session MITM measured is
 * its HAR (`toHar`, the same as `/har`) with the `_mitm` extension that keeps every
 * connection, event and Tor fact; an imported session is the HAR as it came, with a
 * `_mitm` that names it. Reading takes either, or any other HAR.
 */
import { Either } from "effect"
import type { HarDocumentError, Measurements } from "../domain/Session.js"
import { torOf } from "../domain/Session.js"
import {
  decodeMitmExtension,
  importedExtension,
  measurementsOfExtension,
  mitmExtension,
  type SessionHead
} from "../domain/SessionDocument.js"
import { toHar } from "./Har.js"
import { decodeHar, harTitle, measurementsOfHar } from "./HarImport.js"

/** The HAR file of a session MITM measured. */
export const sessionHar = (head: SessionHead, measurements: Measurements, creatorVersion: string) => {
  const har = toHar(measurements.connections, {
    sessionStartMillis: measurements.sessionStartMillis,
    creatorVersion,
    torOf: torOf(measurements)
  })
  return { log: { ...har.log, _mitm: mitmExtension(head, measurements) } }
}

/** An imported HAR as it is kept: the document unchanged but for `log._mitm`, which names it. */
export const importedHar = (document: { readonly log: object }, head: SessionHead) => ({
  ...document,
  log: { ...document.log, _mitm: importedExtension(head) }
})

/** A session file (or any HAR) read back: its name and source, and its measurements. */
export interface OpenedHar {
  /** From `_mitm`; undefined for a HAR MITM has not named. */
  readonly head: SessionHead | undefined
  /** A name from the HAR itself (its first page's title), for a HAR without `_mitm`. */
  readonly title: string | undefined
  readonly measurements: Measurements
}

/** Reads a session file or any HAR; the first problem when it is not one. */
export const openHar = (document: unknown): Either.Either<OpenedHar, HarDocumentError> =>
  Either.gen(function*() {
    // A session MITM saved is read from `_mitm` alone: its entries are derived from it.
    const log = typeof document === "object" && document !== null ? (document as { readonly log?: unknown }).log : undefined
    const extensionValue = typeof log === "object" && log !== null ? (log as { readonly _mitm?: unknown })._mitm : undefined
    const extension = extensionValue === undefined ? undefined : yield* decodeMitmExtension(extensionValue)
    const saved = extension === undefined ? undefined : measurementsOfExtension(extension)
    if (extension !== undefined && saved !== undefined) return { head: extension.session, title: undefined, measurements: saved }
    const har = yield* decodeHar(document)
    return { head: extension?.session, title: harTitle(har), measurements: measurementsOfHar(har) }
  })
