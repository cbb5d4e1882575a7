/**
 * `npm start -- view FILE.har [--report HOST:PORT] [--sessions-dir DIR]` (SPEC §8): the
 * report of a HAR file (MITM's session or any tool's HAR), served with the proxy off,
 * until Ctrl-C. The report port defaults to a free loopback port; its address is printed.
 */
import { Console, Context, Effect, Layer } from "effect"
import { formatHostPort } from "../domain/Address.js"
import { defaultSessionsDir } from "../domain/Flags.js"
import { defaultSettings, parseHostPort } from "../domain/Settings.js"
import { version } from "../layers/App.js"
import * as NodeReportServer from "../layers/NodeReportServer.js"
import * as OtlpTelemetry from "../layers/OtlpTelemetry.js"
import * as SessionReporter from "../layers/SessionReporter.js"
import * as SessionsLive from "../layers/SessionsLive.js"
import * as SettingsLive from "../layers/SettingsLive.js"
import { ReportServer } from "../services/ReportServer.js"
import { type Command, CommandError, readHarFile, usage } from "./Command.js"

export const view: Command = (args, env) =>
  Effect.gen(function*() {
    let report = { host: "127.0.0.1", port: 0 }
    let sessionsDir = defaultSessionsDir(env)
    const files: Array<string> = []
    for (let index = 0; index < args.length; index++) {
      const argument = args[index]
      if (argument === "--report" || argument === "--sessions-dir") {
        const value = args[++index]
        if (value === undefined || value === "") return yield* usage("view", `${argument}: needs a value`)
        if (argument === "--sessions-dir") sessionsDir = value
        else {
          const address = parseHostPort(value)
          if (address === undefined) return yield* usage("view", `--report: expected HOST:PORT (e.g. 127.0.0.1:9001), got ${JSON.stringify(value)}`)
          report = address
        }
      } else if (argument.startsWith("--")) return yield* usage("view", `${argument}: unknown flag; view takes FILE.har [--report HOST:PORT] [--sessions-dir DIR]`)
      else files.push(argument)
    }
    if (files.length !== 1) return yield* usage("view", `expected one HAR file (view FILE.har), got ${files.length}`)
    const opened = yield* readHarFile("view", files[0])
    const server = NodeReportServer.layer({ listen: report, version, allowRemoteClients: false }).pipe(
      Layer.provide(Layer.mergeAll(
        SessionReporter.layer(opened.measurements),
        SettingsLive.layer(defaultSettings),
        SessionsLive.layerDirectory(sessionsDir, version),
        // Nothing is measured here, so nothing is exported.
        OtlpTelemetry.layerOff
      ))
    )
    yield* Effect.scoped(Effect.gen(function*() {
      const { address } = Context.get(yield* Layer.build(server), ReportServer)
      const where = address === undefined ? "" : `http://${formatHostPort(address.host, address.port)}/`
      const count = opened.measurements.connections.length
      yield* Console.log(`mitm: report of ${files[0]} (${count} connection${count === 1 ? "" : "s"}) at ${where} (proxy off; Ctrl-C stops)`)
      return yield* Effect.never
    })).pipe(Effect.mapError((error) => new CommandError({ message: `mitm view: cannot serve the report: ${error.message}`, exitCode: 1 })))
  })
