/**
 * The JSON text of what no longer changes. A connection that has closed (or failed) has the
 * same JSON and the same HAR entries at every request, and serializing them is most of what
 * `/api/connections` and `/har` cost at 10,000 connections (JSON.stringify of 46 MB: about
 * 250 ms on a 2-core machine). So a settled connection's text is made once, kept as bytes
 * beside the connection (a WeakMap on the connection object: it goes when the connection is
 * evicted or forgotten), and copied into the response after that.
 *
 * A text is used again only while everything it was made from is as it was: the connection's
 * state, counts and event log length, Tor's attribution of it, and the HAR's options.
 */
import { type Connection, connectionJson } from "../domain/Connection.js"
import type { TorAttribution } from "../domain/TorCircuits.js"
import { type ListedJson, listedJson } from "./Responses.js"

/** What a settled connection's text was made from, besides the connection's fixed fields. */
interface Made {
  readonly state: Connection["state"]
  readonly protocol: Connection["protocol"]
  readonly events: number
  readonly eventsCut: number
  readonly bytesUp: number
  readonly bytesDown: number
  readonly closedAt: number | null
  readonly tor: TorAttribution | null
  /** What else the text depends on (the HAR's session start and creator), as one string. */
  readonly context: string
}

const madeOf = (connection: Connection, tor: TorAttribution | null, context: string): Made => ({
  state: connection.state,
  protocol: connection.protocol,
  events: connection.events.length,
  eventsCut: connection.eventsCut,
  bytesUp: connection.bytesUp,
  bytesDown: connection.bytesDown,
  closedAt: connection.closedAt,
  tor,
  context
})

const samePath = (a: TorAttribution["path"], b: TorAttribution["path"]): boolean =>
  a === b || (a.length === b.length && a.every((relay, index) => relay === b[index]))

/** Tor makes a new attribution object at every call: equal fields are the same attribution. */
const sameTor = (a: TorAttribution | null, b: TorAttribution | null): boolean =>
  a === b || (a !== null && b !== null && a.stream === b.stream && a.circuit === b.circuit &&
    a.circuitBuildTime === b.circuitBuildTime && samePath(a.path, b.path))

const stillAsMade = (made: Made, connection: Connection, tor: TorAttribution | null, context: string): boolean =>
  made.state === connection.state && made.protocol === connection.protocol &&
  made.events === connection.events.length && made.eventsCut === connection.eventsCut &&
  made.bytesUp === connection.bytesUp && made.bytesDown === connection.bytesDown &&
  made.closedAt === connection.closedAt && made.context === context && sameTor(made.tor, tor)

/** Whether a connection's text, once made, is kept: open connections change with every chunk. */
export const isSettled = (connection: Connection): boolean => connection.state !== "open"

/** Texts of one kind (a connection's JSON, its HAR entries), each kept beside its connection. */
export class SettledTexts<T> {
  private readonly kept = new WeakMap<Connection, { readonly made: Made; readonly text: T }>()

  /** Whether the connection's kept text was made from what it is now. */
  private good(connection: Connection, tor: TorAttribution | null, context: string): boolean {
    const kept = this.kept.get(connection)
    return kept !== undefined && stillAsMade(kept.made, connection, tor, context)
  }

  /** The connection's text: the kept one when nothing it was made from changed since, else `make`'s. */
  of(connection: Connection, tor: TorAttribution | null, context: string, make: () => T): T {
    if (this.good(connection, tor, context)) return this.kept.get(connection)!.text
    const text = make()
    if (isSettled(connection)) this.kept.set(connection, { made: madeOf(connection, tor, context), text })
    return text
  }

  /**
   * Makes a settled connection's text ahead of a request, unless it is kept and still good;
   * says whether it had anything to do.
   */
  warm(connection: Connection, tor: TorAttribution | null, context: string, make: () => T): boolean {
    if (!isSettled(connection) || this.good(connection, tor, context)) return false
    this.kept.set(connection, { made: madeOf(connection, tor, context), text: make() })
    return true
  }
}

const connectionTexts = new SettledTexts<ListedJson>()

/**
 * Whether anyone asked for a connection's JSON or a HAR entry since the program started.
 * Making text ahead of time is for those who read the report; a MITM nobody reads spends
 * nothing on it (and takes no CPU from what runs beside it after a burst of traffic).
 */
let asked = false
export const textWasAsked = (): boolean => asked
export const textAsked = (): void => {
  asked = true
}

/**
 * A connection's JSON (SPEC §3, §6, §7) as an array item: a settled connection's made once, an
 * open one's made now.
 */
export const connectionText = (connection: Connection, tor: TorAttribution | null): string | ListedJson => {
  textAsked()
  return isSettled(connection)
    ? connectionTexts.of(connection, tor, "", () => listedJson(connectionJson(connection, tor)))
    : JSON.stringify(connectionJson(connection, tor))
}

/** Makes a settled connection's JSON ahead of a request; says whether it had anything to do. */
export const warmConnectionText = (connection: Connection, tor: TorAttribution | null): boolean =>
  connectionTexts.warm(connection, tor, "", () => listedJson(connectionJson(connection, tor)))
