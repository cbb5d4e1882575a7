/**
 * Report rendering at scale: fills a running MITM's store with C connections (default 10,000)
 * holding about E events in all (default 200,000) by driving real traffic through it, then
 * times the report routes `GET /`, `GET /api/connections` and `GET /har` on the report port
 * (request sent → last body byte), and reads the RSS the MITM holds.
 *
 * The fill: one calibration connection of 1 and one of 3 requests give the events per
 * connection (a) and per request (b); then C short keep-alive connections (50 at a time; SOCKS
 * handshake, k requests of 100 B, close) with k chosen so that C·a + b·Σk ≈ E. MITM keeps
 * `--max-connections` connections (10,000 by default), so the calibration ones are evicted.
 *
 * After one unmeasured pass over the routes, runs are interleaved (/, /api/connections, /har,
 * /, ...); the figures are medians: to the last body byte, to the first, and the CPU time MITM
 * spent (all its threads, from /proc; it varies less than wall time on a busy machine).
 * MITM: `--upstream direct --report 127.0.0.1:0`.
 *
 *   npx tsx bench/report.ts [--connections 10000] [--events 200000] [--runs 3] [--cpu-prof DIR] [--hold]
 *
 * `--hold`: after the fill, print MITM's ports and keep it running (for curl or a profile).
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout.
 */
import {
  COMMON_USAGE, HOST, cpuMs, fail, getRoute, httpClient, log, machine, median, openTunnel, parseCommonFlags, parseRuns,
  ratio, round, runMain, sleep, startMitm, startOrigin, statusMiB, stopChild, table
} from "./common.js"

const USAGE = `Usage: npx tsx bench/report.ts [flags]

  --connections N    connections to fill the store with                                       [10000]
  --events N         events in all (roughly)                                                  [200000]
  --hold             after the fill, print MITM's ports and pid and keep it running until killed
${COMMON_USAGE}`

const ROUTES = ["/", "/api/connections", "/har"] as const
const WORKERS = 50

/** GET a report route; resolves with ms to the last body byte and the body. */
/** One connection through the proxy doing `k` keep-alive requests, then closing. */
const connection = async (originPort: number, proxyPort: number, k: number): Promise<void> => {
  const { socket, early } = await openTunnel(originPort, proxyPort)
  const client = httpClient(socket, early, `${HOST}:${originPort}`)
  try {
    for (let i = 0; i < k; i++) {
      const got = await client.get("/bytes?n=100")
      if (got !== 100) fail(`expected 100 body bytes, got ${got}`)
    }
  } finally {
    client.close()
  }
}

interface ApiConnection {
  readonly id: number
  readonly state: string
  readonly events: ReadonlyArray<unknown>
}

const apiConnections = async (reportPort: number): Promise<ReadonlyArray<ApiConnection>> =>
  JSON.parse((await getRoute(reportPort, "/api/connections")).body.toString("utf8")) as ReadonlyArray<ApiConnection>

export const main = async (): Promise<void> => {
  let connections = 10_000
  let events = 200_000
  let hold = false
  const options = parseCommonFlags(process.argv.slice(2), {
    usage: USAGE,
    onSwitch: (name) => name === "--hold" && (hold = true),
    onValue: (name, value) => {
      if (name === "--connections") connections = parseRuns(value, name)
      else if (name === "--events") events = parseRuns(value, name)
      else return false
      return true
    }
  })
  log(`report: ${connections} connections / ~${events} events through MITM, then ${ROUTES.join(", ")} × ${options.runs} runs, ${HOST} only`)
  const origin = await startOrigin()
  const mitm = await startMitm({ cpuProfDir: options.cpuProfDir, report: true })
  const reportPort = mitm.reportPort ?? fail("mitm did not print its report address")
  const pid = mitm.proc.pid

  // calibration
  await connection(origin.port, mitm.port, 1)
  await connection(origin.port, mitm.port, 3)
  await sleep(200)
  const cal = await apiConnections(reportPort)
  if (cal.length < 2) fail(`expected 2 calibration connections in the store, found ${cal.length}`)
  const e1 = cal[cal.length - 2].events.length
  const e3 = cal[cal.length - 1].events.length
  const perRequest = (e3 - e1) / 2
  const perConnection = e1 - perRequest
  if (!(perRequest > 0)) fail(`calibration: ${e1} events for 1 request, ${e3} for 3`)
  const totalRequests = Math.max(connections, Math.round((events - connections * perConnection) / perRequest))
  const base = Math.floor(totalRequests / connections)
  const extra = totalRequests - base * connections
  log(`calibration: ${perConnection} events per connection + ${perRequest} per request → ${totalRequests} requests (${base}–${base + (extra > 0 ? 1 : 0)} per connection)`)

  // fill
  const t0 = performance.now()
  let next = 0
  let errors = 0
  let firstError: string | null = null
  const worker = async (): Promise<void> => {
    while (next < connections) {
      const i = next++
      try {
        await connection(origin.port, mitm.port, base + (i < extra ? 1 : 0))
      } catch (e) {
        errors++
        firstError ??= (e as Error).message
      }
      if (i > 0 && i % 2000 === 0) log(`fill: ${i} connections`)
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, worker))
  const fillSeconds = (performance.now() - t0) / 1000
  log(`fill: ${connections} connections, ${totalRequests} requests in ${fillSeconds.toFixed(1)} s (${errors} errors${firstError ? `, first: ${firstError}` : ""})`)
  await sleep(500)
  const rssFilled = statusMiB(pid, "VmRSS")
  const hwmFilled = statusMiB(pid, "VmHWM")

  if (hold) {
    process.stdout.write(`holding: proxy 127.0.0.1:${mitm.port}, report http://127.0.0.1:${reportPort}/, MITM pid ${pid}\n`)
    await new Promise(() => {})
  }

  // warm-up pass, which also counts what the store holds
  const stored = await apiConnections(reportPort)
  const storedEvents = stored.reduce((a, c) => a + c.events.length, 0)
  const open = stored.filter((c) => c.state === "open").length
  log(`store: ${stored.length} connections (${open} open), ${storedEvents} events; VmRSS ${rssFilled?.toFixed(0)} MiB`)
  const sizes = new Map<string, number>()
  const firsts = new Map<string, number>()
  for (const route of ROUTES) {
    const r = await getRoute(reportPort, route)
    sizes.set(route, r.body.length)
    firsts.set(route, r.ms)
    log(`warm-up  GET ${route.padEnd(17)} ${r.ms.toFixed(0).padStart(6)} ms  ${(r.body.length / 1024 / 1024).toFixed(1)} MiB (not in the median)`)
  }

  const times = new Map<string, Array<number>>(ROUTES.map((r) => [r, []]))
  const firstBytes = new Map<string, Array<number>>(ROUTES.map((r) => [r, []]))
  const cpu = new Map<string, Array<number>>(ROUTES.map((r) => [r, []]))
  for (let run = 1; run <= options.runs; run++) {
    for (const route of ROUTES) {
      const cpuBefore = cpuMs(pid)
      const r = await getRoute(reportPort, route)
      const cpuAfter = cpuMs(pid)
      times.get(route)!.push(r.ms)
      firstBytes.get(route)!.push(r.firstByteMs)
      if (cpuBefore !== null && cpuAfter !== null) cpu.get(route)!.push(cpuAfter - cpuBefore)
      log(`run ${run}/${options.runs}  GET ${route.padEnd(17)} ${r.ms.toFixed(0).padStart(6)} ms (first byte ${r.firstByteMs.toFixed(0)} ms, MITM CPU ${cpuBefore === null || cpuAfter === null ? "?" : (cpuAfter - cpuBefore).toFixed(0)} ms)`)
    }
  }
  const medianOrNull = (xs: ReadonlyArray<number>): number | null => (xs.length === 0 ? null : round(median(xs)))
  const rssEnd = statusMiB(pid, "VmRSS")
  const hwmEnd = statusMiB(pid, "VmHWM")
  await stopChild(mitm, 30_000)
  await stopChild(origin)

  const routes = Object.fromEntries(ROUTES.map((route) => [route, {
    medianMs: round(median(times.get(route)!)),
    maxMs: round(Math.max(...times.get(route)!)),
    firstByteMedianMs: medianOrNull(firstBytes.get(route)!),
    cpuMedianMs: medianOrNull(cpu.get(route)!),
    firstRequestMs: round(firsts.get(route) ?? Number.NaN),
    bytes: sizes.get(route) ?? null,
    samplesMs: times.get(route)!.map((x) => round(x))
  }]))
  const worst = Math.max(...ROUTES.map((r) => median(times.get(r)!)))
  const result = {
    scenario: "report",
    connectionsRequested: connections,
    eventsRequested: events,
    connections: stored.length,
    events: storedEvents,
    openConnections: open,
    fillRequests: totalRequests,
    fillSeconds: round(fillSeconds),
    fillErrors: errors,
    runs: options.runs,
    routes,
    worstMedianMs: round(worst),
    worstToTarget: ratio(worst, 300),
    rssFilledMiB: round(rssFilled),
    hwmFilledMiB: round(hwmFilled),
    rssEndMiB: round(rssEnd),
    hwmEndMiB: round(hwmEnd),
    ...machine()
  }
  const rows = ROUTES.map((route) => [
    `GET ${route}`,
    round(median(times.get(route)!)),
    round(Math.max(...times.get(route)!)),
    medianOrNull(firstBytes.get(route)!) ?? "?",
    medianOrNull(cpu.get(route)!) ?? "?",
    round(firsts.get(route) ?? Number.NaN),
    round((sizes.get(route) ?? 0) / 1024 / 1024, 2),
    median(times.get(route)!) <= 300 ? "yes" : "NO"
  ])
  process.stdout.write(
    `report routes, ${stored.length} connections / ${storedEvents} events in MITM's store, median of ${options.runs} runs\n` +
      table(["route", "median ms", "max ms", "first byte ms", "MITM CPU ms", "first request ms", "MiB", "≤ 300 ms"], rows) +
      `\nMITM RSS: ${rssFilled?.toFixed(0)} MiB filled, ${rssEnd?.toFixed(0)} MiB after the routes, peak (VmHWM) ${hwmEnd?.toFixed(0)} MiB` +
      `   fill: ${totalRequests} requests in ${fillSeconds.toFixed(1)} s, ${errors} errors\n`
  )
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
