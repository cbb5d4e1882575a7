/**
 * Sessions kept as HAR files: in a directory (`--sessions-dir`, each file written to a
 * temporary name and renamed, so a reader never sees half of one), or in memory for
 * tests. Both keep the same JSON text, so a test session goes through the same
 * encoding and decoding as a file. A file someone put in the directory by hand (any
 * tool's `NAME.har`) is listed too.
 */
import { Clock, Effect, Either, Layer, Random } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import {
  type Session,
  type SessionInfo,
  sessionIdPattern,
  SessionNotFound,
  SessionStorageError
} from "../domain/Session.js"
import { importedHar, type OpenedHar, openHar, sessionHar } from "../http/SessionFile.js"
import { Sessions, type SessionsService } from "../services/Sessions.js"

/** A stored session file: its id and a stamp that changes when the file does. */
export interface StoredFile {
  readonly id: string
  readonly stamp: string
  /** When it was last written, epoch milliseconds: the saved time of a file MITM has not named. */
  readonly modifiedMillis: number
}

/** Where session files live. */
export interface SessionFiles {
  readonly list: Effect.Effect<ReadonlyArray<StoredFile>, SessionStorageError>
  /** The file's text; undefined when there is none. */
  readonly read: (id: string) => Effect.Effect<{ readonly text: string; readonly file: StoredFile } | undefined, SessionStorageError>
  readonly write: (id: string, text: string) => Effect.Effect<void, SessionStorageError>
  /** False when there was none. */
  readonly remove: (id: string) => Effect.Effect<boolean, SessionStorageError>
}

const suffix = ".har"

const failure = (reason: SessionStorageError["reason"], id: string | null) => (error: unknown) =>
  new SessionStorageError({ reason, id, detail: error instanceof Error ? error.message : String(error) })

const missing = (error: unknown): boolean => (error as NodeJS.ErrnoException)?.code === "ENOENT"

/** Session files in `directory`, created (readable by this user only) when the first session is saved. */
export const directoryFiles = (directory: string): SessionFiles => {
  const fileOf = (id: string) => path.join(directory, `${id}${suffix}`)
  const storedOf = (id: string, stat: { readonly mtimeMs: number; readonly size: number }): StoredFile => ({
    id,
    stamp: `${stat.mtimeMs}/${stat.size}`,
    modifiedMillis: stat.mtimeMs
  })
  return {
    list: Effect.tryPromise({
      try: async () => {
        const names = await fs.readdir(directory).catch((error) => (missing(error) ? [] : Promise.reject(error)))
        const files: Array<StoredFile> = []
        for (const name of names) {
          const id = name.slice(0, -suffix.length)
          if (!name.endsWith(suffix) || !sessionIdPattern.test(id)) continue
          const stat = await fs.stat(fileOf(id)).catch(() => undefined)
          if (stat?.isFile()) files.push(storedOf(id, stat))
        }
        return files
      },
      catch: failure("List", null)
    }),
    read: (id) =>
      Effect.tryPromise({
        try: async () => {
          try {
            const stat = await fs.stat(fileOf(id))
            return { text: await fs.readFile(fileOf(id), "utf8"), file: storedOf(id, stat) }
          } catch (error) {
            if (missing(error)) return undefined
            throw error
          }
        },
        catch: failure("Read", id)
      }),
    write: (id, text) =>
      Effect.tryPromise({
        try: async () => {
          await fs.mkdir(directory, { recursive: true, mode: 0o700 })
          const temporary = `${fileOf(id)}.${process.pid}.tmp`
          await fs.writeFile(temporary, text, { mode: 0o600 })
          await fs.rename(temporary, fileOf(id))
        },
        catch: failure("Write", id)
      }),
    remove: (id) =>
      Effect.tryPromise({
        try: () => fs.unlink(fileOf(id)).then(() => true, (error) => (missing(error) ? false : Promise.reject(error))),
        catch: failure("Remove", id)
      })
  }
}

/** Session files in memory, for tests. */
export const memoryFiles: Effect.Effect<SessionFiles> = Effect.sync(() => {
  const texts = new Map<string, { text: string; file: StoredFile }>()
  let writes = 0
  return {
    list: Effect.sync(() => Array.from(texts.values(), (entry) => entry.file)),
    read: (id) => Effect.sync(() => texts.get(id)),
    write: (id, text) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        texts.set(id, { text, file: { id, stamp: String(++writes), modifiedMillis: now } })
      }),
    remove: (id) => Effect.sync(() => texts.delete(id))
  }
})

/** Sessions whose measurements stay decoded: the last few opened (a report page asks several times). */
const openSessionsKept = 4

const twoDigits = (value: number) => String(value).padStart(2, "0")

/** `20261201-101502-3fa9c1`: when it was saved (UTC), then random, so ids sort by time and never collide. */
const newId = Effect.gen(function*() {
  const now = new Date(yield* Clock.currentTimeMillis)
  const random = yield* Random.nextIntBetween(0, 0x1000000)
  const day = `${now.getUTCFullYear()}${twoDigits(now.getUTCMonth() + 1)}${twoDigits(now.getUTCDate())}`
  const time = `${twoDigits(now.getUTCHours())}${twoDigits(now.getUTCMinutes())}${twoDigits(now.getUTCSeconds())}`
  return `${day}-${time}-${random.toString(16).padStart(6, "0")}`
})

const savedAtNow = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis).toISOString())

const infoOf = (id: string, opened: OpenedHar, file: StoredFile): SessionInfo => ({
  id,
  name: opened.head?.name ?? opened.title ?? id,
  savedAt: opened.head?.savedAt ?? new Date(file.modifiedMillis).toISOString(),
  connections: opened.measurements.connections.length,
  source: opened.head?.source ?? "har"
})

export const make = (files: SessionFiles, creatorVersion: string): SessionsService => {
  /** Each file's info, and the decoded sessions of the last few opened, by id; valid while the stamp is. */
  const known = new Map<string, { readonly stamp: string; readonly info: SessionInfo }>()
  const open = new Map<string, { readonly stamp: string; readonly session: Session }>()

  const remember = (file: StoredFile, session: Session) => {
    known.set(file.id, { stamp: file.stamp, info: session.info })
    open.delete(file.id)
    open.set(file.id, { stamp: file.stamp, session })
    for (const id of open.keys()) {
      if (open.size <= openSessionsKept) break
      open.delete(id)
    }
  }

  /** The stored file decoded; a file that is not (or no longer) a HAR is a read error naming its problem. */
  const decode = (text: string, file: StoredFile): Either.Either<Session, SessionStorageError> => {
    let document: unknown
    try {
      document = JSON.parse(text)
    } catch (error) {
      return Either.left(failure("Read", file.id)(new Error(`not JSON (${error instanceof Error ? error.message : error})`)))
    }
    return Either.match(openHar(document), {
      onLeft: (problem) => Either.left(failure("Read", file.id)(problem)),
      onRight: (opened) => Either.right({ info: infoOf(file.id, opened, file), measurements: opened.measurements })
    })
  }

  const get = (id: string) =>
    Effect.gen(function*() {
      if (!sessionIdPattern.test(id)) return yield* new SessionNotFound({ id })
      const stored = yield* files.read(id)
      if (stored === undefined) return yield* new SessionNotFound({ id })
      const cached = open.get(id)
      if (cached !== undefined && cached.stamp === stored.file.stamp) return cached.session
      const session = yield* decode(stored.text, stored.file)
      remember(stored.file, session)
      return session
    })

  /** Writes a new session file and reads it back, as every later reader will. */
  const keep = (text: (savedAt: string) => string) =>
    Effect.gen(function*() {
      const id = yield* newId
      yield* files.write(id, text(yield* savedAtNow))
      const session = yield* get(id).pipe(
        Effect.catchTag("SessionNotFound", (error) => failure("Write", id)(new Error(`${error.message} after writing it`)))
      )
      return session.info
    })

  return {
    save: (name, measurements) =>
      keep((savedAt) =>
        JSON.stringify(sessionHar({ name, savedAt, source: "mitm" }, measurements, creatorVersion))),
    importHar: (document, name) =>
      Effect.gen(function*() {
        const opened = yield* openHar(document)
        const title = name ?? opened.title ?? "imported HAR"
        return yield* keep((savedAt) =>
          JSON.stringify(importedHar(document as { readonly log: object }, { name: title, savedAt, source: "har" })))
      }),
    list: Effect.gen(function*() {
      const infos: Array<SessionInfo> = []
      for (const file of yield* files.list) {
        const cached = known.get(file.id)
        if (cached !== undefined && cached.stamp === file.stamp) {
          infos.push(cached.info)
          continue
        }
        // A file that is not a session (or was removed meanwhile) is left out of the list.
        const session = yield* Effect.either(get(file.id))
        if (Either.isRight(session)) infos.push(session.right.info)
      }
      return infos.sort((a, b) => (a.savedAt < b.savedAt ? 1 : a.savedAt > b.savedAt ? -1 : a.id < b.id ? 1 : -1))
    }),
    get,
    har: (id) =>
      Effect.gen(function*() {
        const stored = sessionIdPattern.test(id) ? yield* files.read(id) : undefined
        if (stored === undefined) return yield* new SessionNotFound({ id })
        return stored.text
      }),
    remove: (id) =>
      Effect.gen(function*() {
        const removed = sessionIdPattern.test(id) && (yield* files.remove(id))
        if (!removed) return yield* new SessionNotFound({ id })
        known.delete(id)
        open.delete(id)
      })
  }
}

/** Sessions in `directory` (SPEC §8's `--sessions-dir`). */
export const layerDirectory = (directory: string, creatorVersion: string): Layer.Layer<Sessions> =>
  Layer.succeed(Sessions, make(directoryFiles(directory), creatorVersion))

/** Sessions in memory: gone when the layer is. */
export const layerMemory = (creatorVersion: string): Layer.Layer<Sessions> =>
  Layer.effect(Sessions, Effect.map(memoryFiles, (files) => make(files, creatorVersion)))
