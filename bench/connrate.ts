/**
 * Connection rate: W concurrent workers (default 50) for S seconds (default 5) per peer, each
 * looping: connect, SOCKS5 handshake + CONNECT (not for direct), one `GET /bytes?n=100`, close.
 * Connections per second per peer; runs interleaved across peers after a 1 s warm-up each;
 * medians over runs. Peers: direct, plainRelay, mitm (upstream direct), mitmSocks (MITM through its own
 * microsocks, as through Tor) and plainRelaySocks (the plain relay the same way: what the extra hop
 * costs any relay on this machine), microsocks and mitmproxy when installed.
 *
 *   npx tsx bench/connrate.ts [--workers 50] [--seconds 5] [--runs 3] [--peers ...] [--cpu-prof DIR]
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout.
 */
import {
  COMMON_USAGE, HOST, type PeerKey, fail, httpClient, log, machine, median, openTunnel, parseCommonFlags,
  parseRuns, procStat, ratio, round, runMain, sleep, startOrigin, startPeers, stopChild, table
} from "./common.js"

const USAGE = `Usage: npx tsx bench/connrate.ts [flags]

  --workers N        concurrent workers                                                       [50]
  --seconds S        measured seconds per run and peer                                        [5]
${COMMON_USAGE}`

const PEERS: ReadonlyArray<PeerKey> = ["direct", "plainRelay", "streamRelay", "plainRelaySocks", "mitm", "mitmSocks", "microsocks", "mitmproxy"]

interface RunResult {
  readonly perSecond: number
  readonly connections: number
  readonly errors: number
  readonly firstError: string | null
  /** CPU of the proxy during the run, in cores. */
  readonly proxyCpu: number | null
  /** The part of it spent in the kernel (system time), in cores. */
  readonly proxySys: number | null
}

/** The proxy's CPU time per connection in one run, µs; null when unknown. */
const cpuUsPerConnection = (r: RunResult): number | null =>
  r.proxyCpu === null || r.perSecond <= 0 ? null : (r.proxyCpu / r.perSecond) * 1e6

const runOnce = async (originPort: number, proxyPort: number | null, pid: number | undefined, workers: number, seconds: number): Promise<RunResult> => {
  let connections = 0
  let errors = 0
  let firstError: string | null = null
  const stat0 = procStat(pid)
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      try {
        const { socket, early } = await openTunnel(originPort, proxyPort)
        const client = httpClient(socket, early, `${HOST}:${originPort}`)
        const got = await client.get("/bytes?n=100").finally(() => client.close())
        if (got !== 100) fail(`expected 100 body bytes, got ${got}`)
        connections++
      } catch (e) {
        errors++
        firstError ??= (e as Error).message
        if (errors > 1000) fail(`more than 1,000 errors; the first: ${firstError}`)
        await sleep(10)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  const secs = (performance.now() - t0) / 1000
  const stat1 = procStat(pid)
  return {
    perSecond: connections / secs,
    connections,
    errors,
    firstError,
    proxyCpu: stat0 === null || stat1 === null ? null : (stat1.cpu - stat0.cpu) / secs,
    proxySys: stat0 === null || stat1 === null ? null : (stat1.sys - stat0.sys) / secs
  }
}

export const main = async (): Promise<void> => {
  let workers = 50
  let seconds = 5
  const options = parseCommonFlags(process.argv.slice(2), {
    usage: USAGE,
    onValue: (name, value) => {
      if (name === "--workers") workers = parseRuns(value, name)
      else if (name === "--seconds") {
        seconds = Number(value)
        if (!(seconds > 0)) fail(`--seconds: expected a positive number, got ${value}`)
      } else return false
      return true
    }
  })
  log(`connrate: ${workers} workers × ${seconds} s per run and peer (connect, handshake, one 100 B request, close), ${options.runs} runs, ${HOST} only`)
  const origin = await startOrigin()
  const peers = await startPeers(PEERS, { cpuProfDir: options.cpuProfDir, wanted: options.peers })
  const results = new Map<PeerKey, Array<RunResult>>(peers.running.map((p) => [p.key, []]))
  const line = (r: RunResult): string =>
    `${r.perSecond.toFixed(0).padStart(6)} conn/s  (${r.connections} connections, ${r.errors} errors${r.proxyCpu === null ? "" : `, proxy CPU ${(r.proxyCpu * 100).toFixed(0)}% (kernel ${((r.proxySys ?? 0) * 100).toFixed(0)}%), ${cpuUsPerConnection(r)?.toFixed(0)} µs per connection`})` +
    (r.firstError ? `  first error: ${r.firstError}` : "")
  for (const peer of peers.running) {
    const r = await runOnce(origin.port, peer.proxyPort, peer.child?.proc.pid, workers, 1)
    log(`warm-up  ${peer.key.padEnd(11)} ${line(r)} (not counted)`)
  }
  for (let run = 1; run <= options.runs; run++) {
    for (const peer of peers.running) {
      const r = await runOnce(origin.port, peer.proxyPort, peer.child?.proc.pid, workers, seconds)
      results.get(peer.key)!.push(r)
      log(`run ${run}/${options.runs}  ${peer.key.padEnd(11)} ${line(r)}`)
    }
  }
  await peers.stop()
  await stopChild(origin)

  const med = (key: PeerKey): number | null => {
    const xs = results.get(key)
    return xs && xs.length > 0 ? median(xs.map((r) => r.perSecond)) : null
  }
  const medCpu = (key: PeerKey): number | null => {
    const xs = (results.get(key) ?? []).map((r) => r.proxyCpu).filter((x): x is number => x !== null)
    return xs.length > 0 ? median(xs) : null
  }
  /** The proxy's own CPU time per connection, µs: its cost apart from the machine's other processes. */
  const cpuPerConnection = (key: PeerKey): number | null => {
    const xs = (results.get(key) ?? []).map(cpuUsPerConnection).filter((x): x is number => x !== null)
    return xs.length > 0 ? median(xs) : null
  }
  const errorsOf = (key: PeerKey): number => (results.get(key) ?? []).reduce((a, r) => a + r.errors, 0)
  const result = {
    scenario: "connrate",
    workers,
    secondsPerRun: seconds,
    runs: options.runs,
    peers: Object.fromEntries(
      PEERS.map((key) => [key, results.has(key)
        ? {
          perSecond: round(med(key), 0),
          errors: errorsOf(key),
          firstError: results.get(key)!.find((r) => r.firstError)?.firstError ?? null,
          proxyCpu: round(medCpu(key), 2),
          cpuPerConnectionUs: round(cpuPerConnection(key), 0)
        }
        : { skipped: peers.skipped[key] ?? "not run" }])
    ),
    mitmToRelay: ratio(med("mitm"), med("plainRelay")),
    mitmToMitmproxy: ratio(med("mitm"), med("mitmproxy")),
    /** The plain relay's job on Effect Streams against the plain relay: what Streams cost any relay (issue 13). */
    streamToRelay: ratio(med("streamRelay"), med("plainRelay")),
    /** MITM through a SOCKS upstream against MITM connecting directly (issue 11: ≥ 0.8). */
    socksToDirect: ratio(med("mitmSocks"), med("mitm")),
    /** The same ratio for the plain relay: what the SOCKS hop costs a relay that does nothing else. */
    plainSocksToDirect: ratio(med("plainRelaySocks"), med("plainRelay")),
    /** MITM's own CPU per connection through a SOCKS upstream against direct (the upstream's CPU not counted). */
    socksToDirectCpu: ratio(cpuPerConnection("mitmSocks"), cpuPerConnection("mitm")),
    samples: Object.fromEntries([...results].map(([k, xs]) => [k, xs.map((r) => round(r.perSecond, 0))])),
    ...machine()
  }
  const rows = PEERS.map((key) =>
    results.has(key)
      ? [key, round(med(key), 0), errorsOf(key), medCpu(key) === null ? "—" : `${(medCpu(key)! * 100).toFixed(0)}%`, round(cpuPerConnection(key), 0) ?? "—", key === "direct" || key === "plainRelay" ? "" : String(ratio(med(key), med("plainRelay"), 2) ?? "—")]
      : [key, null, null, null, null, `skipped: ${peers.skipped[key]}`]
  )
  process.stdout.write(
    `connrate, ${workers} workers × ${seconds} s: connect + handshake + one 100 B request + close, median of ${options.runs} runs\n` +
      table(["peer", "conn/s", "errors", "proxy CPU", "CPU µs/conn", "/ relay"], rows) +
      `\nMITM / plain relay = ${result.mitmToRelay ?? "—"} (target ≥ 0.8)   MITM / mitmproxy = ${result.mitmToMitmproxy ?? "—"}` +
      `   stream relay / plain relay = ${result.streamToRelay ?? "—"}` +
      `\nthrough a SOCKS upstream / direct: MITM ${result.socksToDirect ?? "—"} (target ≥ 0.8), plain relay ${result.plainSocksToDirect ?? "—"}` +
      `; MITM's own CPU per connection ${result.socksToDirectCpu ?? "—"}×\n`
  )
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
