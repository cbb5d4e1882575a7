/**
 * The `measure` command line (SPEC §9): its own flags, and every MITM flag of
 * SPEC §1 and §7 read by the one flag parser (Flags.ts), so a bad value reads
 * the same as it does for the proxy.
 */
import { Either } from "effect"
import { FlagError, type Flags, parseFlags, settingFlags } from "./Flags.js"
import { parseDuration } from "./Settings.js"

export interface MeasureFlags {
  readonly url: string
  readonly runs: number
  readonly json: boolean
  readonly chromium: string
  /** Milliseconds a run may take, from the browser's launch to the end of network quiet. */
  readonly runTimeoutMillis: number
  /** The MITM flags (upstream, delays, bandwidth, Tor control …) of the measured configuration. */
  readonly flags: Flags
  /** `--compare-with`: the other configuration (A's flags with these on top), run interleaved A, B, A, B. */
  readonly compareWith: { readonly text: string; readonly flags: Flags } | undefined
}

export type MeasureFlagsResult =
  | { readonly _tag: "Measure"; readonly flags: MeasureFlags }
  | { readonly _tag: "Help"; readonly text: string }

export const defaultChromium = "/usr/bin/chromium"

const defaults = { runs: 5, runTimeoutMillis: 120_000 }

export const measureHelpText = `Usage: npm start -- measure URL [--runs N] [--json] [flags]

Loads URL N times in headless Chromium through a MITM of its own (free loopback ports) and
prints each run and the median, p25 and p75 of loadTime, firstByte, connections, requests,
bytesDown and meanSocksSetup. Each run: a fresh profile (cold cache), its own SOCKS username
(Tor's IsolateSOCKSAuth gives it its own circuits), the load event and then up to 2 s for the
network to go quiet (500 ms without requests), all within --run-timeout. Each run is saved as
the session "measure URL run i".

  --runs N                 page loads (1 to 1000)                               [${defaults.runs}]
  --json                   print the runs and statistics as one JSON document
  --chromium PATH          the Chromium to drive                                [${defaultChromium}]
  --run-timeout DURATION   the most one run may take, e.g. 90s                  [${defaults.runTimeoutMillis / 1000}s]
  --compare-with "FLAGS"   also run these settings flags (on top of the others), interleaved
                           A, B, A, B, and print both and the comparison,
                           e.g. --compare-with "--socks-delay 500ms --http-delay 200ms"
  --upstream, --socks-delay, --http-delay, --bandwidth, --bandwidth-total, --headers,
  --max-connections, --max-clients, --tor-control, --tor-control-password: as for the proxy
                           (npm start -- --help).`

/** MITM flags that make no sense here: measure picks its own loopback ports and keeps nothing on exit. */
const notForMeasure: Record<string, string> = {
  "--listen": "measure starts its own MITM on a free loopback port",
  "--report": "measure starts its own report on a free loopback port",
  "--allow-remote-clients": "measure serves only its own browser, on loopback",
  "--har-out": "each run is saved as a session instead"
}

/** MITM flags that stand alone; every other one takes a value. */
const switches = new Set(["--allow-remote-clients", "--help", "-h"])

/** `"--socks-delay 500ms --http-delay '200ms'"` → its words (quotes group, as a shell would). */
export const splitWords = (text: string): Array<string> =>
  Array.from(text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g), (match) => match[1] ?? match[2] ?? match[3])

const runsValue = (value: string): Either.Either<number, FlagError> =>
  /^\d{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= 1000
    ? Either.right(Number(value))
    : Either.left(new FlagError(`--runs: expected a whole number from 1 to 1000, got ${JSON.stringify(value)}`))

const timeoutValue = (value: string): Either.Either<number, FlagError> => {
  const millis = parseDuration(value)
  return millis !== undefined && millis >= 1000
    ? Either.right(millis)
    : Either.left(new FlagError(`--run-timeout: expected a duration of at least 1s like 90s or 120000ms, got ${JSON.stringify(value)}`))
}

const urlValue = (value: string): Either.Either<string, FlagError> => {
  try {
    const url = new URL(value)
    if (url.protocol === "http:" || url.protocol === "https:") return Either.right(url.href)
  } catch {
    // said below
  }
  return Either.left(new FlagError(`measure: expected an http:// or https:// URL, got ${JSON.stringify(value)}`))
}

const flagOf = (argument: string): string => {
  const equals = argument.indexOf("=")
  return argument.startsWith("--") && equals > 0 ? argument.slice(0, equals) : argument
}

/** The other configuration: only settings flags, applied on top of A's. */
const compareFlags = (text: string, base: ReadonlyArray<string>): Either.Either<Flags, FlagError> => {
  const words = splitWords(text)
  if (words.length === 0) return Either.left(new FlagError(`--compare-with: expected settings flags like "--socks-delay 500ms"`))
  for (const word of words) {
    if (!word.startsWith("-")) continue
    const flag = flagOf(word)
    if (!(flag in settingFlags)) {
      return Either.left(new FlagError(`--compare-with: ${flag} cannot differ between the two configurations; it takes ${Object.keys(settingFlags).join(", ")}`))
    }
  }
  return Either.flatMap(parseFlags([...base, ...words]), (result) =>
    result._tag === "Help"
      ? Either.left(new FlagError(`--compare-with: expected settings flags, got --help`))
      : Either.right(result.flags))
}

/** The measure command's flags (the words after `measure`). */
export const parseMeasureFlags = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = {}
): Either.Either<MeasureFlagsResult, FlagError> => {
  let url: string | undefined
  let runs = defaults.runs
  let json = false
  let chromium = defaultChromium
  let runTimeoutMillis = defaults.runTimeoutMillis
  let compareWith: string | undefined
  const mitm: Array<string> = []
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]
    if (argument === "--help" || argument === "-h") return Either.right({ _tag: "Help", text: measureHelpText })
    if (argument === "--json") {
      json = true
      continue
    }
    if (!argument.startsWith("-")) {
      if (url !== undefined) return Either.left(new FlagError(`measure: one URL only, got ${JSON.stringify(url)} and ${JSON.stringify(argument)}`))
      const parsed = urlValue(argument)
      if (Either.isLeft(parsed)) return Either.left(parsed.left)
      url = parsed.right
      continue
    }
    const flag = flagOf(argument)
    if (flag in notForMeasure) return Either.left(new FlagError(`${flag}: not a measure flag (${notForMeasure[flag]})`))
    const inline = flag !== argument
    const value = inline ? argument.slice(flag.length + 1) : switches.has(flag) ? "" : argv[index + 1]
    if (!inline && !switches.has(flag)) index++
    if (value === undefined) {
      return Either.left(new FlagError(`${flag}: needs a value${flag === "--compare-with" ? ` (settings flags in quotes, e.g. "--socks-delay 500ms")` : ""}`))
    }
    const own = flag === "--runs"
      ? Either.map(runsValue(value), (n) => void (runs = n))
      : flag === "--run-timeout"
      ? Either.map(timeoutValue(value), (millis) => void (runTimeoutMillis = millis))
      : flag === "--chromium"
      ? value.trim() === "" ? Either.left(new FlagError(`--chromium: expected a path`)) : Either.right(void (chromium = value))
      : flag === "--compare-with"
      ? Either.right(void (compareWith = value))
      : undefined
    if (own !== undefined) {
      if (Either.isLeft(own)) return Either.left(own.left)
      continue
    }
    // A MITM flag: the one parser decides whether it exists and what it accepts.
    mitm.push(...(inline || switches.has(flag) ? [argument] : [argument, value]))
  }
  if (url === undefined) return Either.left(new FlagError(`measure: expected a URL (npm start -- measure URL [--runs N] [--json]; see measure --help)`))
  const parsed = parseFlags(mitm, env)
  if (Either.isLeft(parsed)) return Either.left(parsed.left)
  if (parsed.right._tag === "Help") return Either.right({ _tag: "Help", text: measureHelpText })
  const flags = parsed.right.flags
  let other: MeasureFlags["compareWith"]
  if (compareWith !== undefined) {
    const b = compareFlags(compareWith, mitm)
    if (Either.isLeft(b)) return Either.left(b.left)
    other = { text: splitWords(compareWith).join(" "), flags: b.right }
  }
  return Either.right({
    _tag: "Measure",
    flags: { url, runs, json, chromium, runTimeoutMillis, flags, compareWith: other }
  })
}
