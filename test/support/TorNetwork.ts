/**
 * A private Tor network on loopback for end-to-end tests: 3 directory
 * authorities (also relays), 2 exit relays that exit to 127.0.0.0/8 only, and
 * 1 client whose SOCKSPort is the upstream for MITM. The torrc templates are
 * in tor/. Nothing contacts the public Tor network: the network has its own
 * DirAuthority lines, every socket is bound to 127.0.0.1, and every tor exits
 * with the test process (__OwningControllerProcess).
 *
 * The network lives in a temp dir under os.tmpdir(); the scope's finalizer
 * kills every tor (its process group) and deletes the dir.
 */
import { Effect, type Scope } from "effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export interface TorNetwork {
  /** The client's SOCKS5 port on 127.0.0.1. */
  readonly socksPort: number
  readonly dataDir: string
  /**
   * From the start (key generation included, ~2-3 s) to the client's
   * "Bootstrapped 100%" with every relay in its consensus.
   */
  readonly bootstrapSeconds: number
}

const templates = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../tor")
const bootstrapTimeoutMs = 90_000

const findBinary = (name: string): string | undefined => {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/bin"]
  for (const dir of dirs) {
    if (dir === "") continue
    const candidate = path.join(dir, name)
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // not here
    }
  }
  return undefined
}

const torBinary = findBinary("tor")
const gencertBinary = findBinary("tor-gencert")

/** Whether the tor and tor-gencert binaries are installed (Debian's `tor` package has both). */
export const torAvailable: boolean = torBinary !== undefined && gencertBinary !== undefined

const fill = (template: string, values: Record<string, string | number>): string =>
  template.replace(/\$\{(\w+)\}/g, (whole, key: string) => (key in values ? String(values[key]) : whole))

const readTemplate = (name: string) => fs.readFileSync(path.join(templates, name), "utf8")

/** `count` distinct free ports on 127.0.0.1: all bound to port 0 at once, then closed. */
const freePorts = (count: number): Effect.Effect<ReadonlyArray<number>, Error> =>
  Effect.tryPromise({
    try: async () => {
      const servers = await Promise.all(
        Array.from({ length: count }, () =>
          new Promise<net.Server>((resolve, reject) => {
            const server = net.createServer()
            server.once("error", reject)
            server.listen(0, "127.0.0.1", () => resolve(server))
          }))
      )
      const ports = servers.map((server) => (server.address() as net.AddressInfo).port)
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
      return ports
    },
    catch: (error) => new Error(`no free ports: ${String(error)}`)
  })

const run = (file: string, args: ReadonlyArray<string>, options: { cwd?: string; input?: string } = {}) =>
  Effect.async<string, Error>((resume) => {
    const child = childProcess.execFile(file, [...args], { cwd: options.cwd, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) resume(Effect.fail(new Error(`${path.basename(file)} ${args.join(" ")} failed: ${error.message}\n${stdout}${stderr}`)))
      else resume(Effect.succeed(stdout))
    })
    child.stdin?.end(options.input ?? "")
  })

interface Node {
  readonly nick: string
  readonly dir: string
  readonly torrc: string
}

interface Running {
  readonly node: Node
  readonly child: childProcess.ChildProcess
  exited: boolean
}

const logTail = (node: Node, lines = 15): string => {
  const read = (file: string) => {
    try {
      return fs.readFileSync(path.join(node.dir, file), "utf8").trimEnd().split("\n").slice(-lines).join("\n")
    } catch {
      return ""
    }
  }
  return `--- ${node.nick} ---\n${read("notice.log") || read("stdout.log")}`
}

const makeNodeDir = (root: string, nick: string): string => {
  const dir = path.join(root, nick)
  fs.mkdirSync(dir, { mode: 0o700 })
  fs.writeFileSync(path.join(dir, "empty"), "")
  // A resolver that can only be on loopback (and is not there): an exit never asks the LAN's DNS.
  fs.writeFileSync(path.join(dir, "resolv.conf"), "nameserver 127.0.0.1\n")
  return dir
}

/** Reads the relay identity fingerprint, creating the relay keys if needed. */
const relayFingerprint = (dir: string) =>
  Effect.gen(function*() {
    const empty = path.join(dir, "empty")
    yield* run(torBinary!, [
      "--list-fingerprint",
      "-f", empty,
      "--defaults-torrc", empty,
      "--DataDirectory", dir,
      "--ORPort", "1",
      "--Log", "err stderr"
    ])
    const line = fs.readFileSync(path.join(dir, "fingerprint"), "utf8").trim()
    return line.split(/\s+/)[1]
  })

/** Creates the authority's v3 keys with tor-gencert and returns the v3 identity fingerprint. */
const authorityKeys = (dir: string, dirPort: number) =>
  Effect.gen(function*() {
    const keys = path.join(dir, "keys")
    fs.mkdirSync(keys, { mode: 0o700, recursive: true })
    yield* run(gencertBinary!, [
      "--create-identity-key",
      "-m", "12",
      "-a", `127.0.0.1:${dirPort}`,
      "-i", "authority_identity_key",
      "-s", "authority_signing_key",
      "-c", "authority_certificate",
      "--passphrase-fd", "0"
    ], { cwd: keys, input: "mitm-test-network\n" })
    const certificate = fs.readFileSync(path.join(keys, "authority_certificate"), "utf8")
    const match = /^fingerprint ([0-9A-F]{40})$/m.exec(certificate)
    if (match === null) return yield* Effect.fail(new Error("tor-gencert wrote no fingerprint line"))
    return match[1]
  })

const sleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

const stopAll = (running: ReadonlyArray<Running>) =>
  Effect.promise(async () => {
    const signal = (entry: Running, name: NodeJS.Signals) => {
      if (entry.exited || entry.child.pid === undefined) return
      try {
        process.kill(-entry.child.pid, name)
      } catch {
        // already gone
      }
    }
    running.forEach((entry) => signal(entry, "SIGTERM"))
    const deadline = Date.now() + 5_000
    while (running.some((entry) => !entry.exited) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    running.forEach((entry) => signal(entry, "SIGKILL"))
  })

export const torNetwork: Effect.Effect<TorNetwork, Error, Scope.Scope> = Effect.gen(function*() {
  if (!torAvailable) return yield* Effect.fail(new Error("tor and tor-gencert are not installed (Debian: apt-get install tor)"))
  const started = Date.now()
  const root = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "mitm-tor-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  fs.chmodSync(root, 0o700)
  const [socksPort, ...ports] = yield* freePorts(1 + 3 * 2 + 2)

  const authorities = yield* Effect.forEach([0, 1, 2], (i) =>
    Effect.gen(function*() {
      const nick = `auth${i}`
      const dir = makeNodeDir(root, nick)
      const orport = ports[2 * i]
      const dirport = ports[2 * i + 1]
      const v3ident = yield* authorityKeys(dir, dirport)
      const fingerprint = yield* relayFingerprint(dir)
      return { nick, dir, orport, dirport, v3ident, fingerprint }
    }), { concurrency: "unbounded" })
  const dirAuthorities = authorities.map((a) =>
    `DirAuthority ${a.nick} orport=${a.orport} no-v2 v3ident=${a.v3ident} 127.0.0.1:${a.dirport} ${a.fingerprint}`
  ).join("\n")

  const common = readTemplate("common.torrc")
  const node = (nick: string, role: string, values: Record<string, number>): Node => {
    const dir = path.join(root, nick)
    if (!fs.existsSync(dir)) makeNodeDir(root, nick)
    const torrc = path.join(dir, "torrc")
    const filled = fill(common, { dir, nick, owner: process.pid, authorities: dirAuthorities }) + "\n" +
      fill(readTemplate(`${role}.torrc`), { dir, nick, ...values })
    fs.writeFileSync(torrc, filled)
    return { nick, dir, torrc }
  }
  const nodes: Array<Node> = [
    ...authorities.map((a) => node(a.nick, "authority", { orport: a.orport, dirport: a.dirport })),
    node("exit0", "exit", { orport: ports[6] }),
    node("exit1", "exit", { orport: ports[7] })
  ]
  const client = node("client", "client", { socksport: socksPort })
  nodes.push(client)

  const running = yield* Effect.acquireRelease(
    Effect.sync(() =>
      nodes.map((n): Running => {
        const out = fs.openSync(path.join(n.dir, "stdout.log"), "a")
        const child = childProcess.spawn(torBinary!, ["-f", n.torrc, "--defaults-torrc", path.join(n.dir, "empty")], {
          detached: true, // its own process group, killed as a group
          stdio: ["ignore", out, out]
        })
        fs.closeSync(out)
        const entry: Running = { node: n, child, exited: false }
        child.on("exit", () => {
          entry.exited = true
        })
        child.on("error", () => {
          entry.exited = true
        })
        return entry
      })
    ),
    stopAll
  )

  // Ready: the client says "Bootstrapped 100%", its newest consensus lists
  // every relay as Running and Valid and both exits as Exit, and its last word
  // on exits is that the consensus has some (a fast-voting network sometimes
  // publishes a consensus that drops relays for a round).
  const relays = nodes.filter((n) => n !== client).map((n) => n.nick)
  const ready = () => {
    let log = ""
    let consensus = ""
    try {
      log = fs.readFileSync(path.join(client.dir, "notice.log"), "utf8")
      consensus = fs.readFileSync(path.join(client.dir, "cached-consensus"), "utf8")
    } catch {
      return false
    }
    const flags = new Map<string, ReadonlyArray<string>>()
    let nick = ""
    for (const line of consensus.split("\n")) {
      if (line.startsWith("r ")) nick = line.split(" ")[1]
      else if (line.startsWith("s ") && nick !== "") flags.set(nick, line.split(" ").slice(1))
    }
    const listed = relays.every((r) => flags.get(r)?.includes("Running") && flags.get(r)?.includes("Valid"))
    const exits = ["exit0", "exit1"].every((r) => flags.get(r)?.includes("Exit"))
    const lastExitWord = log.lastIndexOf("consensus contains exit nodes") > log.lastIndexOf("consensus has no exit nodes")
    return log.includes("Bootstrapped 100%") && listed && exits && lastExitWord
  }
  while (!ready()) {
    const dead = running.find((entry) => entry.exited)
    if (dead !== undefined) {
      return yield* Effect.fail(new Error(`tor ${dead.node.nick} exited during bootstrap\n${logTail(dead.node)}`))
    }
    if (Date.now() - started > bootstrapTimeoutMs) {
      return yield* Effect.fail(
        new Error(`the private Tor network did not bootstrap in ${bootstrapTimeoutMs / 1000} s\n${nodes.map((n) => logTail(n, 8)).join("\n")}`)
      )
    }
    yield* sleep(250)
  }
  return { socksPort, dataDir: root, bootstrapSeconds: (Date.now() - started) / 1000 }
})
