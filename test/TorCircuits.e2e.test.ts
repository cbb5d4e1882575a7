/**
 * SPEC §7 end to end: MITM reads Tor's control port while it relays through
 * Tor. One private Tor network on loopback (test/support/TorNetwork.ts) serves
 * every test of this file: its first client's control port takes the cookie
 * (CookieAuthentication 1), a second client's takes a password
 * (HashedControlPassword). Each test starts its own MITM with
 * `upstream: socks5://127.0.0.1:<client's SOCKS port>` and the client's
 * control port, and reads what MITM made of Tor's events through the JSON API
 * (`tor` of /api/connections, /api/circuits, /api/tor). Tor is asynchronous:
 * every wait is bounded. Nothing leaves 127.0.0.0/8.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as UpstreamFromSettings from "../src/layers/UpstreamFromSettings.js"
import { type Address, eventually, httpOrigin, startMitm } from "./support/Loopback.js"
import { otlpReceiver } from "./support/OtlpReceiver.js"
import { connectRaw, socks5Connect, socks5Greeting, userPass } from "./support/SocksClient.js"
import { type TorClient, type TorNetwork, torAvailable, torNetworkWith } from "./support/TorNetwork.js"

// ---------------------------------------------------------------------------
// The JSON API, as these tests read it

interface ApiRelay {
  readonly fingerprint: string | null
  readonly nickname: string | null
}

interface ApiTor {
  readonly stream: string
  readonly circuit: string | null
  readonly path: ReadonlyArray<ApiRelay>
  readonly circuitBuildTime: number | null
}

interface ApiEvent {
  readonly time: number
  readonly type: string
  readonly detail: string
  readonly [field: string]: unknown
}

interface ApiConnection {
  readonly id: number
  readonly host: string
  readonly port: number
  readonly state: string
  readonly openedAt: number
  readonly isolation: string | null
  readonly events: ReadonlyArray<ApiEvent>
  readonly tor: ApiTor | null
}

interface ApiCircuit {
  readonly id: string
  readonly purpose: string | null
  readonly state: "launched" | "built" | "failed" | "closed"
  readonly path: ReadonlyArray<ApiRelay>
  readonly launchedAt: number | null
  readonly builtAt: number | null
  readonly buildTime: number | null
  readonly closedAt: number | null
  readonly reason: string | null
  readonly connections: ReadonlyArray<number>
  readonly rttMs: number | null
  readonly conflux: ReadonlyArray<string>
}

interface ApiTorStatus {
  readonly control: "connected" | "off" | "unreachable" | "auth-failed"
  readonly address: string | null
  readonly version: string | null
  readonly error: string | null
}

/** GET on the report port; the body as text. */
const getText = (port: number, path: string) =>
  Effect.async<string, Error>((resume) => {
    http.get({ host: "127.0.0.1", port, path, headers: { host: `127.0.0.1:${port}` } }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        response.statusCode === 200
          ? resume(Effect.succeed(Buffer.concat(chunks).toString()))
          : resume(Effect.fail(new Error(`GET ${path}: ${response.statusCode}`))))
    }).on("error", (error) => resume(Effect.fail(error)))
  })

const getJson = <A>(port: number, path: string) => Effect.map(getText(port, path), (body) => JSON.parse(body) as A)

// ---------------------------------------------------------------------------
// The shared network

/**
 * The origin's address. Every relay is on 127.0.0.1 too, so a circuit Tor builds for a
 * stream there ends at an "exit enclave": Tor picks an exit on the destination's own address
 * and, as for any exit chosen in advance, adds a hop (4 relays). A stream to another
 * loopback address (127.0.0.2) finds no exit at all: the client never attaches it.
 */
const originHost = "127.0.0.1"

class PrivateTor extends Context.Tag("test/PrivateTor")<PrivateTor, {
  readonly network: TorNetwork
  /** The client whose control port takes the cookie. */
  readonly cookieClient: TorClient
  /** The client whose control port takes `password`. */
  readonly passwordClient: TorClient
  readonly password: string
  /** An HTTP origin on 127.0.0.1 that answers `origin saw <path>`. */
  readonly origin: Address
}>() {}

/** A SOCKS5 CONNECT straight to a Tor client; succeeds when Tor carried it (reply 0x00). */
const torCarries = (socksPort: number, origin: Address) =>
  Effect.gen(function*() {
    const connection = yield* connectRaw(socksPort)
    yield* connection.write(Buffer.concat([socks5Greeting(), socks5Connect(originHost, origin.port)]))
    const reply = yield* connection.read(4).pipe(Effect.timeout("10 seconds"))
    if (reply[1] !== 0x00) return yield* Effect.fail(new Error(`Tor answered 0x${(reply[1] ?? 0xff).toString(16)}`))
  }).pipe(Effect.scoped)

const PrivateTorLive = Layer.scoped(
  PrivateTor,
  Effect.gen(function*() {
    const password = `mitm-test-${crypto.randomBytes(8).toString("hex")}`
    const network = yield* torNetworkWith({
      control: { _tag: "Cookie" },
      extraClients: [{ _tag: "Password", password }]
    })
    const [passwordClient] = network.extraClients
    console.log(
      `private Tor network bootstrapped in ${network.bootstrapSeconds.toFixed(1)} s ` +
        `(cookie client: SOCKS ${network.client.socksPort}, control ${network.client.controlPort}; ` +
        `password client: SOCKS ${passwordClient.socksPort}, control ${passwordClient.controlPort})`
    )
    const origin = yield* httpOrigin((request, response) => response.end(`origin saw ${request.url}`), originHost)
    // A freshly bootstrapped network can still refuse a first stream (0x01) while the exits
    // learn about each other; wait (bounded) until each client carries one.
    const started = Date.now()
    yield* Effect.forEach([network.client, passwordClient], (client) =>
      torCarries(client.socksPort, origin).pipe(
        Effect.retry(Schedule.spaced("500 millis").pipe(Schedule.upTo("60 seconds")))
      ), { concurrency: "unbounded", discard: true })
    console.log(`both clients carried a first stream after ${((Date.now() - started) / 1000).toFixed(1)} s more`)
    return { network, cookieClient: network.client, passwordClient, password, origin }
  })
)

// ---------------------------------------------------------------------------
// MITM through the network

interface Credentials {
  readonly username: string
  readonly password: string
}

/** A MITM whose upstream is `client`'s SOCKS port and that reads `client`'s control port. */
const mitmThrough = (client: TorClient, controlPassword?: string) =>
  startMitm(
    { upstream: { _tag: "Socks5", host: "127.0.0.1", port: client.socksPort } },
    UpstreamFromSettings.layer,
    undefined,
    { address: { host: "127.0.0.1", port: client.controlPort }, password: controlPassword }
  )

type RunningMitm = Effect.Effect.Success<ReturnType<typeof mitmThrough>>

const torStatus = (mitm: RunningMitm) => getJson<ApiTorStatus>(mitm.report.port, "/api/tor")
const apiConnections = (mitm: RunningMitm) => getJson<ReadonlyArray<ApiConnection>>(mitm.report.port, "/api/connections")
const apiCircuits = (mitm: RunningMitm) => getJson<ReadonlyArray<ApiCircuit>>(mitm.report.port, "/api/circuits")

/** Waits (bounded) until MITM's control connection is in `control`. */
const statusBecomes = (mitm: RunningMitm, control: ApiTorStatus["control"]) =>
  eventually(Effect.map(Effect.orDie(torStatus(mitm)), (status) => (status.control === control ? status : undefined))).pipe(
    Effect.catchAll(() =>
      Effect.flatMap(torStatus(mitm), (status) =>
        Effect.fail(new Error(`/api/tor never said ${control}; it says ${JSON.stringify(status)}`))))
  )

/**
 * A GET of `path` from the origin through MITM (SOCKS5, with `credentials` as
 * username/password when given); checks the origin's answer.
 */
const get = (mitm: RunningMitm, origin: Address, path: string, credentials?: Credentials) =>
  Effect.gen(function*() {
    const connection = yield* connectRaw(mitm.proxy.port)
    if (credentials === undefined) {
      yield* connection.write(socks5Greeting())
      expect([...(yield* connection.read(2))]).toEqual([0x05, 0x00])
    } else {
      yield* connection.write(socks5Greeting([0x02]))
      expect([...(yield* connection.read(2))]).toEqual([0x05, 0x02])
      yield* connection.write(userPass(Buffer.from(credentials.username), Buffer.from(credentials.password)))
      expect([...(yield* connection.read(2))]).toEqual([0x01, 0x00])
    }
    yield* connection.write(socks5Connect(originHost, origin.port))
    const reply = yield* connection.read(10)
    expect(reply[1], `SOCKS reply to the CONNECT for ${path}`).toBe(0x00)
    yield* connection.write(`GET ${path} HTTP/1.1\r\nHost: ${originHost}:${origin.port}\r\nConnection: close\r\n\r\n`)
    const response = (yield* connection.readToEnd).toString("latin1")
    expect(response).toMatch(/^HTTP\/1\.1 200 OK/)
    expect(response.endsWith(`origin saw ${path}`)).toBe(true)
  }).pipe(Effect.scoped)

const requested = (connection: ApiConnection, path: string) =>
  connection.events.some((e) => e.type === "HttpRequestStart" && e.detail === `GET ${path} HTTP/1.1`)

/**
 * The connection that carried `path`, once it closed and (with `attributed`)
 * MITM knows its Tor stream and circuit.
 */
const recorded = (mitm: RunningMitm, path: string, attributed = true) =>
  eventually(Effect.map(Effect.orDie(apiConnections(mitm)), (all) =>
    all.find((c) => requested(c, path) && c.state !== "open" && (!attributed || (c.tor !== null && c.tor.circuit !== null)))
  )).pipe(
    Effect.catchAll(() =>
      Effect.flatMap(apiConnections(mitm), (all) =>
        Effect.fail(
          new Error(
            `no closed connection for ${path} with a Tor circuit: ${JSON.stringify(all.find((c) => requested(c, path)) ?? null)}`
          )
        )))
  )

const uniquePath = (label: string) => `/${label}-${crypto.randomBytes(4).toString("hex")}`

/** What every attributed connection through the network must show (SPEC §7). */
const expectAttributed = (network: TorNetwork, connection: ApiConnection, circuits: ReadonlyArray<ApiCircuit>) => {
  const tor = connection.tor!
  expect(tor.stream).toMatch(/^\d+$/)
  expect(tor.circuit).toMatch(/^\d+$/)
  // /api/circuits lists the circuit, with the same path and this connection
  const circuit = circuits.find((c) => c.id === tor.circuit)
  expect(circuit, `circuit ${tor.circuit} in /api/circuits`).toBeDefined()
  expect(circuit!.path).toEqual(tor.path)
  expect(circuit!.connections).toContain(connection.id)
  expect(circuit!.buildTime).toBe(tor.circuitBuildTime)

  // guard, middle, exit: distinct relays of this network, the last an exit; a circuit Tor
  // built to an exit enclave (see originHost) has one hop more
  const hops = `${tor.path.map((r) => r.nickname).join(" → ")} (${circuit!.purpose})`
  expect(tor.path.length === 3 || (tor.path.length === 4 && circuit!.purpose === "GENERAL"), hops).toBe(true)
  const byFingerprint = new Map(network.relays.map((r) => [r.fingerprint, r]))
  for (const relay of tor.path) {
    expect(relay.fingerprint).toMatch(/^[0-9A-F]{40}$/)
    expect(byFingerprint.has(relay.fingerprint!), `${relay.fingerprint} is a relay of the network`).toBe(true)
    expect(relay.nickname).toBe(byFingerprint.get(relay.fingerprint!)!.nickname)
  }
  expect(new Set(tor.path.map((r) => r.fingerprint)).size, hops).toBe(tor.path.length)
  expect(byFingerprint.get(tor.path[tor.path.length - 1].fingerprint!)!.role, hops).toBe("exit")

  // TorStreamAttached: the stream, on the circuit the `tor` field names (the last one Tor attached it to)
  const attached = connection.events.filter((e) => e.type === "TorStreamAttached")
  expect(attached.length, `TorStreamAttached among ${connection.events.map((e) => e.type).join(", ")}`).toBeGreaterThanOrEqual(1)
  const last = attached[attached.length - 1]
  expect(last).toMatchObject({ stream: tor.stream, circuit: tor.circuit, path: tor.path.map((r) => r.nickname) })
  expect(last.detail).toBe(`circuit ${tor.circuit}: ${tor.path.map((r) => r.nickname).join(" → ")}`)
  expect(last.time).toBeGreaterThanOrEqual(connection.openedAt)
  expect(connection.events.filter((e) => e.type === "TorStreamFailed")).toEqual([])
}

interface TorView {
  readonly id: string
  readonly status: string
  readonly path: ReadonlyArray<string>
  readonly purpose: string | null
}

/** Tor's own `GETINFO circuit-status`, on a control connection of the test's own (cookie; reads only). */
const torCircuitStatus = (client: TorClient) =>
  Effect.gen(function*() {
    const cookie = fs.readFileSync(client.cookieFile!).toString("hex")
    const control = yield* connectRaw(client.controlPort)
    yield* control.write(`AUTHENTICATE ${cookie}\r\nGETINFO circuit-status\r\nQUIT\r\n`)
    const lines = (yield* control.readToEnd.pipe(Effect.timeout("5 seconds"))).toString("latin1").split("\r\n")
    const start = lines.findIndex((line) => /^250[+-]circuit-status=/.test(line))
    if (start < 0) return yield* Effect.fail(new Error(`no circuit-status from Tor: ${lines.join(" | ")}`))
    const first = lines[start].slice("250+circuit-status=".length)
    const entries = lines[start].startsWith("250+")
      ? lines.slice(start + 1, lines.indexOf(".", start))
      : first === "" ? [] : [first]
    return entries.map((entry): TorView => {
      const [id, status, third] = entry.split(" ")
      return {
        id,
        status,
        path: third?.startsWith("$") ? third.split(",").map((hop) => hop.slice(1, 41)) : [],
        purpose: /(?:^| )PURPOSE=(\S+)/.exec(entry)?.[1] ?? null
      }
    })
  }).pipe(Effect.scoped)

/** What MITM says of Tor's built circuits and what Tor says of MITM's open ones, where they differ. */
const disagreements = (tor: ReadonlyArray<TorView>, mitm: ReadonlyArray<ApiCircuit>): ReadonlyArray<string> => {
  const byId = new Map(mitm.map((c) => [c.id, c]))
  const listed = new Map(tor.map((c) => [c.id, c]))
  const out: Array<string> = []
  for (const circuit of tor.filter((c) => c.status === "BUILT")) {
    const seen = byId.get(circuit.id)
    const said = seen === undefined
      ? "nothing"
      : `${seen.state} ${seen.purpose} ${seen.path.map((r) => r.nickname).join(",")}`
    if (
      seen === undefined || seen.state !== "built" || seen.purpose !== circuit.purpose ||
      seen.path.map((r) => r.fingerprint).join(",") !== circuit.path.join(",")
    ) out.push(`Tor: circuit ${circuit.id} BUILT ${circuit.purpose} ${circuit.path.length} hops; MITM: ${said}`)
  }
  for (const circuit of mitm.filter((c) => c.state === "built" || c.state === "launched")) {
    const there = listed.get(circuit.id)
    if (there === undefined || there.status === "CLOSED" || there.status === "FAILED") {
      out.push(`MITM: circuit ${circuit.id} ${circuit.state}; Tor: ${there?.status ?? "not listed (closed)"}`)
    }
  }
  return out
}

/** A circuit and the other legs of its conflux set: streams of one isolation group may be reported on any leg. */
const circuitGroup = (circuits: ReadonlyArray<ApiCircuit>, id: string): ReadonlySet<string> =>
  new Set([id, ...(circuits.find((c) => c.id === id)?.conflux ?? [])])

// ---------------------------------------------------------------------------

describe("MITM reads circuits from a private Tor network's control port (SPEC §7)", () => {
  // Never skipped: without Tor this end-to-end check fails and says why (SPEC §11).
  if (!torAvailable) {
    it("needs the tor and tor-gencert binaries", () => {
      throw new Error("tor and tor-gencert are not installed: apt-get install -y tor (npm test installs it when run as root)")
    })
    return
  }

  layer(PrivateTorLive, { excludeTestServices: true, timeout: "180 seconds" })((it) => {
    it.scoped("/api/tor says connected, with the control port's address and Tor's version; the cookie is never shown", () =>
      Effect.gen(function*() {
        const { cookieClient, network } = yield* PrivateTor
        const mitm = yield* mitmThrough(cookieClient)
        const status = yield* statusBecomes(mitm, "connected")
        expect(status).toEqual({
          control: "connected",
          address: `127.0.0.1:${cookieClient.controlPort}`,
          version: expect.any(String),
          error: null
        })
        expect(status.version!.split(" ")[0]).toBe(network.torVersion)
        const cookie = fs.readFileSync(cookieClient.cookieFile!)
        expect(cookie).toHaveLength(32)
        const body = yield* getText(mitm.report.port, "/api/tor")
        expect(body.toLowerCase()).not.toContain(cookie.toString("hex"))
      }), 60_000)

    it.scoped("every connection to a loopback origin gets its Tor stream, circuit and a path of the network's relays, and a TorStreamAttached event", () =>
      Effect.gen(function*() {
        const { cookieClient, network, origin } = yield* PrivateTor
        const mitm = yield* mitmThrough(cookieClient)
        yield* statusBecomes(mitm, "connected")
        const one = [uniquePath("first"), uniquePath("second")]
        const many = Array.from({ length: 4 }, (_, i) => uniquePath(`together${i}`))
        yield* Effect.forEach(one, (path) => get(mitm, origin, path), { discard: true })
        yield* Effect.forEach(many, (path) => get(mitm, origin, path), { concurrency: "unbounded", discard: true })
        const connections = yield* Effect.forEach([...one, ...many], (path) => recorded(mitm, path))
        const circuits = yield* apiCircuits(mitm)
        for (const connection of connections) expectAttributed(network, connection, circuits)
        expect(new Set(connections.map((c) => c.tor!.stream)).size).toBe(connections.length)
        const all = yield* apiConnections(mitm)
        expect(all.filter((c) => c.host === originHost && c.port === origin.port)).toHaveLength(connections.length)
        console.log(
          `streams → circuits: ${connections.map((c) => `${c.tor!.stream}→${c.tor!.circuit}`).join(", ")}; ` +
            `paths: ${[...new Set(connections.map((c) => c.tor!.path.map((r) => r.nickname).join("/")))].join(", ")}`
        )
      }), 60_000)

    it.scoped("streams with the same SOCKS5 username share a circuit; different usernames do not", () =>
      Effect.gen(function*() {
        const { cookieClient, network, origin } = yield* PrivateTor
        const mitm = yield* mitmThrough(cookieClient)
        yield* statusBecomes(mitm, "connected")
        const tag = crypto.randomBytes(4).toString("hex")
        const alice: Credentials = { username: `alice-${tag}`, password: "x" }
        const bob: Credentials = { username: `bob-${tag}`, password: "x" }
        // Opened at once, each user's streams are attached together: a conflux set that Tor links
        // meanwhile (it replaces the sets it used) cannot draw one of them away from the others.
        const together = [alice, bob, alice, bob, alice, bob].map((who, i) => ({
          who,
          path: uniquePath(`${who === alice ? "alice" : "bob"}${i}`)
        }))
        yield* Effect.forEach(together, (step) => get(mitm, origin, step.path, step.who), {
          concurrency: "unbounded",
          discard: true
        })
        // Alice again, later: Tor may give her another circuit of hers (it prefers a conflux set
        // to the circuit it built for her), never one of Bob's.
        const later = { who: alice, path: uniquePath("alice-later") }
        yield* get(mitm, origin, later.path, later.who)
        const plan = [...together, later]
        const connections = yield* Effect.forEach(plan, (step) => recorded(mitm, step.path))
        const circuits = yield* apiCircuits(mitm)
        for (const connection of connections) expectAttributed(network, connection, circuits)
        plan.forEach((step, i) => expect(connections[i].isolation).toBe(step.who.username))
        const of = (who: Credentials, steps: ReadonlyArray<{ readonly who: Credentials }>) =>
          connections.filter((_, i) => i < steps.length && steps[i].who === who)
        const group = (connection: ApiConnection) => circuitGroup(circuits, connection.tor!.circuit!)
        console.log(
          `alice on circuits ${of(alice, plan).map((c) => c.tor!.circuit).join("/")}, ` +
            `bob on ${of(bob, plan).map((c) => c.tor!.circuit).join("/")}; conflux legs: ` +
            circuits.filter((c) => c.conflux.length > 0).map((c) => `${c.id}↔${c.conflux.join(",")}`).join(", ")
        )

        // The same username: one circuit (or legs of one conflux set), which lists all those connections.
        for (const who of [alice, bob]) {
          const [first, ...rest] = of(who, together)
          const shared = group(first)
          for (const connection of rest) expect(shared, `${who.username}'s circuits`).toContain(connection.tor!.circuit)
          expect(circuits.filter((c) => shared.has(c.id)).flatMap((c) => c.connections))
            .toEqual(expect.arrayContaining([first.id, ...rest.map((c) => c.id)]))
        }
        // Different usernames: no circuit in common, and no circuit lists both.
        const aliceCircuits = new Set(of(alice, plan).flatMap((c) => [...group(c)]))
        const bobCircuits = new Set(of(bob, plan).flatMap((c) => [...group(c)]))
        expect([...aliceCircuits].filter((id) => bobCircuits.has(id))).toEqual([])
        const aliceIds = of(alice, plan).map((c) => c.id)
        const bobIds = of(bob, plan).map((c) => c.id)
        for (const circuit of circuits) {
          const carries = (ids: ReadonlyArray<number>) => circuit.connections.some((id) => ids.includes(id))
          expect(carries(aliceIds) && carries(bobIds), `circuit ${circuit.id} carries both`).toBe(false)
        }
      }), 60_000)

    it.scoped("a circuit built for a new isolation group has a build time, in the connection's tor field and in /api/circuits", () =>
      Effect.gen(function*() {
        const { cookieClient, network, origin } = yield* PrivateTor
        const mitm = yield* mitmThrough(cookieClient)
        yield* statusBecomes(mitm, "connected")
        // Circuits Tor built before this MITM was watching have no build time; each new
        // isolation group takes a fresh circuit, and Tor launches more as it uses them.
        const tag = crypto.randomBytes(4).toString("hex")
        const seen: Array<ApiConnection> = []
        let timed: ApiConnection | undefined
        for (let i = 0; i < 8 && timed === undefined; i++) {
          const path = uniquePath(`group${i}`)
          yield* get(mitm, origin, path, { username: `group-${tag}-${i}`, password: "x" })
          const connection = yield* recorded(mitm, path)
          seen.push(connection)
          if (connection.tor!.circuitBuildTime !== null) timed = connection
        }
        const circuits = yield* apiCircuits(mitm)
        for (const connection of seen) expectAttributed(network, connection, circuits)
        // A circuit without a build time was launched before MITM was watching.
        for (const connection of seen.filter((c) => c.tor!.circuitBuildTime === null)) {
          expect(circuits.find((c) => c.id === connection.tor!.circuit)!.launchedAt).toBeNull()
        }
        // Circuits of different isolation groups are different circuits.
        const groups = seen.map((c) => circuitGroup(circuits, c.tor!.circuit!))
        groups.forEach((group, i) => groups.slice(i + 1).forEach((other) => expect([...group].filter((id) => other.has(id))).toEqual([])))

        expect(timed, `a circuit with a build time among ${seen.length} new isolation groups`).toBeDefined()
        const buildTime = timed!.tor!.circuitBuildTime!
        // From MITM's reading of Tor's LAUNCHED and BUILT events: a busy process may read both at once.
        expect(buildTime).toBeGreaterThanOrEqual(0)
        expect(buildTime).toBeLessThan(60)
        const circuit = circuits.find((c) => c.id === timed!.tor!.circuit)!
        expect(circuit).toMatchObject({ buildTime, reason: null, closedAt: null })
        expect(circuit.state).toBe("built")
        expect(circuit.launchedAt).toBeGreaterThanOrEqual(0)
        expect(circuit.builtAt! - circuit.launchedAt!).toBeCloseTo(buildTime, 5)
        expect(circuit.connections).toContain(timed!.id)
        expect(circuit.builtAt!).toBeLessThanOrEqual(timed!.events.find((e) => e.type === "TorStreamAttached")!.time)
        console.log(
          `new isolation groups on circuits ${seen.map((c) => `${c.tor!.circuit} (${c.tor!.circuitBuildTime ?? "built before"})`).join(", ")}; ` +
            `circuit ${circuit.id} (${circuit.purpose}) built in ${(buildTime * 1000).toFixed(0)} ms`
        )
      }), 60_000)

    it.scoped("telemetry (SPEC §10): each connection's trace carries the Tor stream, circuit and path that /api/connections shows", () =>
      Effect.gen(function*() {
        const { cookieClient, origin } = yield* PrivateTor
        const receiver = yield* otlpReceiver("accept")
        const mitm = yield* startMitm(
          {
            upstream: { _tag: "Socks5", host: "127.0.0.1", port: cookieClient.socksPort },
            otlp: { url: receiver.url, endpoint: `${receiver.url}/v1/traces` }
          },
          UpstreamFromSettings.layer,
          undefined,
          { address: { host: "127.0.0.1", port: cookieClient.controlPort }, password: undefined },
          { exportInterval: "100 millis" }
        )
        yield* statusBecomes(mitm, "connected")
        const paths = Array.from({ length: 3 }, (_, i) => uniquePath(`traced${i}`))
        yield* Effect.forEach(paths, (path) => get(mitm, origin, path), { concurrency: "unbounded", discard: true })
        const connections = yield* Effect.forEach(paths, (path) => recorded(mitm, path))
        const rootOf = (id: number) =>
          receiver.spans.find((span) => span.parentSpanId === null && span.attributes["mitm.connection.id"] === id)
        const roots = yield* eventually(Effect.sync(() => {
          const found = connections.map((connection) => rootOf(connection.id))
          return found.every((root) => root !== undefined) ? found.map((root) => root!) : undefined
        })).pipe(Effect.catchAll(() => Effect.fail(new Error(`the receiver got ${receiver.spans.length} spans, not a root span for each of connections ${connections.map((c) => c.id).join(", ")}`))))
        connections.forEach((connection, i) => {
          const tor = connection.tor!
          expect(roots[i].name).toBe(`SOCKS ${originHost}:${origin.port}`)
          expect(roots[i].attributes).toMatchObject({
            "tor.stream.id": tor.stream,
            "tor.circuit.id": tor.circuit,
            "tor.circuit.path": tor.path.map((relay) => `$${relay.fingerprint}~${relay.nickname}`)
          })
        })
        expect(receiver.undecodable).toEqual([])
        console.log(`traces' Tor attributes: ${roots.map((root) => `${root.attributes["tor.stream.id"]}→${root.attributes["tor.circuit.id"]}`).join(", ")}`)
      }), 60_000)

    it.scoped("/api/circuits agrees with Tor's own circuit-status, also when circuits change while MITM connects", () =>
      Effect.gen(function*() {
        const { cookieClient, origin } = yield* PrivateTor
        // New isolation groups straight to Tor make it build circuits and relaunch conflux legs;
        // meanwhile MITMs connect, each reading circuit-status while Tor's events stream in.
        const tag = crypto.randomBytes(4).toString("hex")
        const churn = Effect.forEach(Array.from({ length: 6 }, (_, i) => i), (i) =>
          Effect.gen(function*() {
            const connection = yield* connectRaw(cookieClient.socksPort)
            yield* connection.write(socks5Greeting([0x02]))
            yield* connection.read(2)
            yield* connection.write(userPass(Buffer.from(`churn-${tag}-${i}`), Buffer.from("x")))
            yield* connection.read(2)
            yield* connection.write(socks5Connect(originHost, origin.port))
            yield* connection.read(10).pipe(Effect.timeout("20 seconds"))
          }).pipe(Effect.scoped, Effect.delay(`${i * 15} millis`)), { concurrency: "unbounded", discard: true })
        const starting = Effect.forEach(Array.from({ length: 6 }, (_, i) => i), (i) =>
          Effect.delay(mitmThrough(cookieClient), `${i * 15} millis`), { concurrency: "unbounded" })
        const [, mitms] = yield* Effect.all([churn, starting], { concurrency: "unbounded" })
        yield* Effect.forEach(mitms, (mitm) => statusBecomes(mitm, "connected"), { discard: true })

        // Bounded: events in flight may lag behind Tor's answer for a moment, never for long.
        const agree = Effect.gen(function*() {
          const tor = yield* Effect.orDie(torCircuitStatus(cookieClient))
          const views = yield* Effect.forEach(mitms, (mitm) => Effect.orDie(apiCircuits(mitm)))
          const found = views.flatMap((view, i) => disagreements(tor, view).map((text) => `MITM ${i + 1}: ${text}`))
          return { tor, found }
        })
        const settled = yield* eventually(Effect.map(agree, (result) => (result.found.length === 0 ? result : undefined))).pipe(
          Effect.catchAll(() => agree)
        )
        expect(settled.found, "what MITM says of Tor's circuits").toEqual([])
        expect(settled.tor.filter((c) => c.status === "BUILT").length).toBeGreaterThan(0)
      }), 60_000)

    it.scoped("HashedControlPassword: with the right password MITM connects and attributes connections", () =>
      Effect.gen(function*() {
        const { network, origin, password, passwordClient } = yield* PrivateTor
        const mitm = yield* mitmThrough(passwordClient, password)
        const status = yield* statusBecomes(mitm, "connected")
        expect(status).toMatchObject({ address: `127.0.0.1:${passwordClient.controlPort}`, error: null })
        expect(status.version!.split(" ")[0]).toBe(network.torVersion)
        const path = uniquePath("password")
        yield* get(mitm, origin, path)
        const connection = yield* recorded(mitm, path)
        expectAttributed(network, connection, yield* apiCircuits(mitm))
        expect(yield* getText(mitm.report.port, "/api/tor")).not.toContain(password)
      }), 60_000)

    it.scoped("HashedControlPassword: a wrong password is auth-failed, and relaying through Tor still works", () =>
      Effect.gen(function*() {
        const { origin, password, passwordClient } = yield* PrivateTor
        const wrong = `${password}-wrong`
        const mitm = yield* mitmThrough(passwordClient, wrong)
        const status = yield* statusBecomes(mitm, "auth-failed")
        expect(status).toMatchObject({ address: `127.0.0.1:${passwordClient.controlPort}`, version: null })
        expect(status.error).toEqual(expect.any(String))
        expect(status.error).not.toContain(wrong)
        const path = uniquePath("wrong-password")
        yield* get(mitm, origin, path)
        const connection = yield* recorded(mitm, path, false)
        expect(connection.state).toBe("closed")
        expect(connection.tor).toBeNull()
        expect(connection.events.filter((e) => e.type.startsWith("Tor"))).toEqual([])
        expect(yield* apiCircuits(mitm)).toEqual([])
        const after = yield* torStatus(mitm)
        expect(after.control).toBe("auth-failed")
        expect(yield* getText(mitm.report.port, "/api/tor")).not.toContain(wrong)
      }), 60_000)

    it.scoped("HashedControlPassword: without a password MITM says Tor asks for one, and relaying still works", () =>
      Effect.gen(function*() {
        const { origin, passwordClient } = yield* PrivateTor
        const mitm = yield* mitmThrough(passwordClient)
        const status = yield* statusBecomes(mitm, "auth-failed")
        expect(status.error).toMatch(/password/i)
        const path = uniquePath("no-password")
        yield* get(mitm, origin, path)
        expect((yield* recorded(mitm, path, false)).tor).toBeNull()
      }), 60_000)
  })
})
