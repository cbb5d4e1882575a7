/**
 * Throughput benchmark: bulk download of one HTTP response with Content-Length over ONE
 * connection, measured in the same run through
 *
 *   1. direct       client straight to the origin (the physical limit of this machine),
 *   2. plainRelay   a plain Node SOCKS5 relay, `client.pipe(upstream).pipe(client)`
 *                   (bench/plain-relay.ts: Node's limit for any proxy),
 *   3. mitm         MITM (`--upstream direct --report off --listen 127.0.0.1:0`), decoding on,
 *   4. microsocks   only when /usr/bin/microsocks exists (never installed by this script).
 *
 * The origin (bench/origin.ts) and every proxy run as their own child processes; the client
 * runs here. Runs are interleaved (direct, relay, mitm, direct, relay, mitm, ...) after one
 * unmeasured warm-up per scenario; the figures are medians in MiB/s, timed from the request
 * write to the last body byte. Every run must receive exactly N body bytes, or the bench fails.
 * All traffic stays on 127.0.0.1.
 *
 *   npm run bench
 *   npx tsx bench/throughput.ts --size 512MiB --runs 3
 *   npx tsx bench/throughput.ts --cpu-prof /tmp/prof     # also profile the MITM child
 *
 * Output: progress on stderr; a table, then one JSON line, on stdout. Besides MiB/s it records,
 * per proxy, the CPU it used during the runs (1 = one core) and its minor page faults per MiB
 * (a 64 KiB read buffer that malloc gave back to the OS costs 16 faults when reused), and
 * MITM's VmHWM/VmRSS at the end. Children inherit the environment, so e.g.
 * `GLIBC_TUNABLES=glibc.malloc.trim_threshold=... npm run bench` applies to all of them.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const HOST = "127.0.0.1"
const MIB = 1024 * 1024
const MICROSOCKS = "/usr/bin/microsocks"

// ---------------------------------------------------------------------------------------------
// flags

const USAGE = `Usage: npx tsx bench/throughput.ts [flags]   (npm run bench)

  --size SIZE        response body size: 512MiB, 1GiB, 800MB, 100000000B; a bare number is MiB  [512MiB]
  --runs N           measured runs per scenario, interleaved; medians are reported               [3]
  --cpu-prof DIR     run the MITM child with --cpu-prof --cpu-prof-dir DIR
  --help             this text
`

const fail = (message: string): never => {
  throw new Error(message)
}

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

interface Options {
  readonly size: number
  readonly runs: number
  readonly cpuProfDir: string | null
}

const parseFlags = (argv: ReadonlyArray<string>): Options => {
  let size = 512 * MIB
  let runs = 3
  let cpuProfDir: string | null = null
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const eq = flag.indexOf("=")
    const name = eq >= 0 ? flag.slice(0, eq) : flag
    const value = (): string => {
      if (eq >= 0) return flag.slice(eq + 1)
      const v = argv[++i]
      return v ?? fail(`${name}: missing value`)
    }
    switch (name) {
      case "--help":
        process.stdout.write(USAGE)
        process.exit(0)
        break
      case "--size":
        size = parseSize(value())
        break
      case "--runs": {
        const v = value()
        runs = Number(v)
        if (!Number.isSafeInteger(runs) || runs < 1) fail(`--runs: expected a whole number ≥ 1, got ${v}`)
        break
      }
      case "--cpu-prof":
        cpuProfDir = path.resolve(value())
        break
      default:
        fail(`unknown flag ${flag} (try --help)`)
    }
  }
  return { size, runs, cpuProfDir }
}

// ---------------------------------------------------------------------------------------------
// child processes

interface Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly port: number
}

const children = new Set<ChildProcess>()

const killAll = (signal: NodeJS.Signals = "SIGKILL"): void => {
  for (const proc of children) {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        proc.kill(signal)
      } catch {
        // already gone
      }
    }
  }
}
process.on("exit", () => killAll("SIGKILL"))
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping children\n`)
    killAll("SIGKILL")
    process.exit(130)
  })
}

/** Spawns `node [nodeArgs] --import tsx script args` in the repo root; resolves with the port it prints. */
const startNodeChild = (
  name: string,
  script: string,
  args: ReadonlyArray<string>,
  listening: RegExp,
  nodeArgs: ReadonlyArray<string> = []
): Promise<Child> =>
  startChild(name, process.execPath, [...nodeArgs, "--import", "tsx", script, ...args], listening)

const startChild = (name: string, command: string, args: ReadonlyArray<string>, listening: RegExp | null, knownPort?: number): Promise<Child> =>
  new Promise<Child>((resolve, reject) => {
    const proc = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] })
    children.add(proc)
    let out = ""
    let err = ""
    let done = false
    const timer = setTimeout(() => finish(new Error(`${name} did not start within 60 s\n${out}${err}`)), 60_000)
    const finish = (result: Error | number): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (typeof result === "number") resolve({ name, proc, port: result })
      else reject(result)
    }
    proc.stdout!.setEncoding("utf8").on("data", (text: string) => {
      out += text
      const m = listening?.exec(out)
      if (m) finish(Number(m[1]))
    })
    proc.stderr!.setEncoding("utf8").on("data", (text: string) => {
      err += text
      if (done) process.stderr.write(`[${name}] ${text}`)
    })
    proc.once("error", (cause) => finish(new Error(`${name}: ${cause.message}`)))
    proc.once("exit", (code, signal) => {
      children.delete(proc)
      if (!done) finish(new Error(`${name} exited (${signal ?? code}) before listening:\n${out}${err}`))
    })
    if (listening === null && knownPort !== undefined) {
      waitConnectable(knownPort, 10_000).then(() => finish(knownPort), (e: Error) => finish(e))
    }
  })

const waitConnectable = async (port: number, ms: number): Promise<void> => {
  const deadline = Date.now() + ms
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: HOST, port }, () => {
        s.destroy()
        resolve(true)
      })
      s.once("error", () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${HOST}:${port}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, HOST, () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/** Asks a child to stop (SIGINT: MITM then exits 0 and writes its CPU profile), SIGKILL after `ms`. */
const stopChild = (child: Child, ms = 10_000): Promise<void> =>
  new Promise((resolve) => {
    const { proc } = child
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
    const timer = setTimeout(() => {
      process.stderr.write(`bench: ${child.name} did not exit within ${ms} ms, killing it\n`)
      proc.kill("SIGKILL")
    }, ms)
    proc.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    proc.kill("SIGINT")
  })

// ---------------------------------------------------------------------------------------------
// /proc readings (Linux; null elsewhere)

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/** CPU seconds (user + system) and minor page faults so far of a process. */
const procStat = (pid: number | undefined): { cpu: number; minflt: number } | null => {
  if (pid === undefined) return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // fields 10 (minflt), 14 (utime), 15 (stime) of proc(5); this array starts at field 3
    return { cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK, minflt: Number(fields[7]) }
  } catch {
    return null
  }
}

/** A /proc/PID/status size field (VmHWM, VmRSS) in MiB. */
const statusMiB = (pid: number | undefined, field: string): number | null => {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// the client

/** A socket reader: `next(n)` resolves with exactly n bytes (for the SOCKS replies). */
const reader = (socket: net.Socket) => {
  let buf = Buffer.alloc(0)
  let want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null
  let failure: Error | null = null
  const pump = (): void => {
    if (want === null) return
    if (failure) {
      want.reject(failure)
      want = null
    } else if (buf.length >= want.n) {
      const out = buf.subarray(0, want.n)
      buf = buf.subarray(want.n)
      const w = want
      want = null
      w.resolve(out)
    }
  }
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk])
    pump()
  }
  const onEnd = (): void => {
    failure ??= new Error("connection closed during the SOCKS handshake")
    pump()
  }
  const onError = (e: Error): void => {
    failure ??= e
    pump()
  }
  socket.on("data", onData).on("end", onEnd).on("error", onError)
  return {
    next: (n: number) =>
      new Promise<Buffer>((resolve, reject) => {
        want = { n, resolve, reject }
        pump()
      }),
    /** Stops reading; returns what was read beyond the last `next`. */
    release: (): Buffer => {
      socket.pause()
      socket.off("data", onData).off("end", onEnd).off("error", onError)
      return buf
    }
  }
}

const SOCKS_REPLIES = [
  "succeeded", "general failure", "not allowed by ruleset", "network unreachable", "host unreachable",
  "connection refused", "TTL expired", "command not supported", "address type not supported"
]

/** SOCKS5 no-auth CONNECT to HOST:port by IP through the proxy; resolves once the tunnel is up. */
const socksConnect = async (socket: net.Socket, port: number): Promise<Buffer> => {
  const r = reader(socket)
  socket.write(Buffer.from([5, 1, 0]))
  const method = await r.next(2)
  if (method[0] !== 5 || method[1] !== 0) fail(`SOCKS: proxy refused no-auth (reply ${method.toString("hex")})`)
  const req = Buffer.from([5, 1, 0, 1, ...HOST.split(".").map(Number), port >> 8, port & 0xff])
  socket.write(req)
  const head = await r.next(4)
  if (head[0] !== 5) fail(`SOCKS: bad reply version ${head[0]}`)
  if (head[1] !== 0) fail(`SOCKS: CONNECT failed: ${SOCKS_REPLIES[head[1]] ?? `code ${head[1]}`}`)
  const atyp = head[3]
  if (atyp !== 1 && atyp !== 3 && atyp !== 4) fail(`SOCKS: bad reply address type ${atyp}`)
  const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : (await r.next(1))[0]
  await r.next(addrLen + 2) // BND.ADDR, BND.PORT
  return r.release()
}

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
// statistics and output

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const round = (x: number | null, digits = 1): number | null => (x === null ? null : Number(x.toFixed(digits)))

// ---------------------------------------------------------------------------------------------
// main

const main = async (): Promise<void> => {
  const options = parseFlags(process.argv.slice(2))
  const n = options.size
  const started = performance.now()
  const log = (line: string): void => {
    process.stderr.write(`bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s  ${line}\n`)
  }
  log(`throughput: ${(n / MIB).toFixed(1)} MiB per run, ${options.runs} runs per scenario, node ${process.version}, ${HOST} only`)

  const origin = await startNodeChild("origin", "bench/origin.ts", [], /origin: listening on [\d.]+:(\d+)/)
  log(`origin      pid ${origin.proc.pid} on ${HOST}:${origin.port}`)
  const relay = await startNodeChild("plainRelay", "bench/plain-relay.ts", [], /listening on [\d.]+:(\d+)/)
  log(`plainRelay  pid ${relay.proc.pid} on ${HOST}:${relay.port}`)
  const mitmNodeArgs = options.cpuProfDir === null ? [] : ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir]
  const mitm = await startNodeChild(
    "mitm",
    "src/main.ts",
    ["--upstream", "direct", "--report", "off", "--listen", `${HOST}:0`],
    /mitm: SOCKS proxy listening on [\d.]+:(\d+)/,
    mitmNodeArgs
  )
  log(`mitm        pid ${mitm.proc.pid} on ${HOST}:${mitm.port}${options.cpuProfDir ? ` (CPU profile to ${options.cpuProfDir})` : ""}`)
  let microsocks: Child | null = null
  if (existsSync(MICROSOCKS)) {
    const port = await freePort()
    microsocks = await startChild("microsocks", MICROSOCKS, ["-i", HOST, "-p", String(port)], null, port)
    log(`microsocks  pid ${microsocks.proc.pid} on ${HOST}:${microsocks.port}`)
  } else {
    log(`microsocks  skipped: ${MICROSOCKS} does not exist`)
  }

  const scenarios: Array<{ key: string; proxy: Child | null }> = [
    { key: "direct", proxy: null },
    { key: "plainRelay", proxy: relay },
    { key: "mitm", proxy: mitm },
    ...(microsocks ? [{ key: "microsocks", proxy: microsocks }] : [])
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

  await Promise.all([stopChild(mitm), stopChild(relay), stopChild(origin), ...(microsocks ? [stopChild(microsocks)] : [])])
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
  const micro = med("microsocks")

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
    microsocks: round(micro),
    microsocksSkipped: microsocks === null ? `${MICROSOCKS} not found` : null,
    plainRelayCpu: round(medOf("plainRelay", "proxyCpu"), 2),
    mitmCpu: round(medOf("mitm", "proxyCpu"), 2),
    plainRelayFaultsPerMiB: round(medOf("plainRelay", "proxyFaultsPerMiB")),
    mitmFaultsPerMiB: round(medOf("mitm", "proxyFaultsPerMiB")),
    mitmVmHWMMiB: round(mitmHwm),
    mitmVmRSSMiB: round(mitmRss),
    plainRelayVmHWMMiB: round(relayHwm),
    samples: Object.fromEntries([...samples].map(([k, xs]) => [k, xs.map((s) => round(s.mibPerSec))])),
    node: process.version,
    cpus: (await import("node:os")).cpus().length,
    seconds: round((performance.now() - started) / 1000)
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
    row("mitm", mitmMed, `${pct(mitmMed / direct)} of direct${procNote(result.mitmCpu, result.mitmFaultsPerMiB)}`),
    micro === null ? `microsocks   skipped (${MICROSOCKS} not found)` : row("microsocks", micro, `${pct(micro / direct)} of direct`),
    `MITM / plain relay = ${result.mitmToRelay}   MITM / direct = ${result.mitmToDirect}` +
      (mitmHwm === null ? "" : `   MITM peak RSS (VmHWM) ${mitmHwm.toFixed(0)} MiB`)
  ]
  process.stdout.write(lines.join("\n") + "\n")
  process.stdout.write(JSON.stringify(result) + "\n")
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: FAILED: ${e instanceof Error ? e.message : String(e)}\n`)
    killAll("SIGKILL")
    process.exit(1)
  }
)
