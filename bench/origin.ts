/**
 * Benchmark origin: an HTTP server on 127.0.0.1 that answers `GET /bytes?n=N` with
 * `Content-Length: N` and N bytes, written from one preallocated 64 KiB buffer, respecting
 * backpressure (wait for 'drain' whenever `write` returns false).
 *
 * Started by bench/throughput.ts as its own process; prints
 * `origin: listening on 127.0.0.1:PORT` and exits when its stdin closes (the bench died).
 */
import * as http from "node:http"

const CHUNK = Buffer.alloc(64 * 1024, "0123456789abcdef")

const sendBytes = (res: http.ServerResponse, n: number): void => {
  let left = n
  const pump = (): void => {
    while (left > 0) {
      const size = Math.min(left, CHUNK.length)
      left -= size
      const ok = res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))
      if (!ok) {
        res.once("drain", pump)
        return
      }
    }
    res.end()
  }
  pump()
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://origin")
  const n = Number(url.searchParams.get("n"))
  if (req.method !== "GET" || url.pathname !== "/bytes" || !Number.isSafeInteger(n) || n < 0) {
    res.writeHead(404, { "Content-Type": "text/plain", "Content-Length": "10" }).end("not found\n")
    return
  }
  res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(n) })
  sendBytes(res, n)
})
server.keepAliveTimeout = 60_000

server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("origin: no address")
  process.stdout.write(`origin: listening on 127.0.0.1:${address.port}\n`)
})

// Exit with the parent: the bench holds our stdin open.
process.stdin.on("end", () => process.exit(0))
process.stdin.on("error", () => process.exit(0))
process.stdin.resume()
process.on("SIGTERM", () => process.exit(0))
process.on("SIGINT", () => process.exit(0))
