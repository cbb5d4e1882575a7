/**
 * Churn: many short connections one after another through MITM, with each upstream: `direct`
 * and a SOCKS upstream (its own microsocks, standing in for Tor). 50 workers loop: connect,
 * SOCKS5 handshake + CONNECT, one `GET /bytes?n=100`, close, until N connections (default
 * 100,000) have gone through. MITM keeps its default store (10,000 connections), so memory
 * must level off once the store is full: anything that grows past that is kept per
 * connection. Reads MITM's VmRSS (/proc) and heap (`GET /api/status`) every N/5
 * connections, at the end, and after 10 s idle.
 *
 *   npx tsx bench/churn.ts [--connections 100000] [--workers 50] [--peers mitm,mitmSocks]
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout.
 */
import {
  COMMON_USAGE, HOST, type MitmChild, fail, getRoute, httpClient, log, machine, openTunnel, parseCommonFlags, parseRuns,
  ratio, round, runMain, sleep, startMicrosocks, startMitm, startOrigin, statusMiB, stopChild, table
} from "./common.js"

const USAGE = `Usage: npx tsx bench/churn.ts [flags]

  --connections N    connections per upstream                                                 [100000]
  --workers N        concurrent workers                                                       [50]
${COMMON_USAGE}`

const PEERS = ["mitm", "mitmSocks"] as const
const IDLE_SECONDS = 10

interface Reading {
  readonly connections: number
  readonly rssMiB: number | null
  readonly heapMiB: number
}

interface PeerResult {
  readonly perSecond: number
  readonly errors: number
  readonly readings: ReadonlyArray<Reading>
  readonly idle: Reading
}

const read = async (mitm: MitmChild, connections: number): Promise<Reading> => {
  const status = JSON.parse((await getRoute(mitm.reportPort!, "/api/status")).body.toString("utf8")) as {
    readonly process: { readonly heapUsedBytes: number }
  }
  return { connections, rssMiB: round(statusMiB(mitm.proc.pid, "VmRSS")), heapMiB: round(status.process.heapUsedBytes / 2 ** 20)! }
}

const churn = async (originPort: number, mitm: MitmChild, total: number, workers: number): Promise<PeerResult> => {
  const readings: Array<Reading> = []
  const step = Math.ceil(total / 5)
  let started = 0
  let done = 0
  let errors = 0
  let reading = Promise.resolve()
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++
      try {
        const { socket, early } = await openTunnel(originPort, mitm.port)
        const client = httpClient(socket, early, `${HOST}:${originPort}`)
        const got = await client.get("/bytes?n=100").finally(() => client.close())
        if (got !== 100) fail(`expected 100 body bytes, got ${got}`)
      } catch {
        if (++errors > 1000) fail("more than 1,000 errors")
      }
      if (++done % step === 0) {
        const at = done
        reading = reading.then(async () => {
          const r = await read(mitm, at)
          readings.push(r)
          log(`  ${String(at).padStart(7)} connections: RSS ${r.rssMiB} MiB, heap ${r.heapMiB} MiB`)
        })
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  const perSecond = done / ((performance.now() - t0) / 1000)
  await reading
  await sleep(IDLE_SECONDS * 1000)
  const idle = await read(mitm, done)
  log(`  after ${IDLE_SECONDS} s idle: RSS ${idle.rssMiB} MiB, heap ${idle.heapMiB} MiB`)
  return { perSecond: round(perSecond, 0)!, errors, readings, idle }
}

export const main = async (): Promise<void> => {
  let connections = 100_000
  let workers = 50
  const options = parseCommonFlags(process.argv.slice(2), {
    usage: USAGE,
    onValue: (name, value) => {
      if (name === "--connections") connections = parseRuns(value, name)
      else if (name === "--workers") workers = parseRuns(value, name)
      else return false
      return true
    }
  })
  log(`churn: ${connections} connections per upstream, ${workers} workers, one 100 B request each, ${HOST} only`)
  const origin = await startOrigin()
  const results = new Map<string, PeerResult>()
  const skipped = new Map<string, string>()
  for (const key of PEERS) {
    if (options.peers !== null && !options.peers.has(key)) {
      skipped.set(key, "not in --peers")
      continue
    }
    const microsocks = key === "mitmSocks" ? await startMicrosocks() : null
    if (microsocks !== null && microsocks.child === null) {
      skipped.set(key, `its upstream: ${microsocks.skipped}`)
      continue
    }
    const upstream = microsocks?.child ? `socks5://${HOST}:${microsocks.child.port}` : "direct"
    const mitm = await startMitm({ cpuProfDir: options.cpuProfDir, report: true, extraArgs: ["--upstream", upstream] })
    log(`${key}: MITM with --upstream ${upstream}`)
    results.set(key, await churn(origin.port, mitm, connections, workers))
    await stopChild(mitm)
    await stopChild(microsocks?.child ?? null)
  }
  await stopChild(origin)

  const last = (key: string) => results.get(key)?.readings.at(-1)
  const result = {
    scenario: "churn",
    connections,
    workers,
    peers: Object.fromEntries(PEERS.map((key) => [key, results.get(key) ?? { skipped: skipped.get(key) }])),
    socksToDirectRate: ratio(results.get("mitmSocks")?.perSecond, results.get("mitm")?.perSecond),
    socksToDirectRss: ratio(last("mitmSocks")?.rssMiB, last("mitm")?.rssMiB),
    ...machine()
  }
  const rows = PEERS.map((key) => {
    const r = results.get(key)
    if (r === undefined) return [key, null, null, null, null, null, `skipped: ${skipped.get(key)}`]
    const first = r.readings[0]
    const end = r.readings.at(-1)!
    return [key, round(r.perSecond, 0), r.errors, `${first.rssMiB} / ${first.heapMiB}`, `${end.rssMiB} / ${end.heapMiB}`, `${r.idle.rssMiB} / ${r.idle.heapMiB}`, ""]
  })
  process.stdout.write(
    `churn, ${connections} connections per upstream, ${workers} workers (RSS / heap in MiB)\n` +
      table(["upstream", "conn/s", "errors", `at ${round(connections / 5, 0)}`, `at ${connections}`, `${IDLE_SECONDS} s idle`, ""], rows) +
      `\nSOCKS upstream / direct: rate ${result.socksToDirectRate ?? "—"}, RSS at the end ${result.socksToDirectRss ?? "—"}\n`
  )
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
