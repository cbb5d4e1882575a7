/**
 * Commands that run instead of the proxy (`npm start -- view FILE.har`, `compare A B`,
 * and `measure` beside them): each reads its own arguments and prints for people.
 * A failure is one line on stderr and an exit code: 1 for a missing or invalid file,
 * 2 for arguments the command does not take (as for a bad flag).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Data, Effect, Exit, Option } from "effect"
import * as fs from "node:fs/promises"
import type { HarDocumentError } from "../domain/Session.js"
import { type OpenedHar, openHar } from "../http/SessionFile.js"

/** Why a command stopped: the line it prints and its exit code. */
export class CommandError extends Data.TaggedError("CommandError")<{
  readonly message: string
  readonly exitCode: 1 | 2
}> {}

/** A command: its arguments (after its name) to what it does. */
export type Command = (args: ReadonlyArray<string>, env: Readonly<Record<string, string | undefined>>) => Effect.Effect<void, CommandError>

/** A usage error of `command`: exit 2. */
export const usage = (command: string, problem: string) =>
  new CommandError({ message: `mitm ${command}: ${problem} (see --help)`, exitCode: 2 })

/** A HAR file read and decoded, or one line naming the file and what is wrong with it (exit 1). */
export const readHarFile = (command: string, file: string): Effect.Effect<OpenedHar, CommandError> =>
  Effect.gen(function*() {
    const fail = (problem: string) => new CommandError({ message: `mitm ${command}: ${file}: ${problem}`, exitCode: 1 })
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8"),
      catch: (error) => {
        const code = (error as NodeJS.ErrnoException)?.code
        return fail(code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory, not a HAR file" : `cannot be read (${code ?? String(error)})`)
      }
    })
    const document = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (error) => fail(`not JSON, so not a HAR file (${error instanceof Error ? error.message : String(error)})`)
    })
    return yield* Effect.mapError(openHar(document), (error: HarDocumentError) => fail(error.message))
  })

/** Runs a command as the process: its failure printed as one line, exit code 1 or 2; Ctrl-C ends it with 0. */
export const runCommand = (effect: Effect.Effect<void, CommandError>): void =>
  NodeRuntime.runMain(
    effect.pipe(Effect.tapError((error) => Effect.sync(() => process.stderr.write(`${error.message}\n`)))),
    {
      disableErrorReporting: true,
      teardown: (exit, onExit) => {
        if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
        const failure = Cause.failureOption(exit.cause)
        if (Option.isNone(failure)) process.stderr.write(`mitm: ${Cause.pretty(exit.cause)}\n`)
        onExit(Option.match(failure, { onNone: () => 1, onSome: (error) => (error instanceof CommandError ? error.exitCode : 1) }))
      }
    }
  )
