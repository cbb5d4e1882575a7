/**
 * What the telemetry settings hold (SPEC §10): the OpenTelemetry collector that
 * traces go to, the OTLP/HTTP body encoding, and the vantage name that tells
 * one MITM's traces from another's in a shared backend.
 */
import * as os from "node:os"

/** An OTLP/HTTP collector: the URL as given, and where traces are posted (`URL/v1/traces`). */
export interface OtlpCollector {
  readonly url: string
  readonly endpoint: string
}

export type OtlpEncoding = "protobuf" | "json"

const tracesPath = "/v1/traces"

/**
 * `off`, or an `http://` / `https://` URL of a collector's OTLP/HTTP receiver
 * (`http://127.0.0.1:4318`). Traces go to `URL/v1/traces`; a URL that already ends
 * in `/v1/traces` is taken as the endpoint itself.
 */
export const parseOtlpCollector = (text: string): OtlpCollector | null | undefined => {
  const trimmed = text.trim()
  if (trimmed === "off" || trimmed === "") return null
  if (!/^https?:\/\//i.test(trimmed)) return undefined
  let url: URL
  try {
    url = new URL(trimmed)
  } catch {
    return undefined
  }
  if (url.hostname === "" || url.hash !== "") return undefined
  const path = url.pathname.replace(/\/+$/, "")
  url.pathname = path.endsWith(tracesPath) ? path : `${path}${tracesPath}`
  return { url: trimmed, endpoint: url.toString() }
}

export const formatOtlpCollector = (collector: OtlpCollector | null): string => collector === null ? "off" : collector.url

/** The endpoint as logs and `/api/status` show it: no user name, password or query (they may hold a token). */
export const redactedEndpoint = (collector: OtlpCollector): string => {
  const url = new URL(collector.endpoint)
  return `${url.protocol}//${url.host}${url.pathname}`
}

const vantagePattern = /^[A-Za-z0-9._:@/+-]{1,64}$/

/** A vantage name: 1 to 64 letters, digits and `. _ - : @ / +`. */
export const parseVantage = (text: string): string | undefined => {
  const trimmed = text.trim()
  return vantagePattern.test(trimmed) ? trimmed : undefined
}

/** The default vantage: this machine's host name (cut to what a vantage name may hold). */
export const hostVantage = (hostname: string = os.hostname()): string =>
  parseVantage(hostname) ?? (hostname.replace(/[^A-Za-z0-9._:@/+-]/g, "-").slice(0, 64) || "mitm")
