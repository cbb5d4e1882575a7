/**
 * The live Telemetry: connections that close go, as OpenTelemetry traces, to
 * the collector the settings name (`--otlp`, `PUT /api/settings`), over
 * OTLP/HTTP (protobuf or JSON) with @effect/platform's HttpClient.
 *
 * On the closing path it only appends the connection to a bounded queue (when the
 * queue is full, the trace is dropped and counted). One fiber sends the queue in
 * batches, one request at a time, each bounded by a timeout and retried a few times
 * on errors worth retrying; a collector that keeps failing is tried less often, up
 * to every 30 s. Failures are logged at most once a minute. While export is off,
 * the closing path returns at once and the fiber only wakes to find nothing queued.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { Data, Duration, Effect, Layer, Schedule } from "effect"
import * as crypto from "node:crypto"
import type { Connection } from "../domain/Connection.js"
import { traceOf } from "../domain/ConnectionTrace.js"
import { attributesOf, encodeTracesJson, encodeTracesProtobuf } from "../domain/OtlpTraces.js"
import type { Settings } from "../domain/Settings.js"
import { hostVantage, type OtlpCollector, redactedEndpoint } from "../domain/Telemetry.js"
import type { TorAttribution } from "../domain/TorCircuits.js"
import { SessionClock } from "../services/SessionClock.js"
import { SettingsStore } from "../services/Settings.js"
import { Store } from "../services/Store.js"
import { Telemetry, type TelemetryService, type TelemetryStatus } from "../services/Telemetry.js"
import { TorControl } from "../services/TorControl.js"

/** Why one export request failed. */
export class OtlpExportError extends Data.TaggedError("OtlpExportError")<{
  readonly reason:
    /** The collector answered with a status other than 2xx. */
    | "Status"
    /** No connection to the collector, or it broke. */
    | "Unreachable"
    /** No answer within the request timeout. */
    | "Timeout"
    /** The traces could not be built or encoded (a bug: nothing was sent). */
    | "Encode"
  /** The HTTP status, for `Status`. */
  readonly status: number | null
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

/** OTLP/HTTP says: retry on 429, 502, 503, 504 and when the collector could not be reached. */
const retryable = (error: OtlpExportError): boolean =>
  error.reason === "Unreachable" || error.reason === "Timeout" || error.status === 429 || error.status === 502 || error.status === 503 || error.status === 504

export interface OtlpExportConfig {
  /** How long a closed connection may wait before its batch is sent (unless the batch fills first). */
  readonly exportInterval: Duration.DurationInput
  /** Traces per export request. */
  readonly maxBatch: number
  /** Traces waiting at most; more are dropped and counted. */
  readonly maxQueue: number
  /** One export request's time to be answered. */
  readonly requestTimeout: Duration.DurationInput
  /** Retries of a request that failed in a way worth retrying. */
  readonly retries: number
  /** The longest pause after a batch failed. */
  readonly maxBackoff: Duration.DurationInput
  /** At most one failure line per this interval. */
  readonly logInterval: Duration.DurationInput
  /** How long the last connections may take to go out when MITM stops. */
  readonly shutdownTimeout: Duration.DurationInput
  /** `service.version`. */
  readonly serviceVersion: string | undefined
}

export const defaultExportConfig: OtlpExportConfig = {
  exportInterval: Duration.seconds(2),
  maxBatch: 256,
  maxQueue: 4096,
  requestTimeout: Duration.seconds(10),
  retries: 2,
  maxBackoff: Duration.seconds(30),
  logInterval: Duration.minutes(1),
  shutdownTimeout: Duration.seconds(3),
  serviceVersion: undefined
}

/** A closed connection waiting to be sent, with what is known only at its close. */
interface Queued {
  readonly connection: Connection
  readonly tor: TorAttribution | null
  readonly sessionStartNanos: bigint
}

/** Random ids from a pool filled 4 KiB at a time: one `randomBytes` call per id costs more than a span. */
const makeIds = () => {
  const pool = Buffer.alloc(4096)
  let used = pool.length
  return (bytes: 8 | 16): string => {
    if (used + bytes > pool.length) {
      crypto.randomFillSync(pool)
      used = 0
    }
    used += bytes
    return pool.toString("hex", used - bytes, used)
  }
}

const encoders = {
  protobuf: { contentType: "application/x-protobuf", encode: encodeTracesProtobuf },
  json: { contentType: "application/json", encode: encodeTracesJson }
} as const

const causeText = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** What to say about a failed request: never the URL (it may carry credentials). */
const exportError = (error: HttpClientError.HttpClientError): OtlpExportError =>
  error._tag === "ResponseError" && error.reason === "StatusCode"
    ? new OtlpExportError({ reason: "Status", status: error.response.status, detail: `the collector answered HTTP ${error.response.status}` })
    : new OtlpExportError({
      reason: "Unreachable",
      status: null,
      detail: `cannot reach the collector (${error.description ?? causeText(error.cause ?? error.reason)})`
    })

export const make = (options: Partial<OtlpExportConfig> = {}) =>
  Effect.gen(function*() {
    const config = { ...defaultExportConfig, ...options }
    const store = yield* Store
    const sessionClock = yield* SessionClock
    const tor = yield* TorControl
    const settings = yield* SettingsStore
    const client = HttpClient.filterStatusOk(yield* HttpClient.HttpClient)
    const clock = yield* Effect.clock
    const newId = makeIds()
    const exportInterval = Duration.decode(config.exportInterval)
    const logMillis = Duration.toMillis(config.logInterval)
    /** Opened when a batch is full, so it goes before the interval ends. */
    const batchReady = yield* Effect.makeLatch(false)

    let queue: Array<Queued> = []
    let exported = 0
    let dropped = 0
    let failed = 0
    let lastError: string | null = null
    let lastLoggedAt: number | undefined
    let unlogged = 0

    const onClosed = (connection: Connection) => {
      if (settings.unsafeCurrent().otlp === null) return
      if (queue.length >= config.maxQueue) {
        dropped++
        return
      }
      // Session time 0 as a wall-clock instant: now, less the session seconds now.
      const sessionStartNanos = clock.unsafeCurrentTimeNanos() - BigInt(Math.round(sessionClock.unsafeElapsed() * 1e6)) * 1000n
      queue.push({ connection, tor: tor.torOf(connection.id), sessionStartNanos })
      if (queue.length >= config.maxBatch) batchReady.unsafeOpen()
    }
    yield* Effect.acquireRelease(Effect.sync(() => store.onClosed(onClosed)), (unsubscribe) => Effect.sync(unsubscribe))

    const logFailure = (collector: OtlpCollector, error: OtlpExportError) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        if (lastLoggedAt !== undefined && now - lastLoggedAt < logMillis) {
          unlogged++
          return Effect.void
        }
        lastLoggedAt = now
        const since = unlogged > 0 ? ` (${unlogged} more failed requests since the last message)` : ""
        unlogged = 0
        return Effect.logWarning(
          `mitm: telemetry export to ${redactedEndpoint(collector)} failed: ${error.message}${since}; ` +
            `traces so far: ${exported} exported, ${failed} failed, ${dropped} dropped. Relaying is unaffected.`
        )
      })

    /** Sends one batch; says whether the collector took it. */
    /** The batch as an OTLP body in the encoding the settings ask for. */
    const bodyOf = (batch: ReadonlyArray<Queued>, current: Settings) =>
      Effect.try({
        try: () => {
          const spans = batch.flatMap((queued) =>
            traceOf(queued.connection, { sessionStartNanos: queued.sessionStartNanos, tor: queued.tor, newId })
          )
          const encoder = encoders[current.otlpEncoding]
          return HttpClientRequest.bodyUint8Array(
            encoder.encode({
              resourceSpans: [{
                resource: {
                  attributes: attributesOf({ "service.name": "mitm", "service.version": config.serviceVersion, "mitm.vantage": current.vantage }),
                  droppedAttributesCount: 0
                },
                scopeSpans: [{ scope: { name: "mitm", version: config.serviceVersion }, spans }]
              }]
            }),
            encoder.contentType
          )
        },
        catch: (cause) => new OtlpExportError({ reason: "Encode", status: null, detail: `could not encode the traces (${causeText(cause)})` })
      })

    /** Sends one batch; says whether the collector took it. Every outcome is counted. */
    const send = (batch: ReadonlyArray<Queued>, current: Settings, collector: OtlpCollector) =>
      bodyOf(batch, current).pipe(
        Effect.flatMap((withBody) =>
          client.execute(withBody(HttpClientRequest.post(collector.endpoint))).pipe(
            Effect.flatMap((response) => response.arrayBuffer),
            Effect.mapError(exportError),
            Effect.timeoutFail({
              duration: config.requestTimeout,
              onTimeout: () =>
                new OtlpExportError({ reason: "Timeout", status: null, detail: `no answer within ${Duration.format(config.requestTimeout)}` })
            }),
            Effect.retry({ times: config.retries, while: retryable, schedule: Schedule.exponential("500 millis") })
          )
        ),
        Effect.matchEffect({
          onSuccess: () =>
            Effect.sync(() => {
              exported += batch.length
              return true
            }),
          onFailure: (error) =>
            Effect.suspend(() => {
              failed += batch.length
              lastError = error.message
              return Effect.as(logFailure(collector, error), false)
            })
        })
      )

    /** Sends what is queued, batch after batch; stops at the first batch that fails. */
    const drain = Effect.gen(function*() {
      while (queue.length > 0) {
        const current = settings.unsafeCurrent()
        if (current.otlp === null) {
          dropped += queue.length
          queue = []
          break
        }
        const batch = queue.splice(0, config.maxBatch)
        if (!(yield* send(batch, current, current.otlp))) return false
      }
      return true
    })

    // Finalizers run uninterruptibly; the drain must not be, or a collector that never answers holds the exit.
    yield* Effect.addFinalizer(() => drain.pipe(Effect.interruptible, Effect.timeoutOption(config.shutdownTimeout), Effect.ignore))

    let backoff = Duration.zero
    yield* Effect.gen(function*() {
      yield* batchReady.await.pipe(Effect.timeoutOption(exportInterval))
      batchReady.unsafeClose()
      if (yield* drain) {
        backoff = Duration.zero
        return
      }
      backoff = Duration.min(Duration.max(Duration.times(backoff, 2), exportInterval), Duration.decode(config.maxBackoff))
      yield* Effect.sleep(backoff)
    }).pipe(Effect.forever, Effect.forkScoped)

    const status: Effect.Effect<TelemetryStatus> = Effect.sync(() => {
      const current = settings.unsafeCurrent()
      return {
        otlp: current.otlp === null ? "off" : redactedEndpoint(current.otlp),
        encoding: current.otlpEncoding,
        vantage: current.vantage,
        exported,
        dropped,
        failed,
        queued: queue.length,
        lastError
      }
    })
    return { status } satisfies TelemetryService
  })

/** The export, following the settings: idle while `otlp` is off. */
export const layer = (options: Partial<OtlpExportConfig> = {}) => Layer.scoped(Telemetry, make(options))

/** No export at all, for programs that measure nothing (a report of a saved file). */
export const layerOff: Layer.Layer<Telemetry> = Layer.succeed(Telemetry, {
  status: Effect.succeed<TelemetryStatus>({
    otlp: "off",
    encoding: "protobuf",
    vantage: hostVantage(),
    exported: 0,
    dropped: 0,
    failed: 0,
    queued: 0,
    lastError: null
  })
})
