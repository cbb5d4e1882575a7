/**
 * Keep-alive latency: N sequential small requests (`GET /bytes?n=100`, default 5,000) on ONE
 * connection, through each peer:
 *
 *   direct, plainRelay (bench/plain-relay.ts), mitm (`--upstream direct --report off`),
 *   microsocks (when /usr/bin/microsocks exists), mitmproxy (`mitmdump --mode socks5`, when installed).
 *
 * After one unmeasured warm-up pass over all peers (1,000 requests each: JIT, caches), each
 * run opens a fresh connection per peer, sends 100 unmeasured requests, then times N
 * requests one by one (request write → last body byte). Runs are interleaved across peers;
 * the figures are medians over runs of each run's p50 and p99. "Added" is what a proxy adds
 * to direct: p50_peer − p50_direct. The target ratio is MITM added / plain relay added.
 *
 *   npx tsx bench/latency.ts [--requests 5000] [--runs 3] [--peers direct,plainRelay,mitm] [--cpu-prof DIR]
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout.
 */
import {
  COMMON_USAGE, HOST, type PeerKey, fail, httpClient, log, machine, median, openTunnel, parseCommonFlags,
  parseRuns, percentile, ratio, round, runMain, startOrigin, startPeers, stopChild, table
} from "./common.js"

const USAGE = `Usage: npx tsx bench/latency.ts [flags]

  --requests N       sequential requests per run and peer, on one connection                  [5000]
${COMMON_USAGE}`

const WARM = 100
const PEERS: ReadonlyArray<PeerKey> = ["direct", "plainRelay", "streamRelay", "mitm", "microsocks", "mitmproxy"]

interface RunResult {
  readonly p50: number
  readonly p99: number
  readonly mean: number
}

/** One connection, WARM + n requests; returns per-request percentiles in µs. */
const runOnce = async (originPort: number, proxyPort: number | null, n: number): Promise<RunResult> => {
  const { socket, early } = await openTunnel(originPort, proxyPort)
  const client = httpClient(socket, early, `${HOST}:${originPort}`)
  try {
    for (let i = 0; i < WARM; i++) await client.get("/bytes?n=100")
    const times = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      const got = await client.get("/bytes?n=100")
      times[i] = (performance.now() - t0) * 1000
      if (got !== 100) fail(`expected 100 body bytes, got ${got}`)
    }
    const sorted = Array.from(times).sort((a, b) => a - b)
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sorted.reduce((a, b) => a + b, 0) / n }
  } finally {
    client.close()
  }
}

export const main = async (): Promise<void> => {
  let requests = 5000
  const options = parseCommonFlags(process.argv.slice(2), {
    usage: USAGE,
    onValue: (name, value) => {
      if (name !== "--requests") return false
      requests = parseRuns(value, name)
      return true
    }
  })
  log(`latency: ${requests} sequential requests of 100 B on one connection, ${options.runs} runs per peer, ${HOST} only`)
  const origin = await startOrigin()
  const peers = await startPeers(PEERS, { cpuProfDir: options.cpuProfDir, wanted: options.peers })
  const results = new Map<PeerKey, Array<RunResult>>(peers.running.map((p) => [p.key, []]))
  for (const peer of peers.running) {
    const r = await runOnce(origin.port, peer.proxyPort, Math.min(requests, 1000)).catch((e: Error) => fail(`${peer.key}: ${e.message}`))
    log(`warm-up  ${peer.key.padEnd(11)} p50 ${r.p50.toFixed(0).padStart(5)} µs (not counted)`)
  }
  for (let run = 1; run <= options.runs; run++) {
    for (const peer of peers.running) {
      const r = await runOnce(origin.port, peer.proxyPort, requests).catch((e: Error) => fail(`${peer.key}: ${e.message}`))
      results.get(peer.key)!.push(r)
      log(`run ${run}/${options.runs}  ${peer.key.padEnd(11)} p50 ${r.p50.toFixed(0).padStart(5)} µs  p99 ${r.p99.toFixed(0).padStart(6)} µs  mean ${r.mean.toFixed(0).padStart(5)} µs`)
    }
  }
  await peers.stop()
  await stopChild(origin)

  const med = (key: PeerKey, field: keyof RunResult): number | null => {
    const xs = results.get(key)
    return xs && xs.length > 0 ? median(xs.map((r) => r[field])) : null
  }
  const direct50 = med("direct", "p50")
  const added = (key: PeerKey): number | null => {
    const p = med(key, "p50")
    return p === null || direct50 === null ? null : p - direct50
  }
  const perPeer = Object.fromEntries(
    PEERS.map((key) => [key, results.has(key)
      ? { p50us: round(med(key, "p50")), p99us: round(med(key, "p99")), meanUs: round(med(key, "mean")), addedP50us: key === "direct" ? 0 : round(added(key)) }
      : { skipped: peers.skipped[key] ?? "not run" }])
  )
  const result = {
    scenario: "latency",
    requests,
    runs: options.runs,
    peers: perPeer,
    mitmAddedToRelayAdded: ratio(added("mitm"), added("plainRelay")),
    mitmAddedToMitmproxyAdded: ratio(added("mitm"), added("mitmproxy")),
    /** The plain relay's job on Effect Streams: its added latency against the plain relay's (issue 13). */
    streamAddedToRelayAdded: ratio(added("streamRelay"), added("plainRelay")),
    samples: Object.fromEntries([...results].map(([k, xs]) => [k, xs.map((r) => ({ p50: round(r.p50), p99: round(r.p99) }))])),
    ...machine()
  }
  const rows = PEERS.map((key) =>
    results.has(key)
      ? [key, round(med(key, "p50")), round(med(key, "p99")), key === "direct" ? "—" : round(added(key)), key === "direct" || key === "plainRelay" ? "" : String(ratio(added(key), added("plainRelay"), 2) ?? "—")]
      : [key, null, null, null, `skipped: ${peers.skipped[key]}`]
  )
  process.stdout.write(
    `latency, ${requests} sequential 100 B requests on one keep-alive connection, median of ${options.runs} runs (µs per request)\n` +
      table(["peer", "p50", "p99", "added p50", "added / relay's"], rows) +
      `\nMITM added / plain relay added = ${result.mitmAddedToRelayAdded ?? "—"} (target ≤ 1.25)` +
      `   MITM added / mitmproxy added = ${result.mitmAddedToMitmproxyAdded ?? "—"}` +
      `   stream relay added / plain relay added = ${result.streamAddedToRelayAdded ?? "—"}\n`
  )
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
