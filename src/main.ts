/**
 * The node entrypoint: flags → layers → NodeRuntime.runMain.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Either, Layer, Option } from "effect"
import * as net from "node:net"
import { formatHostPort, isLoopback } from "./domain/Address.js"
import { parseFlags } from "./domain/Flags.js"
import { formatUpstream, type UpstreamTarget } from "./domain/Settings.js"
import * as App from "./layers/App.js"
import * as HarOnExit from "./layers/HarOnExit.js"
import { Proxy } from "./services/Proxy.js"
import { ReportServer } from "./services/ReportServer.js"

const parsed = parseFlags(process.argv.slice(2))
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
})

const app = App.layer({ listen: flags.listen, report: flags.report, settings: flags.settings, maxClients: flags.maxClients, allowRemoteClients: flags.allowRemoteClients })

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

NodeRuntime.runMain(main, { disableErrorReporting: true })
