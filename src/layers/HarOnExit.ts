/**
 * `--har-out FILE`: when MITM stops, the measurements are written as HAR,
 * atomically (to a temporary file beside it, then renamed), so a reader never
 * sees half a file.
 */
import { Console, Effect, Layer } from "effect"
import * as fs from "node:fs/promises"
import { toHar } from "../http/Har.js"
import { Reporter } from "../services/Reporter.js"

export const writeHar = (file: string, version: string) =>
  Effect.gen(function*() {
    const reporter = yield* Reporter
    const har = toHar(yield* reporter.connections, {
      sessionStartMillis: (yield* reporter.sessionStartMillis) ?? 0,
      creatorVersion: version,
      torOf: reporter.torOf
    })
    const temporary = `${file}.${process.pid}.tmp`
    yield* Effect.tryPromise(async () => {
      await fs.writeFile(temporary, JSON.stringify(har))
      await fs.rename(temporary, file)
    })
    yield* Console.log(`mitm: wrote ${har.log.entries.length} HAR entries to ${file}`)
  }).pipe(Effect.catchAll((error) => Console.error(`mitm: could not write the HAR to ${file}: ${error}`)))

export const layer = (file: string, version: string): Layer.Layer<never, never, Reporter> =>
  Layer.scopedDiscard(Effect.flatMap(Reporter, (reporter) =>
    Effect.addFinalizer(() => writeHar(file, version).pipe(Effect.provideService(Reporter, reporter)))))
