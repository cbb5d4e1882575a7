/**
 * Concurrency: N proxied connections (default 10,000) held open at once through each proxy:
 * plainRelay, mitm (`--max-clients` raised above N), microsocks and mitmproxy when installed.
 *
 * Each run starts a fresh proxy, opens N connections through it (at most 200 handshakes in
 * flight), does one `GET /bytes?n=100` on each to prove the tunnel reaches the origin, and keeps
 * them all open. The origin (bench/origin.ts) is a keep-alive HTTP server that holds idle
 * connections for 60 s. With all N open it reads the proxy's VmRSS / VmHWM (/proc/PID/status)
 * and open fds, waits 1 s, counts connections that went away meanwhile, then closes everything
 * and stops the proxy. Errors = failed connects/handshakes/requests + connections lost while held.
 * Runs are interleaved across proxies; medians over runs.
 *
 * File descriptors: a proxy needs 2 per connection (client + upstream), so N = 10,000 needs a
 * limit above 20,000. If the soft limit is too low but the hard limit allows, this script
 * re-executes itself under `bash -c 'ulimit -n …'` (children inherit it). If the hard limit is
 * too low (raising it needs CAP_SYS_RESOURCE, e.g. `docker run --ulimit nofile=65536:65536`),
 * it runs with the largest N that fits and says so in the table and the JSON (`connections`,
 * `connectionsRequested`, `fdNote`).
 *
 *   npx tsx bench/concurrency.ts [--connections 10000] [--runs 3] [--peers plainRelay,mitm] [--cpu-prof DIR]
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout.
 */
import { spawn } from "node:child_process"
import type * as net from "node:net"
import {
  COMMON_USAGE, HOST, type PeerKey, ROOT, fail, fdLimits, httpClient, log, machine, median, openFds,
  openTunnel, parseCommonFlags, parseRuns, ratio, round, runMain, sleep, startOrigin, startPeers,
  statusMiB, stopChild, table
} from "./common.js"

const USAGE = `Usage: npx tsx bench/concurrency.ts [flags]

  --connections N    proxied connections held open at once                                   [10000]
${COMMON_USAGE}`

const PEERS: ReadonlyArray<PeerKey> = ["plainRelay", "mitm", "microsocks", "mitmproxy"]
const IN_FLIGHT = 200
/** fds a proxy process needs besides 2 per connection (stdio, epoll, listeners, libuv, V8). */
const FD_MARGIN = 100
const REEXEC = "MITM_BENCH_CONCURRENCY_REEXEC"

interface RunResult {
  readonly opened: number
  readonly errors: number
  readonly firstError: string | null
  readonly openSeconds: number
  readonly idleRssMiB: number | null
  readonly rssMiB: number | null
  readonly hwmMiB: number | null
  readonly fds: number | null
}

const runOnce = async (originPort: number, proxyPort: number, pid: number | undefined, n: number): Promise<RunResult> => {
  const idleRssMiB = statusMiB(pid, "VmRSS")
  const sockets: Array<net.Socket> = []
  let errors = 0
  let lost = 0
  let holding = true
  let firstError: string | null = null
  const error = (message: string): void => {
    errors++
    firstError ??= message
  }
  let next = 0
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++
      try {
        const { socket, early } = await openTunnel(originPort, proxyPort)
        const client = httpClient(socket, early, `${HOST}:${originPort}`)
        const got = await client.get("/bytes?n=100").catch((e: Error) => {
          socket.destroy()
          throw e
        })
        if (got !== 100) {
          socket.destroy()
          throw new Error(`expected 100 body bytes, got ${got}`)
        }
        sockets.push(socket)
        socket.once("close", () => {
          if (holding) {
            lost++
            firstError ??= "a held connection was closed"
          }
        })
      } catch (e) {
        error((e as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const openSeconds = (performance.now() - t0) / 1000
  await sleep(200)
  const rssMiB = statusMiB(pid, "VmRSS")
  const hwmMiB = statusMiB(pid, "VmHWM")
  const fds = openFds(pid)
  await sleep(1000)
  holding = false
  const opened = sockets.length - lost
  for (const s of sockets) s.destroy()
  return { opened, errors: errors + lost, firstError, openSeconds, idleRssMiB, rssMiB, hwmMiB, fds }
}

/** Makes sure this process (and so its children) may open `need` files: raise, re-exec, or say why not. */
const ensureFds = (need: number): { ok: true } | { ok: false; hard: number } | { reexec: true } => {
  const limits = fdLimits()
  if (limits === null || limits.soft >= need) return { ok: true }
  if (limits.hard < need) return { ok: false, hard: limits.hard }
  if (process.env[REEXEC] === "1") return { ok: false, hard: limits.soft }
  return { reexec: true }
}

export const main = async (): Promise<void> => {
  let requested = 10_000
  const argv = process.argv.slice(2)
  const options = parseCommonFlags(argv, {
    usage: USAGE,
    onValue: (name, value) => {
      if (name !== "--connections") return false
      requested = parseRuns(value, name)
      return true
    }
  })
  let n = requested
  let fdNote: string | null = null
  const need = 2 * n + FD_MARGIN
  const fd = ensureFds(need)
  if ("reexec" in fd) {
    log(`concurrency: raising the open-files limit to ${need} and re-running under bash -c 'ulimit -n ${need}'`)
    const child = spawn("bash", ["-c", `ulimit -n ${need} && exec "$@"`, "bash", process.execPath, "--import", "tsx", process.argv[1], ...argv], {
      cwd: ROOT,
      stdio: "inherit",
      env: { ...process.env, [REEXEC]: "1" }
    })
    const code = await new Promise<number>((resolve) => child.once("exit", (c, s) => resolve(c ?? (s ? 1 : 0))))
    if (code !== 0) fail(`the re-run under a raised limit failed (exit ${code})`)
    return
  }
  if (!fd.ok) {
    n = Math.floor((fd.hard - FD_MARGIN) / 2)
    fdNote = `open-files hard limit ${fd.hard} < ${need} needed for ${requested} proxied connections (2 fds each + ${FD_MARGIN}); ` +
      `ran ${n} instead. Raising the hard limit needs CAP_SYS_RESOURCE (e.g. docker run --ulimit nofile=65536:65536)`
    log(`concurrency: NOTE ${fdNote}`)
  }
  log(`concurrency: ${n} proxied connections held at once per proxy, fresh proxy per run, ${options.runs} runs, ${HOST} only`)
  const origin = await startOrigin()

  const results = new Map<PeerKey, Array<RunResult>>()
  const skipped: Partial<Record<PeerKey, string>> = {}
  const mitmArgs = ["--max-clients", String(n + 1000)]
  for (let run = 1; run <= options.runs; run++) {
    for (const key of PEERS) {
      if (skipped[key] !== undefined) continue
      const peers = await startPeers([key], { cpuProfDir: options.cpuProfDir, wanted: options.peers, mitmArgs })
      const peer = peers.get(key)
      if (peer === undefined) {
        skipped[key] = peers.skipped[key]
        continue
      }
      const r = await runOnce(origin.port, peer.proxyPort!, peer.child!.proc.pid, n)
      await peers.stop()
      if (!results.has(key)) results.set(key, [])
      results.get(key)!.push(r)
      log(
        `run ${run}/${options.runs}  ${key.padEnd(11)} ${r.opened} open, ${r.errors} errors in ${r.openSeconds.toFixed(1)} s; ` +
          `RSS ${r.idleRssMiB?.toFixed(0)} → ${r.rssMiB?.toFixed(0)} MiB (HWM ${r.hwmMiB?.toFixed(0)}), ${r.fds} fds` +
          (r.firstError ? `; first error: ${r.firstError}` : "")
      )
      await sleep(500) // let the origin see the closes
    }
  }
  await stopChild(origin)

  const med = (key: PeerKey, field: "rssMiB" | "hwmMiB" | "idleRssMiB" | "openSeconds" | "opened"): number | null => {
    const xs = (results.get(key) ?? []).map((r) => r[field]).filter((x): x is number => x !== null)
    return xs.length > 0 ? median(xs) : null
  }
  const errorsOf = (key: PeerKey): number => (results.get(key) ?? []).reduce((a, r) => a + r.errors, 0)
  const result = {
    scenario: "concurrency",
    connectionsRequested: requested,
    connections: n,
    fdNote,
    runs: options.runs,
    peers: Object.fromEntries(
      PEERS.map((key) => [key, results.has(key)
        ? {
          errors: errorsOf(key),
          firstError: results.get(key)!.find((r) => r.firstError)?.firstError ?? null,
          openedMin: Math.min(...results.get(key)!.map((r) => r.opened)),
          openSeconds: round(med(key, "openSeconds"), 2),
          idleRssMiB: round(med(key, "idleRssMiB")),
          rssMiB: round(med(key, "rssMiB")),
          hwmMiB: round(med(key, "hwmMiB")),
          kibPerConnection: round((((med(key, "rssMiB") ?? 0) - (med(key, "idleRssMiB") ?? 0)) * 1024) / n, 1)
        }
        : { skipped: skipped[key] ?? "not run" }])
    ),
    mitmRssToRelay: ratio(med("mitm", "rssMiB"), med("plainRelay", "rssMiB")),
    mitmRssToMitmproxy: ratio(med("mitm", "rssMiB"), med("mitmproxy", "rssMiB")),
    ...machine()
  }
  const rows = PEERS.map((key) =>
    results.has(key)
      ? [
        key,
        Math.min(...results.get(key)!.map((r) => r.opened)),
        errorsOf(key),
        round(med(key, "openSeconds"), 1),
        round(med(key, "idleRssMiB")),
        round(med(key, "rssMiB")),
        round(med(key, "hwmMiB")),
        (result.peers[key] as { kibPerConnection: number }).kibPerConnection,
        key === "plainRelay" ? "" : String(ratio(med(key, "rssMiB"), med("plainRelay", "rssMiB"), 2) ?? "—")
      ]
      : [key, null, null, null, null, null, null, null, `skipped: ${skipped[key]}`]
  )
  process.stdout.write(
    `concurrency, ${n} proxied connections held open at once, median of ${options.runs} runs (RSS in MiB)\n` +
      (fdNote ? `NOTE: ${fdNote}\n` : "") +
      table(["proxy", "held", "errors", "open s", "idle RSS", "RSS held", "VmHWM", "KiB/conn", "RSS / relay"], rows) +
      `\nMITM RSS / plain relay RSS = ${result.mitmRssToRelay ?? "—"} (target ≤ 2)   MITM RSS / mitmproxy RSS = ${result.mitmRssToMitmproxy ?? "—"}\n`
  )
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
