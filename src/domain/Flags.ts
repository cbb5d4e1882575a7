/**
 * The command line (SPEC §1). Flags that are settings decode through the one
 * settings schema, so a bad value reads the same here as in the API.
 */
import { Either } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import {
  accepts,
  applySettings,
  defaultSettings,
  formatDelaySpec,
  formatRate,
  formatUpstream,
  parseHostPort,
  type Settings,
  type SettingsField
} from "./Settings.js"
import { formatHostPort } from "./Address.js"
import { formatOtlpCollector } from "./Telemetry.js"

export interface ListenFlag {
  readonly host: string
  readonly port: number
}

export interface Flags {
  readonly listen: ListenFlag
  readonly report: ListenFlag | undefined
  readonly settings: Settings
  readonly maxClients: number
  /** Where to write the HAR when MITM exits; undefined: nowhere. */
  readonly harOut: string | undefined
  /** Serve clients from beyond loopback (only with a non-loopback --listen/--report). */
  readonly allowRemoteClients: boolean
  /** Tor's control port (SPEC §7): an address, `auto` (the SOCKS upstream's port + 1), or off. */
  readonly torControl: ListenFlag | "auto" | "off"
  /** For HashedControlPassword; `--tor-control-password` or MITM_TOR_CONTROL_PASSWORD. */
  readonly torControlPassword: string | undefined
  /** Where sessions are kept (SPEC §8). */
  readonly sessionsDir: string
}

/** `$XDG_DATA_HOME/mitm/sessions`, else `~/.local/share/mitm/sessions` (a relative XDG_DATA_HOME is ignored, as XDG says). */
export const defaultSessionsDir = (env: Readonly<Record<string, string | undefined>>): string => {
  const data = env.XDG_DATA_HOME
  if (data !== undefined && path.isAbsolute(data)) return path.join(data, "mitm", "sessions")
  return path.join(env.HOME !== undefined && env.HOME !== "" ? env.HOME : os.homedir(), ".local", "share", "mitm", "sessions")
}

/** Where `--tor-control` points: with `auto`, the SOCKS upstream's port + 1 (9050 → 9051), or off for direct. */
export const torControlAddress = (flags: Pick<Flags, "torControl" | "settings">): ListenFlag | "off" => {
  if (flags.torControl !== "auto") return flags.torControl
  const upstream = flags.settings.upstream
  return upstream._tag === "Direct" || upstream.port >= 65535 ? "off" : { host: upstream.host, port: upstream.port + 1 }
}

export type FlagsResult =
  | { readonly _tag: "Run"; readonly flags: Flags }
  | { readonly _tag: "Help"; readonly text: string }

/** A bad flag or value: one line naming the flag and what it accepts. */
export class FlagError {
  readonly _tag = "FlagError"
  constructor(readonly message: string) {}
}

/** The flags that are settings (SPEC §1), by the settings field each sets. */
export const settingFlags: Readonly<Record<string, SettingsField>> = {
  "--upstream": "upstream",
  "--headers": "headers",
  "--socks-delay": "socksDelay",
  "--http-delay": "httpDelay",
  "--max-connections": "maxConnections",
  "--bandwidth": "bandwidth",
  "--bandwidth-total": "bandwidthTotal",
  "--otlp": "otlp",
  "--otlp-encoding": "otlpEncoding",
  "--vantage": "vantage"
}

const defaults = {
  listen: { host: "127.0.0.1", port: 9000 },
  report: { host: "127.0.0.1", port: 9001 },
  /** Firefox (Tor Browser) allows 900 connections in all; a little more than that. */
  maxClients: 1024
}

export const helpText = `Usage: npm start -- [flags]
       npm start -- measure URL [--runs N] [--json] [flags]   (measured page loads; measure --help)

MITM, Monitor In The Middle: a measuring SOCKS proxy between a browser and Tor.

  --listen HOST:PORT         where browsers connect (SOCKS5, SOCKS4, SOCKS4a)   [${formatHostPort(defaults.listen.host, defaults.listen.port)}]
  --upstream URL             socks5://[user:pass@]HOST:PORT, or direct          [${formatUpstream(defaultSettings.upstream)}]
  --report HOST:PORT|off     a direct port for the report (also http://mitm.proxy/ in-band)  [${formatHostPort(defaults.report.host, defaults.report.port)}]
  --headers first|all        header lines shown per request/response           [${defaultSettings.headers}]
  --socks-delay SPEC         delay before each SOCKS connect goes upstream     [${formatDelaySpec(defaultSettings.socksDelay)}]
  --http-delay SPEC          delay before each HTTP request goes upstream      [${formatDelaySpec(defaultSettings.httpDelay)}]
  --max-connections N        connections kept; oldest closed ones are evicted  [${defaultSettings.maxConnections}]
  --bandwidth RATE           per connection and direction, e.g. 250KiB/s        [${formatRate(defaultSettings.bandwidth)}]
  --bandwidth-total RATE     shared by all connections, each direction          [${formatRate(defaultSettings.bandwidthTotal)}]
  --max-clients N            client connections served at once; more get a SOCKS failure reply  [${defaults.maxClients}]
  --har-out FILE             write the measurements as HAR to FILE on exit (atomically)
  --sessions-dir DIR         where saved and imported sessions live, one HAR file each
                             [$XDG_DATA_HOME/mitm/sessions, else ~/.local/share/mitm/sessions]
  --tor-control HOST:PORT|auto|off  Tor's control port, read only, for circuits  [auto: the
                             SOCKS upstream's port + 1, e.g. 9051; silent if nothing answers]
  --tor-control-password PASS  for HashedControlPassword (or MITM_TOR_CONTROL_PASSWORD);
                             without it: NULL, SAFECOOKIE or COOKIE auth as Tor offers
  --otlp URL|off             send each closed connection as a trace to this OpenTelemetry
                             collector (OTLP/HTTP, URL/v1/traces)               [${formatOtlpCollector(defaultSettings.otlp)}]
  --otlp-encoding protobuf|json  OTLP/HTTP body encoding                        [${defaultSettings.otlpEncoding}]
  --vantage NAME             resource attribute mitm.vantage of the traces      [the host name: ${defaultSettings.vantage}]
  --allow-remote-clients     serve clients that are not on this machine (otherwise refused,
                             even when listening beyond loopback)
  --help                     this text

A delay SPEC is 0, a fixed duration (250ms, 1.5s), a uniform range (200ms..800ms),
or per-host rules (*.onion=2s,example.com=100ms..400ms,*=0: the first match wins).
Port 0 picks a free port. Listening beyond loopback must be asked for explicitly.

Commands (instead of running the proxy):
  view FILE.har [--report HOST:PORT] [--sessions-dir DIR]
                             serve the report of a HAR file (proxy off) [--report 127.0.0.1:0]
  compare A.har B.har [--json]  print the comparison of two HAR files (SPEC §8)`

const listenValue = (flag: string, value: string, allowOff: boolean): Either.Either<ListenFlag | undefined, FlagError> => {
  if (allowOff && value === "off") return Either.right(undefined)
  const address = parseHostPort(value)
  return address === undefined
    ? Either.left(new FlagError(`${flag}: expected HOST:PORT${allowOff ? " or off" : ""} (e.g. 127.0.0.1:9000), got ${JSON.stringify(value)}`))
    : Either.right(address)
}

export const parseFlags = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<FlagsResult, FlagError> => {
  let torControl: Flags["torControl"] = "auto"
  let torControlPassword: string | undefined = env.MITM_TOR_CONTROL_PASSWORD
  let listen: ListenFlag = defaults.listen
  let report: ListenFlag | undefined = defaults.report
  let maxClients = defaults.maxClients
  let harOut: string | undefined
  let sessionsDir = defaultSessionsDir(env)
  let allowRemoteClients = false
  const patch: Record<string, unknown> = {}
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]
    if (argument === "--help" || argument === "-h") return Either.right({ _tag: "Help", text: helpText })
    if (argument === "--allow-remote-clients") {
      allowRemoteClients = true
      continue
    }
    const equals = argument.indexOf("=")
    const flag = argument.startsWith("--") && equals > 0 ? argument.slice(0, equals) : argument
    const known = flag === "--listen" || flag === "--report" || flag === "--max-clients" || flag === "--har-out" || flag === "--sessions-dir" ||
      flag === "--tor-control" || flag === "--tor-control-password" || flag in settingFlags
    if (!known) return Either.left(new FlagError(`${argument}: unknown flag; see --help`))
    const value = equals > 0 && argument.startsWith("--") ? argument.slice(equals + 1) : argv[++index]
    if (value === undefined) return Either.left(new FlagError(`${flag}: needs a value (${describeFlag(flag)})`))
    if (flag === "--tor-control") {
      if (value === "auto" || value === "off") {
        torControl = value
        continue
      }
      const address = parseHostPort(value)
      if (address === undefined) {
        return Either.left(new FlagError(`--tor-control: expected HOST:PORT, auto or off (e.g. 127.0.0.1:9051), got ${JSON.stringify(value)}`))
      }
      torControl = address
      continue
    }
    if (flag === "--tor-control-password") {
      torControlPassword = value
      continue
    }
    if (flag === "--har-out") {
      if (value.trim() === "") return Either.left(new FlagError(`--har-out: expected a file path`))
      harOut = value
      continue
    }
    if (flag === "--sessions-dir") {
      if (value.trim() === "") return Either.left(new FlagError(`--sessions-dir: expected a directory path`))
      sessionsDir = value
      continue
    }
    if (flag === "--max-clients") {
      if (!/^\d{1,7}$/.test(value) || Number(value) < 1) {
        return Either.left(new FlagError(`--max-clients: expected a whole number from 1 to 9999999, got ${JSON.stringify(value)}`))
      }
      maxClients = Number(value)
      continue
    }
    if (flag === "--listen" || flag === "--report") {
      const parsed = listenValue(flag, value, flag === "--report")
      if (Either.isLeft(parsed)) return Either.left(parsed.left)
      if (flag === "--listen") {
        if (parsed.right === undefined) return Either.left(new FlagError(`--listen: expected HOST:PORT`))
        listen = parsed.right
      } else report = parsed.right
      continue
    }
    const field = settingFlags[flag]
    patch[field] = field === "maxConnections" && /^\d+$/.test(value) ? Number(value) : value
  }
  const settings = applySettings(defaultSettings, patch)
  if (Either.isLeft(settings)) {
    const flag = Object.keys(settingFlags).find((name) => settingFlags[name] === settings.left.field) ?? settings.left.field
    return Either.left(new FlagError(`${flag}: expected ${accepts[settings.left.field as SettingsField]}, got ${JSON.stringify(patch[settings.left.field])}`))
  }
  return Either.right({
    _tag: "Run",
    flags: { listen, report, settings: settings.right, maxClients, harOut, allowRemoteClients, torControl, torControlPassword, sessionsDir }
  })
}

const describeFlag = (flag: string): string =>
  flag === "--listen"
    ? "HOST:PORT"
    : flag === "--report"
    ? "HOST:PORT or off"
    : flag === "--max-clients"
    ? "a whole number"
    : flag === "--har-out"
    ? "a file path"
    : flag === "--sessions-dir"
    ? "a directory path"
    : flag === "--tor-control"
    ? "HOST:PORT, auto or off"
    : flag === "--tor-control-password"
    ? "a password"
    : accepts[settingFlags[flag]]

/** Loopback addresses are the default; anything else is an open proxy and gets a warning. */
