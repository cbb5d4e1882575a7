/**
 * The live ReportServer: one Node HTTP server running the report app. It
 * listens on the report port (unless `--report off`) and takes in-band
 * sockets handed over by the proxy for `mitm.proxy`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Layer, type Scope } from "effect"
import * as http from "node:http"
import type * as net from "node:net"
import { isLoopback } from "../domain/Address.js"
import { originsFor } from "../http/Guard.js"
import { reportApp } from "../http/Router.js"
import { makeFormToken } from "../http/SettingsPage.js"
import type { Reporter } from "../services/Reporter.js"
import { type ListenAddress, ReportServer, type ReportServerService } from "../services/ReportServer.js"
import type { Sessions } from "../services/Sessions.js"
import type { SettingsStore } from "../services/Settings.js"
import type { Telemetry } from "../services/Telemetry.js"

export interface ReportServerConfig {
  /** undefined: in-band only (`--report off`). */
  readonly listen: ListenAddress | undefined
  /** MITM's version, for the HAR's creator. */
  readonly version: string
  /** Answer clients from beyond loopback; otherwise their connections are closed at once. */
  readonly allowRemoteClients: boolean
}

const listen = (server: http.Server, address: ListenAddress) =>
  Effect.async<ListenAddress, Error>((resume) => {
    const onError = (error: Error) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(address.port, address.host, () => {
      server.off("error", onError)
      const bound = server.address() as net.AddressInfo
      resume(Effect.succeed({ host: bound.address, port: bound.port }))
    })
  })

export const make = (config: ReportServerConfig): Effect.Effect<ReportServerService, Error, Reporter | SettingsStore | Telemetry | Sessions | Scope.Scope> =>
  Effect.gen(function*() {
    const server = http.createServer({ keepAliveTimeout: 5_000, headersTimeout: 30_000, requestTimeout: 60_000 })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        server.close()
        server.closeAllConnections()
      })
    )
    const address = config.listen === undefined ? undefined : yield* listen(server, config.listen)
    const handler = yield* NodeHttpServer.makeHandler(reportApp({
      origins: originsFor(address),
      formToken: makeFormToken(),
      version: config.version
    }))
    server.on("request", handler)
    if (!config.allowRemoteClients) {
      server.on("connection", (socket: net.Socket) => {
        // In-band sockets come from the proxy, whose own check already ran; they have a loopback peer too.
        if (!isLoopback(socket.remoteAddress ?? "")) socket.destroy()
      })
    }
    server.on("clientError", (_error, socket) => socket.destroy())
    return {
      address,
      serveInBand: (socket, head) =>
        Effect.async<void>((resume) => {
          if (socket.destroyed) return resume(Effect.void)
          socket.once("close", () => resume(Effect.void))
          if (head.length > 0) socket.unshift(Buffer.from(head.buffer, head.byteOffset, head.byteLength))
          server.emit("connection", socket)
          socket.resume()
        })
    }
  })

export const layer = (config: ReportServerConfig): Layer.Layer<ReportServer, Error, Reporter | SettingsStore | Telemetry | Sessions> =>
  Layer.scoped(ReportServer, make(config))
