/**
 * Shared by the bench scenarios (bench/throughput.ts, latency.ts, connrate.ts, concurrency.ts,
 * report.ts): flags, child processes (origin, proxies), /proc readings, a SOCKS5 client, a
 * minimal keep-alive HTTP/1.1 client, statistics and output. Everything stays on 127.0.0.1.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const HOST = "127.0.0.1"
export const MIB = 1024 * 1024
export const MICROSOCKS = "/usr/bin/microsocks"
export const MITMDUMP_CANDIDATES = ["/usr/bin/mitmdump", "/usr/local/bin/mitmdump"]

export const fail = (message: string): never => {
  throw new Error(message)
}

// ---------------------------------------------------------------------------------------------
// flags

export interface FlagSpec {
  /** Flags that take a value, e.g. "--size"; their values are handed to `onValue`. */
  readonly onValue?: (name: string, value: string) => boolean
  /** Flags without a value, e.g. "--hold"; true when the scenario knows the flag. */
  readonly onSwitch?: (name: string) => boolean
  readonly usage: string
}

export interface CommonOptions {
  readonly runs: number
  readonly cpuProfDir: string | null
  /** `--peers a,b`: only these peers (null: all the scenario knows). */
  readonly peers: ReadonlySet<string> | null
}

export const parseRuns = (v: string, name = "--runs"): number => {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 1) fail(`${name}: expected a whole number ≥ 1, got ${v}`)
  return n
}

/**
 * Parses `--runs N`, `--cpu-prof DIR`, `--help` and whatever `spec.onValue` accepts
 * (`--flag value` or `--flag=value`); anything else is an error.
 */
export const parseCommonFlags = (argv: ReadonlyArray<string>, spec: FlagSpec): CommonOptions => {
  let runs = 3
  let cpuProfDir: string | null = null
  let peers: Set<string> | null = null
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
        process.stdout.write(spec.usage)
        process.exit(0)
        break
      case "--runs":
        runs = parseRuns(value())
        break
      case "--cpu-prof":
        cpuProfDir = path.resolve(value())
        break
      case "--peers":
        peers = new Set(value().split(",").map((p) => p.trim()).filter((p) => p !== ""))
        break
      case "--no-install":
        installMissing = false
        break
      default: {
        if (eq < 0 && spec.onSwitch?.(name) === true) break
        if (name.startsWith("--") && spec.onValue !== undefined) {
          // Only consume a value if the scenario knows the flag.
          const v = eq >= 0 ? flag.slice(eq + 1) : argv[i + 1]
          if (v !== undefined && spec.onValue(name, v)) {
            if (eq < 0) i++
            break
          }
        }
        fail(`unknown flag ${flag} (try --help)`)
      }
    }
  }
  return { runs, cpuProfDir, peers }
}

export const COMMON_USAGE = `  --runs N           measured runs per peer, interleaved; medians are reported               [3]
  --no-install       do not apt-get install a missing peer (microsocks, mitmproxy)
  --cpu-prof DIR     run the MITM child with --cpu-prof --cpu-prof-dir DIR
  --peers A,B        only these of direct,plainRelay,streamRelay,plainRelaySocks,mitm,mitmSocks,microsocks,mitmproxy (where the scenario has them)
  --help             this text
`

// ---------------------------------------------------------------------------------------------
// logging

const started = performance.now()
export const elapsed = (): number => (performance.now() - started) / 1000
export const log = (line: string): void => {
  process.stderr.write(`bench ${elapsed().toFixed(1).padStart(6)}s  ${line}\n`)
}

// ---------------------------------------------------------------------------------------------
// child processes

export interface Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly port: number
  /** Everything the child printed on stdout so far (start lines). */
  readonly stdout: () => string
}

const children = new Set<ChildProcess>()

export const killAll = (signal: NodeJS.Signals = "SIGKILL"): void => {
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
export const startNodeChild = (
  name: string,
  script: string,
  args: ReadonlyArray<string>,
  listening: RegExp,
  nodeArgs: ReadonlyArray<string> = []
): Promise<Child> =>
  startChild(name, process.execPath, [...nodeArgs, "--import", "tsx", script, ...args], listening)

export const startChild = (
  name: string,
  command: string,
  args: ReadonlyArray<string>,
  listening: RegExp | null,
  knownPort?: number,
  echoStderr = true,
  env: Record<string, string> = {}
): Promise<Child> =>
  new Promise<Child>((resolve, reject) => {
    const proc = spawn(command, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } })
    children.add(proc)
    let out = ""
    let err = ""
    let done = false
    const timer = setTimeout(() => finish(new Error(`${name} did not start within 60 s\n${out}${err}`)), 60_000)
    const finish = (result: Error | number): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (typeof result === "number") resolve({ name, proc, port: result, stdout: () => out })
      else reject(result)
    }
    proc.stdout!.setEncoding("utf8").on("data", (text: string) => {
      out += text
      const m = listening?.exec(out)
      if (m) finish(Number(m[1]))
    })
    proc.stderr!.setEncoding("utf8").on("data", (text: string) => {
      if (!done) err += text
      else if (echoStderr) process.stderr.write(`[${name}] ${text}`)
    })
    proc.once("error", (cause) => finish(new Error(`${name}: ${cause.message}`)))
    proc.once("exit", (code, signal) => {
      children.delete(proc)
      if (!done) finish(new Error(`${name} exited (${signal ?? code}) before listening:\n${out}${err}`))
    })
    if (listening === null && knownPort !== undefined) {
      waitConnectable(knownPort, 30_000).then(() => finish(knownPort), (e: Error) => finish(e))
    }
  })

export const waitConnectable = async (port: number, ms: number): Promise<void> => {
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
    await sleep(100)
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, HOST, () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

/** Asks a child to stop (SIGINT: MITM then exits 0 and writes its CPU profile), SIGKILL after `ms`. */
export const stopChild = (child: Child | null, ms = 10_000): Promise<void> =>
  new Promise((resolve) => {
    if (child === null) return resolve()
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
// the peers

export const startOrigin = async (args: ReadonlyArray<string> = []): Promise<Child> => {
  const origin = await startNodeChild("origin", "bench/origin.ts", args, /origin: listening on [\d.]+:(\d+)/)
  log(`origin      pid ${origin.proc.pid} on ${HOST}:${origin.port}${args.length ? ` (${args.join(" ")})` : ""}`)
  return origin
}

export const startPlainRelay = async (socksUpstreamPort?: number): Promise<Child> => {
  const args = socksUpstreamPort === undefined ? [] : ["--upstream", String(socksUpstreamPort)]
  const relay = await startNodeChild("plainRelay", "bench/plain-relay.ts", args, /listening on [\d.]+:(\d+)/)
  log(`plainRelay  pid ${relay.proc.pid} on ${HOST}:${relay.port}${socksUpstreamPort === undefined ? "" : ` through SOCKS ${HOST}:${socksUpstreamPort}`}`)
  return relay
}

/**
 * The plain relay's job on Effect 3 Streams (bench/stream-relay.ts): what Streams cost any relay.
 * Bundled and started the way MITM is (its node flags and environment), so the two compare.
 */
export const startStreamRelay = async (cpuProfDir: string | null = null): Promise<Child> => {
  buildBundle("dist/stream-relay.mjs", "bench/stream-relay.ts")
  const launch = mitmLaunch()
  const profile = cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfDir] : []
  const relay = await startChild("streamRelay", process.execPath, [...launch.nodeArgs, ...profile, "dist/stream-relay.mjs"], /listening on [\d.]+:(\d+)/, undefined, true, launch.env)
  log(`streamRelay pid ${relay.proc.pid} on ${HOST}:${relay.port}`)
  return relay
}

export interface MitmChild extends Child {
  /** The report port when started with `report: true`. */
  readonly reportPort: number | null
}

/**
 * How `npm start` runs MITM (package.json's start script, after the build): its environment
 * and node's flags.
 * - GLIBC_TUNABLES: glibc keeps up to 32 MiB of freed relay buffers instead of giving them
 *   back to the system after each burst and faulting them in again (bench/throughput.ts:
 *   about 90 -> 0 minor faults per MiB).
 * - --no-concurrent-array-buffer-sweeping: the relay's read buffers are freed in the young
 *   collection that finds them dead, not later on a helper thread; otherwise, on a busy
 *   machine, V8 counts them as live external memory and runs a full collection every few
 *   dozen milliseconds of bulk transfer (--trace-gc: about 100 against 1 per 2 GiB).
 */
export const mitmLaunch = (): { readonly env: Record<string, string>; readonly nodeArgs: ReadonlyArray<string> } => {
  const start = (JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start
  const run = start.split("&&").pop()!.trim().split(/\s+/)
  const node = run.indexOf("node")
  const env = Object.fromEntries(run.slice(0, node).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]))
  const nodeArgs = run.slice(node + 1, run.indexOf("dist/mitm.mjs"))
  return { env, nodeArgs }
}

const built = new Set<string>()
/**
 * A bundle as `npm start`'s is made (scripts/build.mjs), built once per benchmark process from
 * the current sources: dist/mitm.mjs from src/main.ts, or `outfile` from `entry`.
 */
const buildBundle = (outfile = "dist/mitm.mjs", entry = "src/main.ts"): void => {
  if (built.has(outfile)) return
  execFileSync(process.execPath, ["scripts/build.mjs", outfile, entry], { cwd: ROOT, stdio: "inherit" })
  built.add(outfile)
}

/** MITM as the user runs it (`npm start`'s bundle): `--upstream direct`, report off unless asked, decoding on. */
export const startMitm = async (
  options: { cpuProfDir?: string | null; report?: boolean; extraArgs?: ReadonlyArray<string> } = {}
): Promise<MitmChild> => {
  const nodeArgs = options.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : []
  const report = options.report ? `${HOST}:0` : "off"
  const listening = options.report
    ? /mitm: SOCKS proxy listening on [\d.]+:(\d+)[\s\S]*mitm: report at http:\/\/[\d.]+:\d+\//
    : /mitm: SOCKS proxy listening on [\d.]+:(\d+)/
  buildBundle()
  const launch = mitmLaunch()
  const mitm = await startChild(
    "mitm",
    process.execPath,
    [...launch.nodeArgs, ...nodeArgs, "dist/mitm.mjs", "--upstream", "direct", "--report", report, "--listen", `${HOST}:0`, ...(options.extraArgs ?? [])],
    listening,
    undefined,
    true,
    launch.env
  )
  const rm = /mitm: report at http:\/\/[\d.]+:(\d+)\//.exec(mitm.stdout())
  const reportPort = rm ? Number(rm[1]) : null
  log(
    `mitm        pid ${mitm.proc.pid} on ${HOST}:${mitm.port}` +
      (reportPort ? `, report on ${HOST}:${reportPort}` : "") +
      (options.cpuProfDir ? ` (CPU profile to ${options.cpuProfDir})` : "")
  )
  return { ...mitm, reportPort }
}

export interface Optional {
  readonly child: Child | null
  /** Why the peer was not run (null when it runs). */
  readonly skipped: string | null
}

/** Whether a missing peer is installed with apt-get (when running as root); `--no-install` turns it off. */
let installMissing = true
const installTried = new Map<string, boolean>()

/**
 * Installs Debian's `pkg` when `binary` is missing, MITM's benchmarks run as root and apt-get
 * is there (refreshing the package lists once if the first try fails). True when `binary` is
 * there afterwards; never fails.
 */
export const installPeer = (pkg: string, binary: () => boolean): boolean => {
  if (binary()) return true
  if (!installMissing || process.getuid?.() !== 0 || !existsSync("/usr/bin/apt-get")) return false
  if (!installTried.has(pkg)) {
    log(`${pkg}: not installed; apt-get install -y ${pkg} (--no-install skips this)`)
    const apt = (args: ReadonlyArray<string>): boolean => {
      try {
        execFileSync("apt-get", [...args], {
          stdio: ["ignore", "ignore", "pipe"],
          timeout: 900_000,
          env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
        })
        return true
      } catch {
        return false
      }
    }
    const ok = apt(["install", "-y", "--no-install-recommends", pkg]) ||
      (apt(["update"]) && apt(["install", "-y", "--no-install-recommends", pkg]))
    log(`${pkg}: ${ok && binary() ? "installed" : "could not be installed"}`)
    installTried.set(pkg, ok)
  }
  return binary()
}

/** microsocks when /usr/bin/microsocks exists or can be installed (`apt-get install microsocks`); never fails. */
export const startMicrosocks = async (): Promise<Optional> => {
  if (!installPeer("microsocks", () => existsSync(MICROSOCKS))) {
    const skipped = `${MICROSOCKS} not found (apt-get install -y microsocks)`
    log(`microsocks  skipped: ${skipped}`)
    return { child: null, skipped }
  }
  try {
    const port = await freePort()
    // microsocks logs every connection on stderr: not echoed.
    const child = await startChild("microsocks", MICROSOCKS, ["-i", HOST, "-p", String(port)], null, port, false)
    log(`microsocks  pid ${child.proc.pid} on ${HOST}:${child.port}`)
    return { child, skipped: null }
  } catch (e) {
    const skipped = `microsocks did not start: ${(e as Error).message.split("\n")[0]}`
    log(`microsocks  skipped: ${skipped}`)
    return { child: null, skipped }
  }
}

export const mitmdumpPath = (): string | null => MITMDUMP_CANDIDATES.find((p) => existsSync(p)) ?? null

/**
 * mitmproxy's mitmdump in SOCKS5 mode when installed or installable (`apt-get install
 * mitmproxy`), with `extraArgs` (e.g. `--set stream_large_bodies=1m`); never fails.
 */
export const startMitmproxy = async (extraArgs: ReadonlyArray<string> = []): Promise<Optional> => {
  installPeer("mitmproxy", () => mitmdumpPath() !== null)
  const bin = mitmdumpPath()
  if (bin === null) {
    const skipped = `mitmdump not found in ${MITMDUMP_CANDIDATES.join(", ")} (apt-get install -y mitmproxy)`
    log(`mitmproxy   skipped: ${skipped}`)
    return { child: null, skipped }
  }
  try {
    const port = await freePort()
    const child = await startChild(
      "mitmproxy",
      bin,
      ["--mode", "socks5", "--listen-host", HOST, "--listen-port", String(port), "-q", ...extraArgs],
      null,
      port
    )
    log(`mitmproxy   pid ${child.proc.pid} on ${HOST}:${child.port} (${bin} --mode socks5)`)
    return { child, skipped: null }
  } catch (e) {
    const skipped = `mitmdump did not start: ${(e as Error).message.split("\n")[0]}`
    log(`mitmproxy   skipped: ${skipped}`)
    return { child: null, skipped }
  }
}

/** Something the client connects through: `direct` (no proxy) or a SOCKS5 proxy child. */
export interface Peer {
  readonly key: PeerKey
  /** The SOCKS port, or null for direct. */
  readonly proxyPort: number | null
  readonly child: Child | null
  /** What the peer itself goes through (mitmSocks: its microsocks upstream), stopped with it. */
  readonly upstream?: Child
}

/**
 * `mitmSocks` is MITM with a SOCKS upstream (a microsocks of its own standing in for Tor), and
 * `plainRelaySocks` the plain relay through a microsocks of its own: its baseline.
 */
export const PEER_KEYS = ["direct", "plainRelay", "streamRelay", "plainRelaySocks", "mitm", "mitmSocks", "microsocks", "mitmproxy"] as const
export type PeerKey = (typeof PEER_KEYS)[number]

export interface Peers {
  readonly running: ReadonlyArray<Peer>
  /** Peers not run, and why (not installed, did not start, or not asked for). */
  readonly skipped: Partial<Record<PeerKey, string>>
  readonly get: (key: PeerKey) => Peer | undefined
  readonly stop: () => Promise<void>
}

/** Starts the wanted peers of `keys` (direct needs nothing); missing optional ones are skipped and said so. */
export const startPeers = async (
  keys: ReadonlyArray<PeerKey>,
  options: { cpuProfDir: string | null; wanted: ReadonlySet<string> | null; mitmArgs?: ReadonlyArray<string> }
): Promise<Peers> => {
  const running: Array<Peer> = []
  const skipped: Partial<Record<PeerKey, string>> = {}
  for (const key of keys) {
    if (options.wanted !== null && !options.wanted.has(key)) {
      skipped[key] = "not in --peers"
      continue
    }
    switch (key) {
      case "direct":
        running.push({ key, proxyPort: null, child: null })
        break
      case "plainRelay": {
        const child = await startPlainRelay()
        running.push({ key, proxyPort: child.port, child })
        break
      }
      case "streamRelay": {
        const child = await startStreamRelay(options.cpuProfDir)
        running.push({ key, proxyPort: child.port, child })
        break
      }
      case "mitm": {
        const child = await startMitm({ cpuProfDir: options.cpuProfDir, extraArgs: options.mitmArgs })
        running.push({ key, proxyPort: child.port, child })
        break
      }
      case "plainRelaySocks":
      case "mitmSocks": {
        const upstream = await startMicrosocks()
        if (upstream.child === null) {
          skipped[key] = `its upstream: ${upstream.skipped!}`
          break
        }
        const args = [...(options.mitmArgs ?? []), "--upstream", `socks5://${HOST}:${upstream.child.port}`]
        const child = key === "mitmSocks"
          ? await startMitm({ cpuProfDir: options.cpuProfDir, extraArgs: args })
          : await startPlainRelay(upstream.child.port)
        running.push({ key, proxyPort: child.port, child, upstream: upstream.child })
        break
      }
      case "microsocks":
      case "mitmproxy": {
        const o = key === "microsocks" ? await startMicrosocks() : await startMitmproxy()
        if (o.child === null) skipped[key] = o.skipped!
        else running.push({ key, proxyPort: o.child.port, child: o.child })
        break
      }
    }
  }
  return {
    running,
    skipped,
    get: (key) => running.find((p) => p.key === key),
    stop: async () => {
      await Promise.all(running.map((p) => stopChild(p.child)))
      await Promise.all(running.map((p) => stopChild(p.upstream ?? null)))
    }
  }
}

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
export const procStat = (pid: number | undefined): { cpu: number; sys: number; minflt: number } | null => {
  if (pid === undefined) return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // fields 10 (minflt), 14 (utime), 15 (stime) of proc(5); this array starts at field 3
    return { cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK, sys: Number(fields[12]) / CLK_TCK, minflt: Number(fields[7]) }
  } catch {
    return null
  }
}

/** A /proc/PID/status size field (VmHWM, VmRSS) in MiB. */
export const statusMiB = (pid: number | undefined, field: string): number | null => {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}

/** CPU time a process has used (user + system, all its threads), in ms; null when unreadable. */
export const cpuMs = (pid: number | undefined): number | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return null
  }
}

/** Open file descriptors of a process (entries in /proc/PID/fd), or null. */
export const openFds = (pid: number | undefined): number | null => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return null
  }
}

/** This process's soft and hard limit on open files (from /proc/self/limits). */
export const fdLimits = (): { soft: number; hard: number } | null => {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"))
    if (m === null) return null
    const n = (s: string): number => (s === "unlimited" ? Infinity : Number(s))
    return { soft: n(m[1]), hard: n(m[2]) }
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// the SOCKS client

/** A socket reader: `next(n)` resolves with exactly n bytes (for the SOCKS replies). */
export const reader = (socket: net.Socket) => {
  let buf: Buffer<ArrayBufferLike> = Buffer.alloc(0)
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
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
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

/**
 * SOCKS5 no-auth CONNECT to HOST:port by IP through the proxy; resolves once the tunnel is up
 * with the bytes that came along with the reply (the socket is left paused).
 */
export const socksConnect = async (socket: net.Socket, port: number): Promise<Buffer> => {
  const r = reader(socket)
  socket.write(Buffer.from([5, 1, 0]))
  const method = await r.next(2)
  if (method[0] !== 5 || method[1] !== 0) fail(`SOCKS: proxy refused no-auth (reply ${method.toString("hex")})`)
  socket.write(Buffer.from([5, 1, 0, 1, ...HOST.split(".").map(Number), port >> 8, port & 0xff]))
  const head = await r.next(4)
  if (head[0] !== 5) fail(`SOCKS: bad reply version ${head[0]}`)
  if (head[1] !== 0) fail(`SOCKS: CONNECT failed: ${SOCKS_REPLIES[head[1]] ?? `code ${head[1]}`}`)
  const atyp = head[3]
  if (atyp !== 1 && atyp !== 3 && atyp !== 4) fail(`SOCKS: bad reply address type ${atyp}`)
  const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : (await r.next(1))[0]
  await r.next(addrLen + 2) // BND.ADDR, BND.PORT
  return r.release()
}

/** A TCP connection to the origin: straight (proxyPort null) or through a SOCKS5 proxy. */
export const openTunnel = (originPort: number, proxyPort: number | null): Promise<{ socket: net.Socket; early: Buffer }> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port: proxyPort ?? originPort })
    socket.setNoDelay(true)
    const onError = (e: Error): void => {
      socket.destroy()
      reject(e)
    }
    socket.once("error", onError)
    socket.once("connect", () => {
      if (proxyPort === null) {
        socket.off("error", onError)
        return resolve({ socket, early: Buffer.alloc(0) })
      }
      socksConnect(socket, originPort).then(
        (early) => {
          socket.off("error", onError)
          resolve({ socket, early })
        },
        (e: Error) => onError(e)
      )
    })
  })

/** GET `route` from MITM's report port; fails unless 200. */
export const getRoute = (port: number, route: string): Promise<{ ms: number; firstByteMs: number; body: Buffer }> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const req = http.get({ host: HOST, port, path: route, agent: false, headers: { host: `${HOST}:${port}` } }, (res) => {
      const chunks: Array<Buffer> = []
      let firstByteMs = -1
      res.on("data", (c: Buffer) => {
        if (firstByteMs < 0) firstByteMs = performance.now() - t0
        chunks.push(c)
      })
      res.on("end", () => {
        const ms = performance.now() - t0
        const body = Buffer.concat(chunks)
        if (res.statusCode !== 200) return reject(new Error(`GET ${route}: status ${res.statusCode}: ${body.subarray(0, 200).toString()}`))
        resolve({ ms, firstByteMs: Math.max(firstByteMs, 0), body })
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    req.setTimeout(120_000, () => req.destroy(new Error(`GET ${route}: no answer within 120 s`)))
  })

// ---------------------------------------------------------------------------------------------
// a minimal keep-alive HTTP/1.1 client (Content-Length responses only, as bench/origin.ts sends)

/**
 * Sends requests on one socket, one at a time, and resolves each with its body length once the
 * whole response has arrived. Fails on anything but a 200 with Content-Length.
 */
export const httpClient = (socket: net.Socket, early: Buffer, hostHeader: string) => {
  let buf: Buffer<ArrayBufferLike> = early
  let pending: { resolve: (n: number) => void; reject: (e: Error) => void } | null = null
  let bodyLeft = -1 // -1: reading the head
  let bodyLength = 0
  let failure: Error | null = null
  const failWith = (e: Error): void => {
    failure ??= e
    if (pending) {
      const p = pending
      pending = null
      p.reject(failure)
    }
  }
  const parse = (): void => {
    for (;;) {
      if (pending === null) return
      if (bodyLeft < 0) {
        const end = buf.indexOf("\r\n\r\n")
        if (end < 0) {
          if (buf.length > 64 * 1024) failWith(new Error("response head larger than 64 KiB"))
          return
        }
        const text = buf.subarray(0, end).toString("latin1")
        buf = buf.subarray(end + 4)
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)
        if (status === null || status[1] !== "200") return failWith(new Error(`bad status line: ${text.split("\r\n")[0]}`))
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text)
        if (cl === null) return failWith(new Error("response without Content-Length"))
        bodyLength = bodyLeft = Number(cl[1])
      }
      const take = Math.min(bodyLeft, buf.length)
      bodyLeft -= take
      buf = buf.subarray(take)
      if (bodyLeft > 0) return
      bodyLeft = -1
      const p = pending
      pending = null
      p.resolve(bodyLength)
      return
    }
  }
  socket.on("data", (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    parse()
  })
  socket.on("end", () => failWith(new Error("connection closed by the peer")))
  socket.on("close", () => failWith(new Error("connection closed")))
  socket.on("error", (e) => failWith(e))
  socket.resume()
  return {
    /** GET `target`; resolves with the body length. */
    get: (target: string): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        if (failure) return reject(failure)
        pending = { resolve, reject }
        socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostHeader}\r\nAccept: */*\r\n\r\n`)
        parse()
      }),
    close: (): void => {
      failure ??= new Error("closed by the client")
      socket.destroy()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// statistics and output

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** The p-th percentile (0..100) of sorted values, nearest rank. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]

export const round = (x: number | null | undefined, digits = 1): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits))

export const ratio = (a: number | null | undefined, b: number | null | undefined, digits = 3): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : round(a / b, digits)

/** A fixed-width table: the first column left-aligned, the rest right-aligned. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number | null>>): string => {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? "—" : String(c))))]
  // The last column is not padded, so a long note there does not widen the table.
  const widths = header.map((_, i) => (i === header.length - 1 ? 0 : Math.max(...cells.map((r) => (r[i] ?? "").length))))
  return cells
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd())
    .join("\n")
}

export const machine = () => ({ node: process.version, cpus: os.cpus().length, seconds: round(elapsed()) })

/** Runs `main` when this module is the entry point (`npx tsx bench/x.ts`): exit 0, or 1 with the reason. */
export const runMain = (importMetaUrl: string, main: () => Promise<void>): void => {
  const entry = process.argv[1] === undefined ? "" : pathToFileURL(path.resolve(process.argv[1])).href
  if (entry !== importMetaUrl) return
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`bench: FAILED: ${e instanceof Error ? e.message : String(e)}\n`)
      killAll("SIGKILL")
      process.exit(1)
    }
  )
}
