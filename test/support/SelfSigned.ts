/**
 * A self-signed certificate for localhost, made with openssl at test time in a
 * temporary folder (removed again), for local TLS origins.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import type * as http from "node:http"
import * as https from "node:https"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

/** Fails, saying why, where openssl is missing: a TLS test never skips itself. */
export const selfSigned = (): { readonly key: Buffer; readonly cert: Buffer } => {
  if (!hasOpenssl) throw new Error("openssl is not installed: apt-get install -y openssl (npm test installs it when run as root)")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mitm-tls-"))
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
      "-days", "1", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")
    ], { stdio: "ignore" })
    return { key: fs.readFileSync(path.join(dir, "key.pem")), cert: fs.readFileSync(path.join(dir, "cert.pem")) }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** An HTTPS origin on 127.0.0.1:0 with a self-signed certificate (ALPN http/1.1), closed with the test's scope. */
export const httpsOrigin = (handler: http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: https.Server; readonly port: number }>((resume) => {
      const server = https.createServer({ ...selfSigned(), ALPNProtocols: ["http/1.1"] }, handler)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, port: (server.address() as { port: number }).port })))
    }),
    ({ server }) =>
      Effect.sync(() => {
        server.closeAllConnections()
        server.close()
      })
  )
