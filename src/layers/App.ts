/**
 * The layer graph of a running MITM: settings, clock, store, decoders,
 * upstream, the report server and the SOCKS proxy. Tests build the same graph
 * with another Upstream or clock.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer } from "effect"
import { SessionClock } from "../services/SessionClock.js"
import type { Settings } from "../domain/Settings.js"
import type { Deadlines } from "../services/Deadlines.js"
import type { ListenAddress } from "../services/ReportServer.js"
import type { SettingsStore } from "../services/Settings.js"
import type { Upstream } from "../services/Upstream.js"
import * as ClockDeadlines from "./ClockDeadlines.js"
import * as InMemoryStore from "./InMemoryStore.js"
import * as NodeReportServer from "./NodeReportServer.js"
import * as OtlpTelemetry from "./OtlpTelemetry.js"
import * as ProtocolDecoder from "./ProtocolDecoder.js"
import * as ReportWarmer from "./ReportWarmer.js"
import * as SessionClockLive from "./SessionClockLive.js"
import * as SessionsLive from "./SessionsLive.js"
import * as SettingsDelayPolicy from "./SettingsDelayPolicy.js"
import * as SettingsLive from "./SettingsLive.js"
import * as SocksProxy from "./SocksProxy.js"
import * as StoreReporter from "./StoreReporter.js"
import * as TokenBucketThrottle from "./TokenBucketThrottle.js"
import * as TorControlPort from "./TorControlPort.js"
import * as UpstreamFromSettings from "./UpstreamFromSettings.js"

/** MITM's version, as the HAR's creator says it. */
export const version = "0.1.0"

export interface AppConfig {
  readonly listen: ListenAddress
  /** undefined: no report port (`--report off`); the in-band report still works. */
  readonly report: ListenAddress | undefined
  readonly settings: Settings
  /** Client connections served at once (default 1024). */
  readonly maxClients?: number
  /** Serve SOCKS and report clients from beyond loopback (default: refuse them). */
  readonly allowRemoteClients?: boolean
  /** Tor's control port to read circuits from (default off). */
  readonly torControl?: { readonly address: ListenAddress | "off"; readonly password: string | undefined }
  /** How the telemetry export batches, bounds and retries (defaults: OtlpTelemetry.defaultExportConfig). */
  readonly telemetry?: Partial<OtlpTelemetry.OtlpExportConfig>
  /** Where sessions are kept (`--sessions-dir`); undefined: in memory, gone at exit (tests). */
  readonly sessionsDir?: string
}

/** Everything but the upstream, which is one Layer to swap. */
export const layerWith = <E>(config: AppConfig, upstreamLayer: Layer.Layer<Upstream, E, SettingsStore | Deadlines>) => {
  const settings = SettingsLive.layer(config.settings)
  const clock = SessionClockLive.layer
  const deadlines = ClockDeadlines.layer()
  const torControl = config.torControl === undefined || config.torControl.address === "off"
    ? TorControlPort.layerOff
    : Layer.unwrapEffect(Effect.map(SessionClock, (sessionClock) =>
      TorControlPort.layer({
        address: config.torControl!.address as ListenAddress,
        password: config.torControl!.password,
        now: sessionClock.unsafeElapsed
      }))).pipe(Layer.provide(clock))
  const upstream = upstreamLayer.pipe(Layer.provide(Layer.merge(settings, deadlines)))
  const store = InMemoryStore.layer.pipe(Layer.provide(settings))
  const reporter = StoreReporter.layer.pipe(Layer.provide(Layer.mergeAll(store, clock, torControl)))
  // Traces of closed connections to the collector the settings name (idle while `otlp` is off).
  const telemetry = OtlpTelemetry.layer({ serviceVersion: version, ...config.telemetry }).pipe(
    Layer.provide(Layer.mergeAll(store, clock, torControl, settings, NodeHttpClient.layer))
  )
  const sessions = config.sessionsDir === undefined ? SessionsLive.layerMemory(version) : SessionsLive.layerDirectory(config.sessionsDir, version)
  const report = NodeReportServer.layer({ listen: config.report, version, allowRemoteClients: config.allowRemoteClients ?? false }).pipe(Layer.provide(Layer.mergeAll(reporter, settings, telemetry, sessions)))
  const proxy = SocksProxy.layer({
    listen: config.listen,
    maxClients: config.maxClients ?? 1024,
    allowRemoteClients: config.allowRemoteClients ?? false
  }).pipe(
    Layer.provide(Layer.mergeAll(
      store,
      clock,
      deadlines,
      report,
      upstream,
      torControl,
      ProtocolDecoder.layer,
      TokenBucketThrottle.layer.pipe(Layer.provide(settings)),
      SettingsDelayPolicy.layer.pipe(Layer.provide(settings))
    ))
  )
  // The report's text of closed connections, made while no traffic flows.
  const warmer = ReportWarmer.layer({ creatorVersion: version }).pipe(Layer.provide(Layer.merge(reporter, store)))
  return Layer.mergeAll(proxy, report, reporter, settings, store, clock, torControl, telemetry, sessions, warmer)
}

/** The running program: the upstream follows the settings (Tor/SOCKS5 or direct). */
export const layer = (config: AppConfig) => layerWith(config, UpstreamFromSettings.layer)
