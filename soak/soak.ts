/**
 * `npm run soak` (not part of `npm test`): mixed traffic through a MITM child
 * for ten minutes with eviction active — page loads, keep-alive, pipelining,
 * TLS-looking and random bytes, aborted connections — sampling MITM's RSS,
 * open handles and event-loop delay each second. Every byte of the echo
 * traffic is verified by hashes at both ends. Only 127.0.0.1 is used.
 *
 *   npm run soak -- [--seconds 600] [--workers 16]
 */
import * as child from "node:child_process"
import * as crypto from "node:crypto"
import * as http from "node:http"
import * as net from "node:net"
import * as path from "node:path"

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name)
  return index < 0 ? fallback : Number(process.argv[index + 1])
}
const seconds = argument("--seconds", 600)
const workers = argument("--workers", 16)
const root = path.resolve(import.meta.dirname, "..")

const listen = (server: net.Server) =>
  new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

// Origins: an HTTP server (pages, keep-alive, pipelining) and an echo server for verified bytes.
const pageBody = crypto.randomBytes(20_000)
const httpServer = http.createServer((request, response) => {
  if (request.url?.startsWith("/big")) response.end(crypto.randomBytes(300_000))
  else response.end(pageBody)
})
const echoServer = net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.on("error", () => {})
  socket.pipe(socket)
})

const startMitm = () =>
  new Promise<{ process: child.ChildProcess; proxyPort: number; reportPort: number }>((resolve, reject) => {
    const mitm = child.spawn(process.execPath, [
      "--import", "tsx", "src/main.ts",
      "--listen", "127.0.0.1:0", "--report", "127.0.0.1:0", "--upstream", "direct", "--max-connections", "300"
    ], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
    let text = ""
    mitm.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString()
      const proxy = /listening on 127\.0\.0\.1:(\d+)/.exec(text)
      const report = /report at http:\/\/127\.0\.0\.1:(\d+)\//.exec(text)
      if (proxy !== null && report !== null) resolve({ process: mitm, proxyPort: Number(proxy[1]), reportPort: Number(report[1]) })
    })
    mitm.once("exit", (code) => reject(new Error(`MITM exited with ${code}: ${text}`)))
  })

/** A SOCKS5 CONNECT to 127.0.0.1:port through MITM; resolves with the socket after the reply. */
const socksConnect = (proxyPort: number, port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: proxyPort, allowHalfOpen: true })
    socket.on("error", reject)
    socket.once("connect", () => socket.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255])))
    let got = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk])
      if (got.length < 12) return
      socket.off("data", onData)
      if (got[3] !== 0) return reject(new Error(`SOCKS reply ${got[3]}`))
      if (got.length > 12) socket.unshift(got.subarray(12))
      resolve(socket)
    }
    socket.on("data", onData)
  })

const readAll = (socket: net.Socket) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("end", () => resolve(Buffer.concat(chunks)))
    socket.on("error", reject)
  })

const counts = { pages: 0, keepAlive: 0, pipelined: 0, echoed: 0, echoBytes: 0, tlsLike: 0, random: 0, aborted: 0, errors: 0, corrupt: 0 }

const scenarios: Array<(proxyPort: number, httpPort: number, echoPort: number) => Promise<void>> = [
  // A page load: one request, Connection: close.
  async (proxy, httpPort) => {
    const socket = await socksConnect(proxy, httpPort)
    socket.end(`GET /page HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n`)
    const response = await readAll(socket)
    if (!response.subarray(response.length - pageBody.length).equals(pageBody)) counts.corrupt++
    counts.pages++
  },
  // Keep-alive and pipelining: five requests in one write, then close.
  async (proxy, httpPort) => {
    const socket = await socksConnect(proxy, httpPort)
    const requests = Array.from({ length: 5 }, (_, i) => `GET /${i === 2 ? "big" : "page"} HTTP/1.1\r\nHost: origin\r\n${i === 4 ? "Connection: close\r\n" : ""}\r\n`)
    socket.end(requests.join(""))
    const response = await readAll(socket)
    if ((response.toString("latin1").match(/HTTP\/1\.1 200 OK/g) ?? []).length !== 5) counts.corrupt++
    counts.pipelined++
    counts.keepAlive++
  },
  // Verified bytes: random data (TLS-looking or not) echoed back; hashes must match.
  async (proxy, _httpPort, echoPort) => {
    const socket = await socksConnect(proxy, echoPort)
    const tlsLike = Math.random() < 0.5
    const payload = crypto.randomBytes(1 + Math.floor(Math.random() * 200_000))
    if (tlsLike) payload.set([0x16, 0x03, 0x01], 0)
    socket.end(payload)
    const back = await readAll(socket)
    const same = crypto.createHash("sha256").update(payload).digest("hex") === crypto.createHash("sha256").update(back).digest("hex")
    if (!same) counts.corrupt++
    counts.echoed++
    counts.echoBytes += payload.length
    if (tlsLike) counts.tlsLike++
    else counts.random++
  },
  // An aborted connection: a partial request, then a reset.
  async (proxy, httpPort) => {
    const socket = await socksConnect(proxy, httpPort)
    socket.write("POST /upload HTTP/1.1\r\nHost: origin\r\nContent-Length: 100000\r\n\r\npartial")
    await new Promise((resolve) => socket.once("data", resolve).once("error", resolve).once("close", resolve).setTimeout(50, () => resolve(undefined)))
    socket.resetAndDestroy()
    counts.aborted++
  }
]

const status = (reportPort: number) =>
  new Promise<{ process: { rssBytes: number; resources: number; eventLoopDelayMs: { mean: number; max: number } }; counts: { total: number; evicted: number } }>((resolve, reject) => {
    http.get({ host: "127.0.0.1", port: reportPort, path: "/api/status", headers: { host: `127.0.0.1:${reportPort}` } }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString())))
    }).on("error", reject)
  })

const main = async () => {
  const httpPort = await listen(httpServer)
  const echoPort = await listen(echoServer)
  const mitm = await startMitm()
  const stop = () => mitm.process.kill("SIGTERM")
  process.on("SIGINT", () => {
    stop()
    process.exit(130)
  })
  const deadline = process.hrtime.bigint() + BigInt(seconds) * 1_000_000_000n
  const running = () => process.hrtime.bigint() < deadline
  const samples: Array<{ t: number; rssMiB: number; resources: number; loopMaxMs: number; connections: number; evicted: number }> = []
  const started = process.hrtime.bigint()
  const sampler = setInterval(() => {
    status(mitm.reportPort).then((s) => {
      const t = Math.round(Number(process.hrtime.bigint() - started) / 1e9)
      samples.push({ t, rssMiB: Math.round(s.process.rssBytes / 1048576), resources: s.process.resources, loopMaxMs: s.process.eventLoopDelayMs.max, connections: s.counts.total, evicted: s.counts.evicted })
      if (t % 30 === 0) console.log(`soak: ${t} s  RSS ${samples.at(-1)!.rssMiB} MiB  resources ${s.process.resources}  loop max ${s.process.eventLoopDelayMs.max} ms  connections ${s.counts.total} (evicted ${s.counts.evicted})`)
    }, () => {})
  }, 1000)
  await Promise.all(Array.from({ length: workers }, async (_, worker) => {
    for (let n = worker; running(); n++) {
      try {
        await scenarios[n % scenarios.length](mitm.proxyPort, httpPort, echoPort)
      } catch {
        counts.errors++
      }
    }
  }))
  clearInterval(sampler)
  const code = await new Promise<number | null>((resolve) => {
    mitm.process.once("exit", resolve)
    stop()
  })
  httpServer.close()
  echoServer.close()
  httpServer.closeAllConnections()
  const warm = samples.filter((s) => s.t >= Math.min(60, seconds / 5))
  const pick = (list: typeof samples, key: "rssMiB" | "resources") => ({
    first: list[0]?.[key],
    peak: Math.max(...list.map((s) => s[key])),
    last: list.at(-1)?.[key]
  })
  const summary = {
    scenario: "soak",
    seconds,
    workers,
    traffic: counts,
    rssMiB: { all: pick(samples, "rssMiB"), afterWarmUp: pick(warm, "rssMiB") },
    resources: { all: pick(samples, "resources"), afterWarmUp: pick(warm, "resources") },
    eventLoopMaxMs: Math.max(...samples.map((s) => s.loopMaxMs)),
    mitmExit: code
  }
  console.log(JSON.stringify(summary))
  process.exit(counts.corrupt === 0 && code === 0 ? 0 : 1)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
