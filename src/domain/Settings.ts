/**
 * The settings: one schema that flags, `PUT /api/settings` and the settings
 * page all decode through, and the delay SPEC it contains.
 */
import { Either, ParseResult, Schema } from "effect"
import { formatHostPort } from "./Address.js"
import { SettingsError } from "./Errors.js"
import { formatOtlpCollector, hostVantage, parseOtlpCollector, parseVantage } from "./Telemetry.js"

/** One delay: none, fixed, or drawn uniformly from a range. */
export type Delay =
  | { readonly _tag: "None" }
  | { readonly _tag: "Fixed"; readonly millis: number }
  | { readonly _tag: "Range"; readonly minMillis: number; readonly maxMillis: number }

/** A host pattern: `*` (any host), `*.onion` (any name under onion), or one host name. */
export interface DelayRule {
  readonly pattern: string
  readonly delay: Delay
}

/**
 * A delay SPEC: `0`, a fixed duration (`250ms`, `1.5s`), a uniform range
 * (`200ms..800ms`), or per-host rules (`*.onion=2s,example.com=100ms..400ms,*=0`)
 * where the first matching rule wins and no match means no delay.
 */
export type DelaySpec = Delay | { readonly _tag: "PerHost"; readonly rules: ReadonlyArray<DelayRule> }

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s)$/

/** `250ms` or `1.5s` as milliseconds; undefined for anything else. */
export const parseDuration = (text: string): number | undefined => {
  const match = durationPattern.exec(text.trim())
  if (match === null) return undefined
  const value = Number(match[1])
  return match[2] === "s" ? value * 1000 : value
}

const parseDelay = (text: string): Delay | undefined => {
  const trimmed = text.trim()
  if (trimmed === "0") return { _tag: "None" }
  const parts = trimmed.split("..")
  if (parts.length === 1) {
    const millis = parseDuration(trimmed)
    return millis === undefined ? undefined : millis === 0 ? { _tag: "None" } : { _tag: "Fixed", millis }
  }
  if (parts.length !== 2) return undefined
  const min = parseDuration(parts[0])
  const max = parseDuration(parts[1])
  if (min === undefined || max === undefined || min > max) return undefined
  return { _tag: "Range", minMillis: min, maxMillis: max }
}

const hostPattern = /^(\*|(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?)$/

export const parseDelaySpec = (text: string): DelaySpec | undefined => {
  const trimmed = text.trim()
  if (trimmed === "") return { _tag: "None" }
  if (!trimmed.includes("=")) return parseDelay(trimmed)
  const rules: Array<DelayRule> = []
  for (const part of trimmed.split(",")) {
    const equals = part.indexOf("=")
    if (equals < 0) return undefined
    const pattern = part.slice(0, equals).trim().toLowerCase()
    const delay = parseDelay(part.slice(equals + 1))
    if (!hostPattern.test(pattern) || delay === undefined) return undefined
    rules.push({ pattern, delay })
  }
  return { _tag: "PerHost", rules }
}

const formatMillis = (millis: number): string =>
  millis >= 1000 && millis % 100 === 0 ? `${millis / 1000}s` : `${millis}ms`

const formatDelay = (delay: Delay): string => {
  switch (delay._tag) {
    case "None":
      return "0"
    case "Fixed":
      return formatMillis(delay.millis)
    case "Range":
      return `${formatMillis(delay.minMillis)}..${formatMillis(delay.maxMillis)}`
  }
}

export const formatDelaySpec = (spec: DelaySpec): string =>
  spec._tag === "PerHost" ? spec.rules.map((rule) => `${rule.pattern}=${formatDelay(rule.delay)}`).join(",") : formatDelay(spec)

const matchesHost = (pattern: string, host: string): boolean => {
  const name = host.toLowerCase().replace(/\.$/, "")
  if (pattern === "*") return true
  if (pattern.startsWith("*.")) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1
  return name === pattern.replace(/\.$/, "")
}

/** The delay a SPEC gives a host: the first matching rule wins; no match, no delay. */
export const delayFor = (spec: DelaySpec, host: string): Delay =>
  spec._tag !== "PerHost"
    ? spec
    : spec.rules.find((rule) => matchesHost(rule.pattern, host))?.delay ?? { _tag: "None" }

/** A bandwidth limit in bytes per second; 0 means unlimited. */
export type Rate = number

const rateUnits: Record<string, number> = {
  "b": 1,
  "kb": 1000,
  "kib": 1024,
  "mb": 1000 ** 2,
  "mib": 1024 ** 2,
  "kbit": 1000 / 8,
  "mbit": 1000 ** 2 / 8
}

/** `off`, `0`, or an amount per second: `250KiB/s`, `1.5MiB/s`, `500kB/s`, `2Mbit/s`. */
export const parseRate = (text: string): Rate | undefined => {
  const trimmed = text.trim().toLowerCase()
  if (trimmed === "off" || trimmed === "0") return 0
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|kbit|mbit)\/s$/.exec(trimmed)
  if (match === null) return undefined
  const rate = Number(match[1]) * rateUnits[match[2]]
  return rate >= 1 ? Math.round(rate) : undefined
}

export const formatRate = (rate: Rate): string =>
  rate === 0
    ? "off"
    : rate % (1024 * 1024) === 0
    ? `${rate / 1024 / 1024}MiB/s`
    : rate % 1024 === 0
    ? `${rate / 1024}KiB/s`
    : `${rate}B/s`

/** Where streams go: Tor or another SOCKS5 server, or direct (the internal SOCKS upstream). */
export type UpstreamTarget =
  | { readonly _tag: "Direct" }
  | {
    readonly _tag: "Socks5"
    readonly host: string
    readonly port: number
    readonly username?: string
    readonly password?: string
  }

/** `HOST:PORT`, with IPv6 in brackets; port 0 means "pick one" where that makes sense. */
export const parseHostPort = (text: string): { host: string; port: number } | undefined => {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/@[\]]+)):(\d{1,5})$/.exec(text)
  if (match === null) return undefined
  const port = Number(match[3])
  if (port > 65535) return undefined
  return { host: match[1] ?? match[2], port }
}


export const parseUpstream = (text: string): UpstreamTarget | undefined => {
  const trimmed = text.trim()
  if (trimmed === "direct") return { _tag: "Direct" }
  const match = /^socks5h?:\/\/(?:([^:@/]*):([^@/]*)@)?(.+)$/.exec(trimmed)
  if (match === null) return undefined
  const address = parseHostPort(match[3])
  if (address === undefined || address.port === 0) return undefined
  return match[1] === undefined
    ? { _tag: "Socks5", ...address }
    : {
      _tag: "Socks5",
      ...address,
      username: decodeURIComponent(match[1]),
      password: decodeURIComponent(match[2])
    }
}

export const formatUpstream = (target: UpstreamTarget): string =>
  target._tag === "Direct"
    ? "direct"
    : `socks5://${
      target.username === undefined
        ? ""
        : `${encodeURIComponent(target.username)}:${encodeURIComponent(target.password ?? "")}@`
    }${formatHostPort(target.host, target.port)}`

/** What each field accepts, in the words every error message uses. */
export const accepts = {
  headers: `"first" or "all"`,
  socksDelay: `0, a duration like 250ms or 1.5s, a range like 200ms..800ms, or per-host rules like *.onion=2s,example.com=100ms..400ms,*=0`,
  httpDelay: `0, a duration like 250ms or 1.5s, a range like 200ms..800ms, or per-host rules like *.onion=2s,example.com=100ms..400ms,*=0`,
  upstream: `"direct" or socks5://[user:pass@]HOST:PORT`,
  maxConnections: `a whole number from 1 to 10000000`,
  bandwidth: `off or a rate per second like 250KiB/s, 1.5MiB/s, 2Mbit/s (per connection, each direction)`,
  bandwidthTotal: `off or a rate per second like 1MiB/s (shared by all connections, each direction)`,
  otlp: `off or the http:// or https:// URL of an OpenTelemetry collector's OTLP/HTTP receiver, e.g. http://127.0.0.1:4318`,
  otlpEncoding: `"protobuf" or "json"`,
  vantage: `a name of 1 to 64 letters, digits and . _ - : @ / +`
} as const

export type SettingsField = keyof typeof accepts

const fromString = <A>(
  parse: (text: string) => A | undefined,
  format: (value: A) => string,
  field: SettingsField
) =>
  Schema.transformOrFail(Schema.String, Schema.Any as Schema.Schema<A>, {
    strict: true,
    decode: (text, _, ast) => {
      const value = parse(text)
      return value === undefined
        ? ParseResult.fail(new ParseResult.Type(ast, text, `expected ${accepts[field]}`))
        : ParseResult.succeed(value)
    },
    encode: (value) => ParseResult.succeed(format(value))
  })

export const DelaySpecFromString = fromString(parseDelaySpec, formatDelaySpec, "socksDelay")
export const UpstreamFromString = fromString(parseUpstream, formatUpstream, "upstream")
export const RateFromString = fromString(parseRate, formatRate, "bandwidth")
export const OtlpCollectorFromString = fromString(parseOtlpCollector, formatOtlpCollector, "otlp")
export const VantageFromString = fromString(parseVantage, (vantage: string) => vantage, "vantage")

export const Settings = Schema.Struct({
  headers: Schema.Literal("first", "all"),
  socksDelay: DelaySpecFromString,
  httpDelay: DelaySpecFromString,
  upstream: UpstreamFromString,
  maxConnections: Schema.Int.pipe(Schema.between(1, 10_000_000)),
  bandwidth: RateFromString,
  bandwidthTotal: RateFromString,
  otlp: OtlpCollectorFromString,
  otlpEncoding: Schema.Literal("protobuf", "json"),
  vantage: VantageFromString
})
export type Settings = typeof Settings.Type
export type SettingsJson = typeof Settings.Encoded

export const defaultSettings: Settings = {
  headers: "first",
  socksDelay: { _tag: "None" },
  httpDelay: { _tag: "None" },
  upstream: { _tag: "Socks5", host: "127.0.0.1", port: 9050 },
  maxConnections: 10_000,
  bandwidth: 0,
  bandwidthTotal: 0,
  otlp: null,
  otlpEncoding: "protobuf",
  vantage: hostVantage()
}

const SettingsPatch = Schema.partial(Settings)

const describeValue = (value: unknown): string => {
  const text = JSON.stringify(value)
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const settingsError = (field: string, value: unknown): SettingsError =>
  new SettingsError({
    field,
    message: field in accepts
      ? `${field}: expected ${accepts[field as SettingsField]}, got ${describeValue(value)}`
      : `${field}: unknown setting; the settings are ${Object.keys(accepts).join(", ")}`
  })

/**
 * Validates a (possibly partial) settings document and applies it to `current`.
 * Fails with the first offending field, naming what it accepts; nothing changes then.
 */
export const applySettings = (current: Settings, input: unknown): Either.Either<Settings, SettingsError> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return Either.left(new SettingsError({ field: "(document)", message: "expected a JSON object of settings" }))
  }
  const decoded = Schema.decodeUnknownEither(SettingsPatch, { errors: "all", onExcessProperty: "error" })(input)
  if (Either.isLeft(decoded)) {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
    const field = String(issue?.path[0] ?? "(document)")
    return Either.left(settingsError(field, (input as Record<string, unknown>)[field]))
  }
  const patch = Object.fromEntries(Object.entries(decoded.right).filter(([, value]) => value !== undefined))
  return Either.right({ ...current, ...patch })
}

/** The settings as JSON (SPEC §3). */
export const encodeSettings = (settings: Settings): SettingsJson => Schema.encodeSync(Settings)(settings)
