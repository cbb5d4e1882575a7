/**
 * How the MITM process itself is doing, for `GET /api/status` and the soak
 * run: memory, open handles and event-loop delay.
 */
import { monitorEventLoopDelay } from "node:perf_hooks"

const loopDelay = monitorEventLoopDelay({ resolution: 20 })
loopDelay.enable()

export interface ProcessStats {
  readonly rssBytes: number
  readonly heapUsedBytes: number
  /** Open handles and requests (sockets, servers, timers) as Node counts them. */
  readonly resources: number
  /** Event-loop delay since the last reading, milliseconds: mean and max. */
  readonly eventLoopDelayMs: { readonly mean: number; readonly max: number }
}

export const processStats = (): ProcessStats => {
  const memory = process.memoryUsage()
  const stats = {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    resources: process.getActiveResourcesInfo().length,
    eventLoopDelayMs: {
      mean: Math.round((loopDelay.mean / 1e6) * 100) / 100,
      max: Math.round((loopDelay.max / 1e6) * 100) / 100
    }
  }
  loopDelay.reset()
  return stats
}
