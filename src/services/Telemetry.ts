/**
 * Telemetry export (SPEC §10): every connection that closes becomes one
 * OpenTelemetry trace, sent in batches to the collector the settings name. The
 * export is on the side: it never slows or stops relaying, keeps a bounded
 * queue, and counts what it could not send.
 */
import { Context, type Effect } from "effect"
import type { OtlpEncoding } from "../domain/Telemetry.js"

/** `/api/status`'s `telemetry`: where traces go and how many went, counted in traces (one per connection). */
export interface TelemetryStatus {
  /** The traces endpoint without credentials or query (`http://127.0.0.1:4318/v1/traces`), or `off`. */
  readonly otlp: string
  readonly encoding: OtlpEncoding
  readonly vantage: string
  /** Traces the collector accepted. */
  readonly exported: number
  /** Traces not kept because the queue was full (a slow or absent collector), or that export was turned off. */
  readonly dropped: number
  /** Traces in export requests that failed (refused, unanswered, unreachable), after retries. */
  readonly failed: number
  /** Traces waiting to be sent. */
  readonly queued: number
  /** The last export failure, for people; null when none. */
  readonly lastError: string | null
}

export interface TelemetryService {
  readonly status: Effect.Effect<TelemetryStatus>
}

export class Telemetry extends Context.Tag("mitm/Telemetry")<Telemetry, TelemetryService>() {}
