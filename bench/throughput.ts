/**
 * Throughput benchmark: bulk download of one HTTP response with Content-Length over ONE
 * connection, measured in the same run through
 *
 *   1. direct       client straight to the origin (the physical limit of this machine),
 *   2. plainRelay   a plain Node SOCKS5 relay, `client.pipe(upstream).pipe(client)`
 *                   (bench/plain-relay.ts: Node's limit for any proxy),
 *   2b. streamRelay the plain relay's job on Effect 3 Streams (bench/stream-relay.ts),
 *   3. mitm         MITM as `npm start` runs it (`--upstream direct --report off`), decoding on,
 *   4. microsocks   when installed or installable (apt-get, as root; `--no-install` skips that),
 *   5. mitmproxy    likewise, `mitmdump --mode socks5 --set stream_large_bodies=1m`.
 *
 * The origin (bench/origin.ts) and every proxy run as their own child processes; the client
 * runs here. Runs are interleaved (direct, relay, mitm, direct, relay, mitm, ...) after one
 * unmeasured warm-up per scenario; the figures are medians in MiB/s, timed from the request
 * write to the last body byte. Every run must receive exactly N body bytes, or the bench fails.
 * All traffic stays on 127.0.0.1.
 *
 *   npm run bench
 *   npx tsx bench/throughput.ts --size 1GiB --runs 3
 *   npx tsx bench/throughput.ts --cpu-prof /tmp/prof     # also profile the MITM child
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout. Besides MiB/s it records,
 * per proxy, the CPU it used during the runs (1 = one core) and its minor page faults per MiB
 * (a 64 KiB read buffer that malloc gave back to the OS costs 16 faults when reused), and
 * MITM's VmHWM/VmRSS at the end. MITM gets the environment and node flags of `npm start`
 * (package.json); the other children inherit this process's environment.
 */
import * as net from "node:net"
import {
  type CommonOptions, COMMON_USAGE, HOST, MIB, fail, killAll, log, machine, median, parseCommonFlags, procStat, round,
  runMain, socksConnect, startMicrosocks, startMitm, startStreamRelay, startMitmproxy, startOrigin, startPlainRelay, statusMiB, stopChild,
  type Child
} from "./common.js"

// ---------------------------------------------------------------------------------------------
// flags

const USAGE = `Usage: npx tsx bench/throughput.ts [flags]

  --size SIZE        response body size: 512MiB, 1GiB, 800MB, 100000000B; a bare number is MiB  [1GiB]  
${COMMON_USAGE}`

const parseSize = (text: string): number => {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kib|mib|gib|kb|mb|gb)?$/i.exec(text.trim())
  if (m === null) return fail(`--size: expected e.g. 512MiB, 1GiB or 800MB, got ${JSON.stringify(text)}`)
  const unit = (m[2] ?? "mib").toLowerCase()
  const scale: Record<string, number> = {
    b: 1, kib: 1024, mib: MIB, gib: 1024 * MIB, kb: 1e3, mb: 1e6, gb: 1e9
  }
  const bytes = Math.round(Number(m[1]) * scale[unit])
  if (!Number.isSafeInteger(bytes) || bytes < 1) fail(`--size: must be at least 1 byte, got ${text}`)
  return bytes
}

interface Options extends CommonOptions {
  readonly size: number
}

const parseFlags = (argv: ReadonlyArray<string>): Options => {
  let size = 1024 * MIB
  const common = parseCommonFlags(argv, {
    usage: USAGE,
    onValue: (name, value) => {
      if (name !== "--size") return false
      size = parseSize(value)
      return true
    }
  })
  return { size, ...common }
}

// ---------------------------------------------------------------------------------------------
// the client

interface Sample {
  readonly bytes: number
  readonly seconds: number
  readonly mibPerSec: number
  /** CPU used by the proxy process during the run, in cores (1 = one core busy); null for direct. */
  readonly proxyCpu: number | null
  /** Minor page faults of the proxy process per MiB relayed (fresh memory being touched); null for direct. */
  readonly proxyFaultsPerMiB: number | null
}

/** GET /bytes?n=N from the origin, directly or through a SOCKS5 proxy; counts the body. */
const download = (originPort: number, n: number, proxy: Child | null): Promise<Sample> =>
  new Promise<Sample>((resolve, reject) => {
    const label = proxy?.name ?? "direct"
    const socket = net.connect({ host: HOST, port: proxy?.port ?? originPort })
    socket.setNoDelay(true)
    let settled = false
    const done = (result: Error | Sample): void => {
      if (settled) return
      settled = true
      clearTimeout(watchdog)
      socket.destroy()
      if (result instanceof Error) reject(new Error(`${label}: ${result.message}`))
      else resolve(result)
    }
    // No run may take longer than at 1 MiB/s plus a minute.
    const watchdog = setTimeout(() => done(new Error(`timed out after ${received} of ${n} body bytes`)), 60_000 + (n / MIB) * 1000)
    let received = 0

    socket.once("error", (e) => done(e))
    socket.once("connect", async () => {
      let early: Buffer
      try {
        early = proxy === null ? Buffer.alloc(0) : await socksConnect(socket, originPort)
      } catch (e) {
        return done(e as Error)
      }
      socket.on("error", (e) => done(e))
      const stat0 = procStat(proxy?.proc.pid)
      let head: Buffer | null = Buffer.alloc(0)
      let t1 = 0
      const onBody = (length: number): void => {
        received += length
        if (received > n) return done(new Error(`received ${received} body bytes, more than Content-Length ${n}`))
        if (received === n && t1 === 0) {
          t1 = performance.now()
          const stat1 = procStat(proxy?.proc.pid)
          const seconds = (t1 - t0) / 1000
          const proxyCpu = stat0 === null || stat1 === null ? null : (stat1.cpu - stat0.cpu) / seconds
          const proxyFaultsPerMiB = stat0 === null || stat1 === null ? null : (stat1.minflt - stat0.minflt) / (n / MIB)
          // Let a close or a stray extra byte arrive before declaring success.
          setTimeout(() => done({ bytes: received, seconds, mibPerSec: n / MIB / seconds, proxyCpu, proxyFaultsPerMiB }), 50)
        }
      }
      const onChunk = (chunk: Buffer): void => {
        if (head === null) return onBody(chunk.length)
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end < 0) {
          if (head.length > 64 * 1024) done(new Error("response head larger than 64 KiB"))
          return
        }
        const text = head.subarray(0, end).toString("latin1")
        const rest = head.length - (end + 4)
        head = null
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)
        if (status === null || status[1] !== "200") return done(new Error(`bad status line: ${text.split("\r\n")[0]}`))
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text)
        if (cl === null || Number(cl[1]) !== n) return done(new Error(`Content-Length ${cl?.[1]} instead of ${n}`))
        if (rest > 0) onBody(rest)
      }
      socket.on("data", onChunk)
      socket.on("end", () => {
        if (received < n) done(new Error(`connection closed after ${received} of ${n} body bytes`))
      })
      socket.on("close", () => {
        if (received < n) done(new Error(`connection closed after ${received} of ${n} body bytes`))
      })
      const t0 = performance.now()
      socket.write(`GET /bytes?n=${n} HTTP/1.1\r\nHost: ${HOST}:${originPort}\r\nConnection: close\r\nAccept: */*\r\n\r\n`)
      if (early.length > 0) onChunk(early) // bytes that came along with the SOCKS reply
      socket.resume()
    })
  })

// ---------------------------------------------------------------------------------------------
// main

const main = async (): Promise<void> => {
  const options = parseFlags(process.argv.slice(2))
  const n = options.size
  log(`throughput: ${(n / MIB).toFixed(1)} MiB per run, ${options.runs} runs per scenario, node ${process.version}, ${HOST} only`)

  const origin = await startOrigin()
  const relay = await startPlainRelay()
  const streamRelay = await startStreamRelay()
  const mitm = await startMitm({ cpuProfDir: options.cpuProfDir })
  // --peers picks among the optional peers; direct, the plain relay and MITM always run (the ratios need them).
  const wanted = (key: string): boolean => options.peers === null || options.peers.has(key)
  const micro0 = wanted("microsocks") ? await startMicrosocks() : { child: null, skipped: "not in --peers" }
  const microsocks = micro0.child
  // mitmproxy keeps whole bodies in memory unless told to stream them, as a user moving big
  // files through it would tell it.
  const mitmproxy0 = wanted("mitmproxy")
    ? await startMitmproxy(["--set", "stream_large_bodies=1m"])
    : { child: null, skipped: "not in --peers" }
  const mitmproxy = mitmproxy0.child

  const scenarios: Array<{ key: string; proxy: Child | null }> = [
    { key: "direct", proxy: null },
    { key: "plainRelay", proxy: relay },
    { key: "streamRelay", proxy: streamRelay },
    { key: "mitm", proxy: mitm },
    ...(microsocks ? [{ key: "microsocks", proxy: microsocks }] : []),
    ...(mitmproxy ? [{ key: "mitmproxy", proxy: mitmproxy }] : [])
  ]
  const samples = new Map<string, Array<Sample>>(scenarios.map((s) => [s.key, []]))

  const warm = Math.min(n, 64 * MIB)
  for (const { key, proxy } of scenarios) {
    const s = await download(origin.port, warm, proxy)
    log(`warm-up  ${key.padEnd(11)} ${(warm / MIB).toFixed(0)} MiB  ${s.mibPerSec.toFixed(0).padStart(6)} MiB/s (not counted)`)
  }
  for (let run = 1; run <= options.runs; run++) {
    for (const { key, proxy } of scenarios) {
      const s = await download(origin.port, n, proxy)
      if (s.bytes !== n) fail(`${key}: received ${s.bytes} body bytes instead of ${n}`)
      samples.get(key)!.push(s)
      const cpu = s.proxyCpu === null ? "" : `  proxy CPU ${(s.proxyCpu * 100).toFixed(0)}%, ${s.proxyFaultsPerMiB!.toFixed(0)} minor faults/MiB`
      log(`run ${run}/${options.runs}  ${key.padEnd(11)} ${s.seconds.toFixed(2).padStart(6)} s  ${s.mibPerSec.toFixed(0).padStart(6)} MiB/s${cpu}`)
    }
  }

  const mitmHwm = statusMiB(mitm.proc.pid, "VmHWM")
  const mitmRss = statusMiB(mitm.proc.pid, "VmRSS")
  const relayHwm = statusMiB(relay.proc.pid, "VmHWM")

  await Promise.all([
    stopChild(mitm),
    stopChild(relay),
    stopChild(streamRelay),
    stopChild(origin),
    ...(microsocks ? [stopChild(microsocks)] : []),
    ...(mitmproxy ? [stopChild(mitmproxy)] : [])
  ])
  killAll("SIGKILL")

  const med = (key: string): number | null => {
    const xs = samples.get(key)
    return xs && xs.length > 0 ? median(xs.map((s) => s.mibPerSec)) : null
  }
  const medOf = (key: string, field: "proxyCpu" | "proxyFaultsPerMiB"): number | null => {
    const xs = (samples.get(key) ?? []).map((s) => s[field]).filter((x): x is number => x !== null)
    return xs.length > 0 ? median(xs) : null
  }
  const direct = med("direct")!
  const plainRelay = med("plainRelay")!
  const mitmMed = med("mitm")!
  const streamMed = med("streamRelay")!
  const micro = med("microsocks")
  const mitmproxyMed = med("mitmproxy")

  const result = {
    scenario: "throughput",
    sizeMiB: round(n / MIB, 3),
    runs: options.runs,
    direct: round(direct),
    plainRelay: round(plainRelay),
    mitm: round(mitmMed),
    mitmToRelay: round(mitmMed / plainRelay, 3),
    mitmToDirect: round(mitmMed / direct, 3),
    relayToDirect: round(plainRelay / direct, 3),
    streamRelay: round(streamMed),
    /** The plain relay's job on Effect Streams against the plain relay (issue 13). */
    streamToRelay: round(streamMed / plainRelay, 3),
    microsocks: round(micro),
    microsocksSkipped: micro0.skipped,
    mitmproxy: round(mitmproxyMed),
    mitmproxySkipped: mitmproxy0.skipped,
    mitmToMitmproxy: mitmproxyMed === null ? null : round(mitmMed / mitmproxyMed, 3),
    plainRelayCpu: round(medOf("plainRelay", "proxyCpu"), 2),
    mitmCpu: round(medOf("mitm", "proxyCpu"), 2),
    plainRelayFaultsPerMiB: round(medOf("plainRelay", "proxyFaultsPerMiB")),
    mitmFaultsPerMiB: round(medOf("mitm", "proxyFaultsPerMiB")),
    mitmVmHWMMiB: round(mitmHwm),
    mitmVmRSSMiB: round(mitmRss),
    plainRelayVmHWMMiB: round(relayHwm),
    samples: Object.fromEntries([...samples].map(([k, xs]) => [k, xs.map((s) => round(s.mibPerSec))])),
    ...machine()
  }

  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  const procNote = (cpu: number | null, faults: number | null): string =>
    cpu === null ? "" : `, proxy CPU ${pct(cpu)}, ${faults?.toFixed(0)} minor faults/MiB`
  const row = (name: string, mib: number | null, note: string): string =>
    `${name.padEnd(12)} ${(mib === null ? "—" : mib.toFixed(0)).padStart(8)}  ${note}`
  const lines = [
    `throughput, one connection, ${(n / MIB).toFixed(0)} MiB body, median of ${options.runs} (MiB/s)`,
    row("direct", direct, "physical limit"),
    row("plain relay", plainRelay, `${pct(plainRelay / direct)} of direct${procNote(result.plainRelayCpu, result.plainRelayFaultsPerMiB)}`),
    row("streamRelay", streamMed, `${pct(streamMed / direct)} of direct, ${result.streamToRelay} × plain relay (Effect Streams)`),
    row("mitm", mitmMed, `${pct(mitmMed / direct)} of direct${procNote(result.mitmCpu, result.mitmFaultsPerMiB)}`),
    micro === null ? `microsocks   skipped (${micro0.skipped})` : row("microsocks", micro, `${pct(micro / direct)} of direct`),
    mitmproxyMed === null
      ? `mitmproxy    skipped (${mitmproxy0.skipped})`
      : row("mitmproxy", mitmproxyMed, `${pct(mitmproxyMed / direct)} of direct (stream_large_bodies=1m)`),
    `MITM / plain relay = ${result.mitmToRelay}   MITM / direct = ${result.mitmToDirect}` +
      (mitmHwm === null ? "" : `   MITM peak RSS (VmHWM) ${mitmHwm.toFixed(0)} MiB`)
  ]
  process.stdout.write(lines.join("\n") + "\n")
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
