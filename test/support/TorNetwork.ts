/**
 * A private Tor network on loopback for end-to-end tests: 3 directory
 * authorities (also relays), 2 exit relays that exit to 127.0.0.0/8 only, and
 * 1 client whose SOCKSPort is the upstream for MITM and whose ControlPort
 * (on loopback) MITM reads circuits from: cookie authentication by default
 * (`CookieAuthentication 1`, the cookie in the client's data dir), or
 * `HashedControlPassword` (`control: { _tag: "Password", password }`). More
 * clients on the same network (`extraClients`, e.g. one with a password while
 * the first uses the cookie) start and bootstrap with it, in parallel.
 * The torrc templates are in tor/. Nothing contacts the public Tor network:
 * the network has its own DirAuthority lines, every socket is bound to
 * 127.0.0.1, and every tor exits with the test process
 * (__OwningControllerProcess).
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

/** How a client's control port lets a controller in. */
export type ControlAuth =
  /** `CookieAuthentication 1`: Tor offers COOKIE and SAFECOOKIE, the cookie file is in the client's data dir. */
  | { readonly _tag: "Cookie" }
  /** `HashedControlPassword` (the hash from `tor --hash-password`); no cookie. */
  | { readonly _tag: "Password"; readonly password: string }

export interface TorClient {
  readonly nick: string
  /** SOCKS5 on 127.0.0.1. */
  readonly socksPort: number
  /** The control port on 127.0.0.1. */
  readonly controlPort: number
  readonly auth: ControlAuth
  /** Where Tor writes the cookie (CookieAuthentication 1); null with a password. */
  readonly cookieFile: string | null
  readonly dataDir: string
}

/** A relay of the network, as its `fingerprint` file names it. */
export interface TorRelay {
  readonly nickname: string
  /** 40 upper-case hex characters. */
  readonly fingerprint: string
  readonly role: "authority" | "exit"
}

export interface TorNetworkOptions {
  /** How the first client's control port authenticates; default the cookie. */
  readonly control?: ControlAuth
  /** More clients on the same network, started and bootstrapped with it. */
  readonly extraClients?: ReadonlyArray<ControlAuth>
}

export interface TorNetwork {
  /** The client's SOCKS5 port on 127.0.0.1. */
  readonly socksPort: number
  /** The client's control port on 127.0.0.1. */
  readonly controlPort: number
  /** The first client (the one `socksPort` and `controlPort` are of). */
  readonly client: TorClient
  /** The `extraClients`, in the order asked for. */
  readonly extraClients: ReadonlyArray<TorClient>
  /** The 3 authorities and 2 exits. */
  readonly relays: ReadonlyArray<TorRelay>
  /** What `tor --version` says (`0.4.9.11`). */
  readonly torVersion: string
  readonly dataDir: string
  /**
   * From the start (key generation included, ~2-3 s) to the client's
   * "Bootstrapped 100%" with every relay in its consensus (every client's).
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

/** The `16:…` hash that `HashedControlPassword` takes, from `tor --hash-password`. */
const hashPassword = (password: string) =>
  Effect.flatMap(run(torBinary!, ["--hash-password", password, "--quiet"]), (stdout) => {
    const match = /^16:[0-9A-F]+$/m.exec(stdout)
    return match === null
      ? Effect.fail(new Error("tor --hash-password printed no 16:… hash"))
      : Effect.succeed(match[0])
  })

/** The torrc lines that open a client's control port on loopback with `auth`. */
const controlLines = (auth: ControlAuth, port: number, dir: string) =>
  Effect.gen(function*() {
    const lines = [`ControlPort 127.0.0.1:${port}`]
    if (auth._tag === "Cookie") {
      lines.push("CookieAuthentication 1", `CookieAuthFile ${path.join(dir, "control_auth_cookie")}`)
    } else {
      lines.push("CookieAuthentication 0", `HashedControlPassword ${yield* hashPassword(auth.password)}`)
    }
    return lines.join("\n")
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

/** A private network with the clients `options` asks for; the scope stops it and deletes its files. */
export const torNetworkWith = (options: TorNetworkOptions = {}): Effect.Effect<TorNetwork, Error, Scope.Scope> => Effect.gen(function*() {
  if (!torAvailable) return yield* Effect.fail(new Error("tor and tor-gencert are not installed (Debian: apt-get install tor)"))
  const started = Date.now()
  const root = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "mitm-tor-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  fs.chmodSync(root, 0o700)
  const clientAuths: ReadonlyArray<ControlAuth> = [options.control ?? { _tag: "Cookie" }, ...(options.extraClients ?? [])]
  const allPorts = yield* freePorts(3 * 2 + 2 + 2 * clientAuths.length)
  const ports = allPorts.slice(0, 8)
  const clientPorts = allPorts.slice(8)

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
  /** `control`: the lines that replace common.torrc's `ControlPort 0` (a client's control port). */
  const node = (nick: string, role: string, values: Record<string, number>, control?: string): Node => {
    const dir = path.join(root, nick)
    if (!fs.existsSync(dir)) makeNodeDir(root, nick)
    const torrc = path.join(dir, "torrc")
    let shared = fill(common, { dir, nick, owner: process.pid, authorities: dirAuthorities })
    if (control !== undefined) {
      if (!/^ControlPort 0$/m.test(shared)) throw new Error("tor/common.torrc has no `ControlPort 0` line to replace")
      shared = shared.replace(/^ControlPort 0$/m, control)
    }
    const filled = shared + "\n" +
      fill(readTemplate(`${role}.torrc`), { dir, nick, ...values })
    fs.writeFileSync(torrc, filled)
    return { nick, dir, torrc }
  }
  const nodes: Array<Node> = [
    ...authorities.map((a) => node(a.nick, "authority", { orport: a.orport, dirport: a.dirport })),
    node("exit0", "exit", { orport: ports[6] }),
    node("exit1", "exit", { orport: ports[7] })
  ]
  const relayNodes = [...nodes]
  const clients = yield* Effect.forEach(clientAuths, (auth, i) =>
    Effect.gen(function*() {
      const nick = i === 0 ? "client" : `client${i}`
      const dir = path.join(root, nick)
      const socksPort = clientPorts[2 * i]
      const controlPort = clientPorts[2 * i + 1]
      const control = yield* controlLines(auth, controlPort, dir)
      const client: TorClient = {
        nick,
        socksPort,
        controlPort,
        auth,
        cookieFile: auth._tag === "Cookie" ? path.join(dir, "control_auth_cookie") : null,
        dataDir: dir
      }
      return { client, node: node(nick, "client", { socksport: socksPort }, control) }
    }))
  nodes.push(...clients.map((c) => c.node))

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

  // Ready: every client says "Bootstrapped 100%", its newest consensus lists
  // every relay as Running and Valid and both exits as Exit, and its last word
  // on exits is that the consensus has some (a fast-voting network sometimes
  // publishes a consensus that drops relays for a round).
  const relays = relayNodes.map((n) => n.nick)
  const clientReady = (client: Node) => {
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
  const ready = () => clients.every((c) => clientReady(c.node))
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
  const bootstrapSeconds = (Date.now() - started) / 1000
  const relayInfo = relayNodes.map((n): TorRelay => {
    const [nickname, fingerprint] = fs.readFileSync(path.join(n.dir, "fingerprint"), "utf8").trim().split(/\s+/)
    return { nickname, fingerprint, role: n.nick.startsWith("exit") ? "exit" : "authority" }
  })
  const versionText = yield* run(torBinary!, ["--version"])
  const torVersion = /Tor version (\d+(?:\.\d+)+)/.exec(versionText)?.[1] ?? versionText.trim()
  const [first, ...extra] = clients.map((c) => c.client)
  return {
    socksPort: first.socksPort,
    controlPort: first.controlPort,
    client: first,
    extraClients: extra,
    relays: relayInfo,
    torVersion,
    dataDir: root,
    bootstrapSeconds
  }
})

/** The network with one client whose control port takes the cookie. */
export const torNetwork: Effect.Effect<TorNetwork, Error, Scope.Scope> = torNetworkWith()
