/**
 * The node entrypoint: flags → layers → NodeRuntime.runMain.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Either, Layer, Option } from "effect"
import * as net from "node:net"
import { formatHostPort, isLoopback } from "./domain/Address.js"
import { runCommand } from "./cli/Command.js"
import { commandNamed } from "./cli/Commands.js"
import { parseFlags, torControlAddress } from "./domain/Flags.js"
import { formatUpstream, type UpstreamTarget } from "./domain/Settings.js"
import { redactedEndpoint } from "./domain/Telemetry.js"
import * as Measure from "./cli/Measure.js"
import * as App from "./layers/App.js"
import * as HarOnExit from "./layers/HarOnExit.js"
import { Proxy } from "./services/Proxy.js"
import { ReportServer } from "./services/ReportServer.js"
import { TorControl, type TorStatus } from "./services/TorControl.js"

const argv = process.argv.slice(2)
// `measure` builds its own MITM in-process and ends with its own exit code (SPEC §9).
if (argv[0] === "measure") process.exit(await Measure.main(argv.slice(1)))
/** `view`, `compare` …: a command that runs instead of the proxy, with its own arguments; the proxy's flags are then not read. */
const command = commandNamed(argv[0])
const parsed = parseFlags(command === undefined ? argv : [], process.env)
if (Either.isLeft(parsed)) {
  process.stderr.write(`mitm: ${parsed.left.message}\n`)
  process.exit(2)
}
if (parsed.right._tag === "Help") {
  process.stdout.write(`${parsed.right.text}\n`)
  process.exit(0)
}
const flags = parsed.right.flags

/** Whether a SOCKS upstream accepts TCP connections now; said plainly, never a reason to stop. */
const probeUpstream = (target: UpstreamTarget): Effect.Effect<string> =>
  target._tag === "Direct"
    ? Effect.succeed("direct (internal SOCKS: MITM connects to targets itself; traffic does NOT go through Tor)")
    : Effect.async<string>((resume) => {
      const socket = net.connect({ host: target.host, port: target.port })
      socket.once("connect", () => {
        socket.destroy()
        resume(Effect.succeed(`${formatUpstream({ ...target, password: target.password === undefined ? undefined : "***" })} (reachable)`))
      })
      socket.once("error", (error) => {
        socket.destroy()
        resume(Effect.succeed(`${formatUpstream(target)} is NOT reachable now (${error.message}); MITM keeps running and will try again for each connection, never going around it`))
      })
      return Effect.sync(() => socket.destroy())
    })

const torControl = torControlAddress(flags)

/** Waits (at most 2 s) for the control port's first outcome; measuring never waits for it. */
const settledTorStatus = Effect.gen(function*() {
  const tor = yield* TorControl
  for (let waited = 0; waited < 2000; waited += 100) {
    const status = yield* tor.status
    if (status.control !== "unreachable" || status.error !== "not connected yet") return status
    yield* Effect.sleep("100 millis")
  }
  return yield* tor.status
})

/** One line on Tor's control port; none when `auto` finds nothing there (SPEC §7). */
const torLine = (status: TorStatus): string | undefined => {
  const where = status.address ?? "off"
  switch (status.control) {
    case "connected":
      return `mitm: Tor control port ${where}: connected (Tor ${status.version ?? "?"}); circuits are measured`
    case "auth-failed":
      return `mitm: Tor control port ${where} refused authentication (${status.error}); circuits are not shown, relaying is unaffected`
    case "unreachable":
      return flags.torControl === "auto"
        ? undefined
        : `mitm: Tor control port ${where} is not reachable (${status.error}); retried in the background, circuits are not shown meanwhile`
    case "off":
      return flags.torControl === "off" ? "mitm: Tor control port off (--tor-control off): circuits are not shown" : undefined
  }
}

const announce = Effect.gen(function*() {
  const proxy = yield* Proxy
  const report = yield* ReportServer
  for (const host of [flags.listen.host, flags.report?.host]) {
    if (host !== undefined && !isLoopback(host)) {
      yield* Console.warn(
        flags.allowRemoteClients
          ? `mitm: WARNING: listening on ${host} beyond loopback, and --allow-remote-clients is set: anyone who can reach it can use this proxy and read the report`
          : `mitm: WARNING: listening on ${host} beyond loopback; clients from other machines are still refused (--allow-remote-clients serves them)`
      )
    }
  }
  yield* Console.log(`mitm: SOCKS proxy listening on ${formatHostPort(proxy.address.host, proxy.address.port)}`)
  yield* Console.log(`mitm: upstream ${yield* probeUpstream(flags.settings.upstream)}`)
  yield* Console.log(
    report.address === undefined
      ? `mitm: report at http://mitm.proxy/ through the proxy (report port off)`
      : `mitm: report at http://${formatHostPort(report.address.host, report.address.port)}/ and http://mitm.proxy/ through the proxy`
  )
  const { otlp, otlpEncoding, vantage } = flags.settings
  if (otlp !== null) {
    yield* Console.log(
      `mitm: telemetry: each closed connection is sent as a trace to ${redactedEndpoint(otlp)} (OTLP/HTTP ${otlpEncoding}, vantage ${vantage}), directly, not through the upstream`
    )
  }
  const line = torLine(yield* settledTorStatus)
  if (line !== undefined) yield* Console.log(line)
})

const app = App.layer({
  listen: flags.listen,
  report: flags.report,
  settings: flags.settings,
  maxClients: flags.maxClients,
  allowRemoteClients: flags.allowRemoteClients,
  torControl: { address: torControl, password: flags.torControlPassword },
  sessionsDir: flags.sessionsDir
})

const main = (flags.harOut === undefined ? Layer.empty : HarOnExit.layer(flags.harOut, App.version)).pipe(
  Layer.merge(Layer.effectDiscard(announce)),
  Layer.provideMerge(app),
  Layer.launch,
  Effect.tapErrorCause((cause) =>
    Console.error(`mitm: cannot start: ${Cause.failureOption(cause).pipe(Option.match({
      onNone: () => Cause.pretty(cause),
      onSome: (error) => error.message
    }))}`)
  )
)

if (command === undefined) NodeRuntime.runMain(main, { disableErrorReporting: true })
else runCommand(command(argv.slice(1), process.env))
