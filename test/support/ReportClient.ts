/**
 * An HTTP client for the report's routes on loopback: method, path, body and headers
 * exactly as a test gives them, the reply as status, headers and text.
 */
import { Effect } from "effect"
import * as http from "node:http"

export interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export const request = (
  port: number,
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: Record<string, string> } = {}
) =>
  Effect.async<Reply, Error>((resume) => {
    const outgoing = http.request({ host: "127.0.0.1", port, method, path, headers: options.headers }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        resume(Effect.succeed({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() })))
    })
    outgoing.on("error", (error) => resume(Effect.fail(error)))
    outgoing.end(options.body)
  })
