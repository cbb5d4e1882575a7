/**
 * All bench scenarios in one go, each as its own child process (fresh heap, its own children):
 * stream-cost, throughput, latency, connrate, concurrency, report, churn. Their tables pass through;
 * at the end a summary of the issues' targets (met or missed) and one JSON line with every
 * scenario's result. Issue 13's speed goals are shown for the stream relay (the plain relay's job
 * on Effect Streams), the floor of any relay built on them here.
 * About 11 minutes on a 2-core machine with the defaults below.
 *
 *   npx tsx bench/all.ts [--runs 3] [--only latency,connrate] [--cpu-prof DIR]
 *
 * To stay within time, concurrency runs without mitmproxy here (it needs ~35 s per run for
 * 10,000 connections); `npx tsx bench/concurrency.ts` alone includes it. Exits 1 only if a
 * scenario failed to run, not when a target is missed.
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { ROOT, elapsed, fail, log, parseRuns } from "./common.js"

const USAGE = `Usage: npx tsx bench/all.ts [flags]

  --runs N           measured runs per peer in every scenario (throughput: at least 5)        [3]
  --only A,B         only these of stream-cost,throughput,latency,connrate,concurrency,report,churn
  --cpu-prof DIR     profile the MITM child of every scenario (DIR/<scenario>/)
  --no-install       do not apt-get install missing peers (microsocks, mitmproxy)
  --help             this text
`

interface Scenario {
  readonly name: string
  readonly args: ReadonlyArray<string>
  /** Runs at least this many times: bulk throughput varies from run to run more than the rest. */
  readonly minRuns?: number
  /** Runs at most this many times. */
  readonly maxRuns?: number
}

const SCENARIOS: ReadonlyArray<Scenario> = [
  { name: "stream-cost", args: ["--count", "3000"] },
  { name: "throughput", args: ["--size", "1GiB"], minRuns: 5 },
  { name: "latency", args: ["--requests", "5000"] },
  { name: "connrate", args: ["--workers", "50", "--seconds", "5"] },
  { name: "concurrency", args: ["--connections", "10000"] },
  { name: "report", args: ["--connections", "10000", "--events", "200000"] },
  // One pass of 100,000 connections per upstream already spans minutes: --runs does not repeat it.
  { name: "churn", args: ["--connections", "100000"], maxRuns: 1 }
]

/** Runs one scenario; resolves with its JSON result (its last stdout line that parses). */
const runScenario = (
  s: Scenario,
  runs: number,
  cpuProfDir: string | null,
  noInstall: boolean
): Promise<Record<string, unknown> | { error: string }> =>
  new Promise((resolve) => {
    const args = [
      "--import", "tsx", path.join("bench", `${s.name}.ts`), ...s.args, "--runs", String(Math.min(Math.max(runs, s.minRuns ?? 1), s.maxRuns ?? Infinity)),
      ...(cpuProfDir ? ["--cpu-prof", path.join(cpuProfDir, s.name)] : []),
      ...(noInstall ? ["--no-install"] : [])
    ]
    log(`=== ${s.name}: node ${args.join(" ")}`)
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (t: string) => {
      out += t
      process.stdout.write(t)
    })
    child.once("exit", (code, signal) => {
      const json = out.trim().split("\n").reverse().find((l) => l.startsWith("{"))
      if (code !== 0 || json === undefined) return resolve({ error: `${s.name} exited with ${signal ?? code}` })
      try {
        resolve(JSON.parse(json) as Record<string, unknown>)
      } catch {
        resolve({ error: `${s.name}: its JSON line did not parse` })
      }
    })
  })

type Json = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

interface Target {
  readonly name: string
  readonly target: string
  readonly value: string
  readonly met: boolean | null
}

const targets = (results: Record<string, Json>): ReadonlyArray<Target> => {
  const out: Array<Target> = []
  const t = results.throughput
  if (t && !t.error) {
    out.push({ name: "throughput", target: "MITM ≥ 0.9 × plain relay", value: `${t.mitmToRelay} × (${t.mitm} vs ${t.plainRelay} MiB/s)`, met: t.mitmToRelay >= 0.9 })
  }
  const l = results.latency
  if (l && !l.error) {
    const r = l.mitmAddedToRelayAdded
    out.push({
      name: "latency",
      target: "MITM added p50 ≤ 1.25 × relay's",
      value: `${r} × (${l.peers.mitm?.addedP50us} vs ${l.peers.plainRelay?.addedP50us} µs)`,
      met: r === null ? null : r <= 1.25
    })
  }
  const c = results.connrate
  if (c && !c.error) {
    out.push({
      name: "connrate",
      target: "MITM ≥ 0.8 × plain relay",
      value: `${c.mitmToRelay} × (${c.peers.mitm?.perSecond} vs ${c.peers.plainRelay?.perSecond} conn/s)`,
      met: c.mitmToRelay === null ? null : c.mitmToRelay >= 0.8
    })
  }
  if (c && !c.error && c.socksToDirect !== undefined) {
    out.push({
      name: "connrate",
      target: "MITM via SOCKS upstream ≥ 0.8 × MITM direct",
      value: `${c.socksToDirect} × (${c.peers.mitmSocks?.perSecond} vs ${c.peers.mitm?.perSecond} conn/s; plain relay the same way: ${c.plainSocksToDirect} ×; ` +
        `MITM's own CPU per connection ${c.socksToDirectCpu} ×: ${c.peers.mitmSocks?.cpuPerConnectionUs} vs ${c.peers.mitm?.cpuPerConnectionUs} µs)`,
      met: c.socksToDirect === null ? null : c.socksToDirect >= 0.8
    })
  }
  // Issue 13 asks MITM's byte path on Effect Streams at these speeds; the stream relay does nothing else.
  if (t && !t.error && t.streamToRelay !== undefined) {
    out.push({ name: "streams", target: "stream relay ≥ 0.9 × plain relay (throughput)", value: `${t.streamToRelay} × (${t.streamRelay} vs ${t.plainRelay} MiB/s)`, met: t.streamToRelay >= 0.9 })
  }
  if (l && !l.error && l.streamAddedToRelayAdded !== undefined) {
    const r = l.streamAddedToRelayAdded
    out.push({
      name: "streams",
      target: "stream relay added p50 ≤ 1.25 × relay's",
      value: `${r} × (${l.peers.streamRelay?.addedP50us} vs ${l.peers.plainRelay?.addedP50us} µs)`,
      met: r === null ? null : r <= 1.25
    })
  }
  if (c && !c.error && c.streamToRelay !== undefined) {
    out.push({
      name: "streams",
      target: "stream relay ≥ 0.6 × plain relay (conn/s)",
      value: `${c.streamToRelay} × (${c.peers.streamRelay?.perSecond} vs ${c.peers.plainRelay?.perSecond} conn/s; CPU per connection ` +
        `${c.peers.streamRelay?.cpuPerConnectionUs} vs ${c.peers.plainRelay?.cpuPerConnectionUs} µs)`,
      met: c.streamToRelay === null ? null : c.streamToRelay >= 0.6
    })
  }
  const h = results.churn
  if (h && !h.error) {
    const end = (key: string) => h.peers[key]?.readings?.at(-1)
    out.push({
      name: "churn",
      target: "RSS after 100,000 conn. via SOCKS ≈ direct (≤ 1.25 ×)",
      value: `${h.socksToDirectRss} × (${end("mitmSocks")?.rssMiB} vs ${end("mitm")?.rssMiB} MiB)`,
      met: h.socksToDirectRss === null ? null : h.socksToDirectRss <= 1.25
    })
  }
  const k = results.concurrency
  if (k && !k.error) {
    const m = k.peers.mitm ?? {}
    const full = k.connections >= 10_000
    out.push({
      name: "concurrency",
      target: "10,000 held, 0 errors, RSS ≤ 2 × relay's",
      value: `${m.openedMin} held${full ? "" : ` (fd limit: ${k.connections} max)`}, ${m.errors} errors, RSS ${k.mitmRssToRelay} × (${m.rssMiB} vs ${k.peers.plainRelay?.rssMiB} MiB)`,
      met: m.errors === 0 && k.mitmRssToRelay !== null && k.mitmRssToRelay <= 2 ? (full ? true : null) : false
    })
  }
  const r = results.report
  if (r && !r.error) {
    const ms = (route: string) => r.routes[route]?.medianMs
    out.push({
      name: "report",
      target: "routes ≤ 300 ms at 10,000 connections",
      value: `/ ${ms("/")} ms, /api/connections ${ms("/api/connections")} ms, /har ${ms("/har")} ms (${r.connections} conns, ${r.events} events; ` +
        `first request after the fill: ${r.routes["/"]?.firstRequestMs}, ${r.routes["/api/connections"]?.firstRequestMs}, ${r.routes["/har"]?.firstRequestMs} ms)`,
      met: r.worstMedianMs <= 300
    })
  }
  for (const [name, v] of Object.entries(results)) {
    if (v.error) out.push({ name, target: "(did not run)", value: v.error, met: false })
  }
  return out
}

const main = async (): Promise<void> => {
  let runs = 3
  let only: Set<string> | null = null
  let cpuProfDir: string | null = null
  let noInstall = false
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].includes("=") ? [argv[i].slice(0, argv[i].indexOf("=")), argv[i].slice(argv[i].indexOf("=") + 1)] : [argv[i], undefined]
    const value = (): string => inline ?? argv[++i] ?? fail(`${name}: missing value`)
    if (name === "--help") {
      process.stdout.write(USAGE)
      return
    } else if (name === "--runs") runs = parseRuns(value())
    else if (name === "--only") only = new Set(value().split(","))
    else if (name === "--cpu-prof") cpuProfDir = path.resolve(value())
    else if (name === "--no-install") noInstall = true
    else fail(`unknown flag ${argv[i]} (try --help)`)
  }
  const chosen = SCENARIOS.filter((s) => only === null || only.has(s.name))
  if (only !== null && chosen.length !== only.size) fail(`--only: known scenarios are ${SCENARIOS.map((s) => s.name).join(", ")}`)

  const results: Record<string, Json> = {}
  for (const s of chosen) {
    process.stdout.write("\n")
    results[s.name] = await runScenario(s, runs, cpuProfDir, noInstall)
  }
  const ts = targets(results)
  const width = Math.max(...ts.map((t) => t.target.length))
  process.stdout.write(
    `\ntargets of issues 6, 11 and 13 (${runs} runs each, ${elapsed().toFixed(0)} s in all)\n` +
      ts.map((t) => `${(t.met === null ? "n/a " : t.met ? "MET " : "MISS").padEnd(5)} ${t.name.padEnd(12)} ${t.target.padEnd(width)}  ${t.value}`).join("\n") +
      "\n"
  )
  process.stdout.write(JSON.stringify({ scenario: "all", runs, seconds: Math.round(elapsed()), targets: ts, results }) + "\n")
  if (Object.values(results).some((r) => r.error)) process.exit(1)
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: FAILED: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  }
)
