import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { describeTorNotice, makeTorCircuits, sourceAddress, type TorCircuits } from "../src/domain/TorCircuits.js"
import {
  type AsyncReply,
  type CircuitStatusEntry,
  decodeCircuitStatus,
  decodeEvent,
  makeControlReplyParser
} from "../src/domain/TorControlProtocol.js"
import { FP, ISO } from "./support/TorLines.js"

// Event lines as a Tor 0.4.9.11 client of the private test network writes them, read through the real decoder.

const pathA = `$${FP.auth2}~auth2,$${FP.auth1}~auth1,$${FP.exit0}~exit0`
const pathB = `$${FP.auth1}~auth1,$${FP.auth2}~auth2,$${FP.exit0}~exit0`
const relaysA = [
  { fingerprint: FP.auth2, nickname: "auth2" },
  { fingerprint: FP.auth1, nickname: "auth1" },
  { fingerprint: FP.exit0, nickname: "exit0" }
]
const target = (port: number) => `127.0.0.1.${FP.exit0}.exit:${port}`

const circuitStatus = [
  `1 BUILT $${FP.auth0}~auth0 BUILD_FLAGS=ONEHOP_TUNNEL,IS_INTERNAL,NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:21:18.419673`,
  `43 BUILT ${pathA} BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_LINKED TIME_CREATED=2026-12-01T14:21:59.512402 CONFLUX_ID=0153DD4BF1EFDB76C95026FE8899E04F CONFLUX_RTT=14058`,
  `44 BUILT ${pathB} BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_LINKED TIME_CREATED=2026-12-01T14:21:59.512534 CONFLUX_ID=0153DD4BF1EFDB76C95026FE8899E04F CONFLUX_RTT=15281`
].join("\n")

const status = (text: string = circuitStatus): ReadonlyArray<CircuitStatusEntry> =>
  Either.getOrThrow(decodeCircuitStatus(text))

/** Feeds Tor's event lines (without "650 ") at the given session time; returns the notices. */
const feed = (tracker: TorCircuits, at: number, ...lines: ReadonlyArray<string>) => {
  const parser = makeControlReplyParser()
  return lines.flatMap((line) =>
    parser.feed(Buffer.from(`650 ${line}\r\n`, "latin1")).flatMap((reply) =>
      tracker.event(Either.getOrThrow(decodeEvent(reply as AsyncReply)), at)
    )
  )
}

const stream21 = {
  new: `STREAM 21 NEW 0 127.0.0.1:43957 SOURCE_ADDR=127.0.0.1:55882 PURPOSE=USER ${ISO}`,
  sent: `STREAM 21 SENTCONNECT 43 ${target(43957)} ${ISO}`,
  remap: `STREAM 21 REMAP 43 ${target(43957)} SOURCE=EXIT ${ISO}`,
  succeeded: `STREAM 21 SUCCEEDED 43 ${target(43957)} ${ISO}`,
  closed: `STREAM 21 CLOSED 43 ${target(43957)} REASON=END REMOTE_REASON=DONE ${ISO}`
}

const attached = (connectionId: number, time: number, stream: string, circuit: string, path: Array<string>) => ({
  _tag: "TorStreamAttached",
  connectionId,
  time,
  stream,
  circuit,
  path
})

describe("attributing streams to connections", () => {
  it("STREAM events after MITM reported the socket: attached at SENTCONNECT, once, with the circuit's path", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    expect(tracker.upstreamOpened(1, "127.0.0.1:55882", 1.0)).toEqual([])
    expect(feed(tracker, 1.01, stream21.new)).toEqual([])
    expect(feed(tracker, 1.02, stream21.sent)).toEqual([attached(1, 1.02, "21", "43", ["auth2", "auth1", "exit0"])])
    expect(feed(tracker, 1.05, stream21.remap, stream21.succeeded, stream21.closed)).toEqual([])
    tracker.upstreamClosed(1, 1.2)
    expect(tracker.torOf(1)).toEqual({ stream: "21", circuit: "43", path: relaysA, circuitBuildTime: null })
    expect(tracker.circuits().find((c) => c.id === "43")).toMatchObject({ connections: [1], conflux: ["44"] })
  })

  it("STREAM events before MITM reported the socket: the notice comes with the report, timed when Tor attached", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    expect(feed(tracker, 2.0, stream21.new)).toEqual([])
    expect(feed(tracker, 2.1, stream21.sent)).toEqual([])
    expect(feed(tracker, 2.2, stream21.succeeded)).toEqual([])
    expect(tracker.unmatchedStreams).toBe(1)
    expect(tracker.torOf(1)).toBeNull()
    expect(tracker.upstreamOpened(1, "127.0.0.1:55882", 2.3)).toEqual([
      attached(1, 2.1, "21", "43", ["auth2", "auth1", "exit0"])
    ])
    expect(tracker.unmatchedStreams).toBe(0)
    expect(tracker.torOf(1)?.circuit).toBe("43")
  })

  it("a connection that closed before Tor's events arrived still gets its stream", () => {
    const tracker = makeTorCircuits()
    tracker.upstreamOpened(1, "127.0.0.1:55882", 3.0)
    tracker.upstreamClosed(1, 3.01)
    expect(feed(tracker, 3.02, stream21.new, stream21.sent)).toEqual([attached(1, 3.02, "21", "43", [])])
  })

  it("a RESOLVE request: NEWRESOLVE carries the source address, SENTRESOLVE the circuit", () => {
    const tracker = makeTorCircuits()
    tracker.upstreamOpened(5, "127.0.0.1:37636", 4.0)
    const notices = feed(
      tracker,
      4.1,
      `STREAM 42 NEWRESOLVE 0 localhost:0 SOURCE_ADDR=127.0.0.1:37636 PURPOSE=DNS_REQUEST ${ISO}`,
      `CIRC 274 LAUNCHED BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_UNLINKED TIME_CREATED=2026-12-01T14:22:01.523498 CONFLUX_ID=CB7B13F1D21C678B6319C62049078F32`,
      `CIRC 274 BUILT ${pathA} BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_UNLINKED TIME_CREATED=2026-12-01T14:22:01.523498 CONFLUX_ID=CB7B13F1D21C678B6319C62049078F32`,
      `STREAM 42 SENTRESOLVE 274 localhost:0 ${ISO}`,
      `STREAM 42 CLOSED 274 localhost:0 REASON=DONE ${ISO}`
    )
    expect(notices).toEqual([attached(5, 4.1, "42", "274", ["auth2", "auth1", "exit0"])])
    expect(tracker.torOf(5)).toEqual({ stream: "42", circuit: "274", path: relaysA, circuitBuildTime: 0 })
  })

  it("two connections whose streams share a circuit are both listed on it", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    tracker.upstreamOpened(2, "127.0.0.1:55894", 5.0)
    tracker.upstreamOpened(3, "127.0.0.1:55906", 5.0)
    const notices = feed(
      tracker,
      5.1,
      `STREAM 22 NEW 0 127.0.0.1:43957 SOURCE_ADDR=127.0.0.1:55894 PURPOSE=USER ${ISO}`,
      `STREAM 22 SENTCONNECT 43 ${target(43957)} ${ISO}`,
      `STREAM 23 NEW 0 127.0.0.1:43957 SOURCE_ADDR=127.0.0.1:55906 PURPOSE=USER ${ISO}`,
      `STREAM 23 SENTCONNECT 43 ${target(43957)} ${ISO}`
    )
    expect(notices.map((n) => [n.connectionId, n._tag === "TorStreamAttached" && n.circuit])).toEqual([[2, "43"], [3, "43"]])
    expect(tracker.circuits().find((c) => c.id === "43")?.connections).toEqual([2, 3])
  })

  it("a failed stream: attached, detached by the exit, then FAILED with CANT_ATTACH and the exit's last reason", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    tracker.upstreamOpened(4, "127.0.0.1:55916", 6.0)
    const notices = [
      ...feed(
        tracker,
        6.0,
        `STREAM 25 NEW 0 127.0.0.1:1 SOURCE_ADDR=127.0.0.1:55916 PURPOSE=USER ${ISO}`,
        `STREAM 25 SENTCONNECT 43 ${target(1)} ${ISO}`
      ),
      ...feed(tracker, 6.05, `STREAM 25 DETACHED 43 127.0.0.1:1 REASON=END REMOTE_REASON=MISC ${ISO}`),
      ...feed(
        tracker,
        126.0,
        `STREAM 25 FAILED 0 127.0.0.1:1 REASON=CANT_ATTACH ${ISO}`,
        `STREAM 25 CLOSED 0 127.0.0.1:1 REASON=CANT_ATTACH ${ISO}`
      )
    ]
    expect(notices).toEqual([
      attached(4, 6.0, "25", "43", ["auth2", "auth1", "exit0"]),
      { _tag: "TorStreamFailed", connectionId: 4, time: 126.0, stream: "25", reason: "CANT_ATTACH", remoteReason: "MISC" }
    ])
    expect(notices.map(describeTorNotice)).toEqual(["circuit 43: auth2 → auth1 → exit0", "CANT_ATTACH (remote MISC)"])
    expect(tracker.torOf(4)?.circuit).toBe("43")
  })

  it("a stream Tor retries on another circuit is attached again, and torOf names the last circuit", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    tracker.upstreamOpened(4, "127.0.0.1:55916", 6.0)
    const notices = feed(
      tracker,
      6.0,
      `STREAM 25 NEW 0 127.0.0.1:80 SOURCE_ADDR=127.0.0.1:55916 PURPOSE=USER ${ISO}`,
      `STREAM 25 SENTCONNECT 43 ${target(80)} ${ISO}`,
      `STREAM 25 DETACHED 43 127.0.0.1:80 REASON=TIMEOUT ${ISO}`,
      `STREAM 25 SENTCONNECT 1 ${target(80)} ${ISO}`,
      `STREAM 25 SUCCEEDED 1 ${target(80)} ${ISO}`
    )
    expect(notices.map((n) => n._tag === "TorStreamAttached" && n.circuit)).toEqual(["43", "1"])
    expect(tracker.torOf(4)).toMatchObject({ circuit: "1", path: [{ nickname: "auth0" }] })
  })

  it("streams of other Tor clients and Tor's own (no SOURCE_ADDR) are never attributed", () => {
    const tracker = makeTorCircuits()
    tracker.upstreamOpened(1, "127.0.0.1:55882", 1)
    feed(
      tracker,
      1,
      `STREAM 27 NEW 0 127.0.0.1.$${FP.auth0}.exit:38209 PURPOSE=DIR_FETCH CLIENT_PROTOCOL=UNKNOWN NYM_EPOCH=0 SESSION_GROUP=-2 ISO_FIELDS=SESSION_GROUP`,
      `STREAM 27 SENTCONNECT 1 127.0.0.1.$${FP.auth0}.exit:38209 CLIENT_PROTOCOL=UNKNOWN`,
      `STREAM 30 NEW 0 example.com:443 SOURCE_ADDR=127.0.0.1:40000 PURPOSE=USER ${ISO}`
    )
    expect(tracker.torOf(1)).toBeNull()
    expect(tracker.unmatchedStreams).toBe(1)
  })

  it("local addresses in Node's forms match Tor's SOURCE_ADDR", () => {
    const tracker = makeTorCircuits()
    tracker.upstreamOpened(1, "::ffff:127.0.0.1:55882", 1)
    tracker.upstreamOpened(2, sourceAddress("::1", 40001), 1)
    feed(
      tracker,
      1,
      stream21.new,
      stream21.sent,
      `STREAM 50 NEW 0 [::1]:80 SOURCE_ADDR=[::1]:40001 PURPOSE=USER ${ISO}`
    )
    expect(tracker.torOf(1)?.stream).toBe("21")
    expect(tracker.torOf(2)?.stream).toBe("50")
    expect(sourceAddress("::ffff:127.0.0.1", 5)).toBe("127.0.0.1:5")
    expect(sourceAddress("127.0.0.1", 5)).toBe("127.0.0.1:5")
  })
})

describe("circuits", () => {
  it("circuits from circuit-status have no launch or build time; their state and path are Tor's", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    expect(tracker.circuits()).toEqual([
      {
        id: "1",
        purpose: "GENERAL",
        state: "built",
        path: [{ fingerprint: FP.auth0, nickname: "auth0" }],
        launchedAt: null,
        builtAt: null,
        buildTime: null,
        closedAt: null,
        reason: null,
        connections: [],
        rttMs: null,
        conflux: []
      },
      expect.objectContaining({ id: "43", purpose: "CONFLUX_LINKED", path: relaysA, conflux: ["44"] }),
      expect.objectContaining({ id: "44", conflux: ["43"] })
    ])
  })

  it("LAUNCHED at t and BUILT at t + 0.84 give buildTime 0.84; CIRC_BW gives the RTT", () => {
    const tracker = makeTorCircuits()
    feed(tracker, 10.0, "CIRC 49 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:22:00.868824")
    feed(tracker, 10.3, `CIRC 49 EXTENDED $${FP.auth2}~auth2 BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL SOCKS_USERNAME="alice" SOCKS_PASSWORD="p"`)
    expect(tracker.circuits()[0]).toMatchObject({ state: "launched", path: [{ nickname: "auth2" }], builtAt: null })
    feed(tracker, 10.84, `CIRC 49 BUILT ${pathA} BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL SOCKS_USERNAME="alice" SOCKS_PASSWORD="p"`)
    feed(
      tracker,
      11,
      "CIRC_BW ID=49 READ=3054 WRITTEN=2545 TIME=2026-12-01T14:22:01.727183 DELIVERED_READ=315 OVERHEAD_READ=2673 DELIVERED_WRITTEN=569 OVERHEAD_WRITTEN=1921 SS=1 CWND=124 RTT=37 MIN_RTT=21",
      "CIRC_BW ID=49 READ=509 WRITTEN=0 TIME=2026-12-01T14:22:02.1 DELIVERED_READ=0 OVERHEAD_READ=0 DELIVERED_WRITTEN=0 OVERHEAD_WRITTEN=0"
    )
    expect(tracker.circuits()[0]).toMatchObject({
      id: "49",
      state: "built",
      launchedAt: 10,
      builtAt: 10.84,
      buildTime: 0.84,
      rttMs: 37,
      path: relaysA
    })
    tracker.upstreamOpened(9, "127.0.0.1:55908", 12)
    feed(
      tracker,
      12,
      `STREAM 24 NEW 0 127.0.0.1:43957 SOURCE_ADDR=127.0.0.1:55908 PURPOSE=USER SOCKS_USERNAME="alice" SOCKS_PASSWORD="p" ${ISO}`,
      `STREAM 24 SENTCONNECT 49 ${target(43957)} ${ISO}`
    )
    expect(tracker.torOf(9)?.circuitBuildTime).toBe(0.84)
  })

  it("a circuit that failed (TIMEOUT), was kept to measure and then closed stays failed with the failure's reason", () => {
    const tracker = makeTorCircuits()
    feed(tracker, 1, "CIRC 133 LAUNCHED BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL TIME_CREATED=2026-12-01T14:22:01.243518")
    feed(tracker, 2, `CIRC 133 FAILED ${pathA} BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL REASON=TIMEOUT`)
    expect(tracker.circuits()[0]).toMatchObject({ state: "failed", reason: "TIMEOUT", closedAt: null })
    feed(
      tracker,
      2.5,
      `CIRC_MINOR 133 PURPOSE_CHANGED ${pathA} BUILD_FLAGS=NEED_CAPACITY PURPOSE=MEASURE_TIMEOUT OLD_PURPOSE=GENERAL`,
      `CIRC 133 BUILT ${pathA} BUILD_FLAGS=NEED_CAPACITY PURPOSE=MEASURE_TIMEOUT`
    )
    feed(tracker, 3, `CIRC 133 CLOSED ${pathA} BUILD_FLAGS=NEED_CAPACITY PURPOSE=MEASURE_TIMEOUT REASON=FINISHED`)
    expect(tracker.circuits()[0]).toMatchObject({
      state: "failed",
      purpose: "MEASURE_TIMEOUT",
      reason: "TIMEOUT",
      launchedAt: 1,
      builtAt: 2.5,
      closedAt: 3
    })
  })

  it("a circuit that closes normally is closed with Tor's reason", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    feed(tracker, 7, `CIRC 1 CLOSED $${FP.auth0}~auth0 PURPOSE=GENERAL REASON=FINISHED`)
    expect(tracker.circuits()[0]).toMatchObject({ id: "1", state: "closed", closedAt: 7, reason: "FINISHED" })
  })

  it("conflux: legs with the same CONFLUX_ID list each other, also after CLOSED events without the id", () => {
    const tracker = makeTorCircuits()
    const id = "CONFLUX_ID=CB7B13F1D21C678B6319C62049078F32"
    feed(
      tracker,
      1,
      `CIRC 274 LAUNCHED BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_UNLINKED ${id}`,
      `CIRC 275 LAUNCHED BUILD_FLAGS=NEED_CAPACITY,NEED_UPTIME PURPOSE=CONFLUX_UNLINKED ${id}`,
      "CIRC 276 LAUNCHED PURPOSE=GENERAL"
    )
    feed(
      tracker,
      1.2,
      `CIRC 275 BUILT ${pathB} PURPOSE=CONFLUX_UNLINKED ${id}`,
      `CIRC 274 BUILT ${pathA} PURPOSE=CONFLUX_UNLINKED ${id}`,
      `CIRC_MINOR 274 PURPOSE_CHANGED ${pathA} PURPOSE=CONFLUX_LINKED ${id} OLD_PURPOSE=CONFLUX_UNLINKED`,
      `CIRC_MINOR 275 PURPOSE_CHANGED ${pathB} PURPOSE=CONFLUX_LINKED ${id} OLD_PURPOSE=CONFLUX_UNLINKED`
    )
    const view = () => tracker.circuits().map((c) => [c.id, c.purpose, c.conflux])
    expect(view()).toEqual([
      ["274", "CONFLUX_LINKED", ["275"]],
      ["275", "CONFLUX_LINKED", ["274"]],
      ["276", "GENERAL", []]
    ])
    feed(tracker, 9, `CIRC 274 CLOSED ${pathA} PURPOSE=CONFLUX_LINKED REASON=FINISHED`)
    expect(view()[0]).toEqual(["274", "CONFLUX_LINKED", ["275"]])
  })

  it("a stream on a conflux leg names that leg; the leg lists its partner", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    tracker.upstreamOpened(1, "127.0.0.1:55882", 1)
    feed(tracker, 1, stream21.new, stream21.sent)
    expect(tracker.torOf(1)?.circuit).toBe("43")
    expect(tracker.circuits().filter((c) => c.connections.length > 0).map((c) => [c.id, c.conflux])).toEqual([
      ["43", ["44"]]
    ])
  })

  it("a new circuit-status (after a reconnect) closes the open circuits it no longer lists, time unknown", () => {
    const tracker = makeTorCircuits()
    tracker.watchStarted()
    tracker.circuitStatus(status())
    tracker.watchStarted()
    tracker.circuitStatus(status(circuitStatus.split("\n")[0]))
    expect(tracker.circuits().map((c) => [c.id, c.state, c.closedAt])).toEqual([
      ["1", "built", null],
      ["43", "closed", null],
      ["44", "closed", null]
    ])
  })

  it("a circuit Tor spoke of after SETEVENTS stays open although the circuit-status reply does not list it", () => {
    const tracker = makeTorCircuits()
    tracker.watchStarted()
    feed(tracker, 1, "CIRC 50 LAUNCHED PURPOSE=GENERAL")
    tracker.circuitStatus(status())
    expect(tracker.circuits().map((c) => [c.id, c.state, c.launchedAt])).toEqual([
      ["1", "built", null],
      ["43", "built", null],
      ["44", "built", null],
      ["50", "launched", 1]
    ])
  })

  it("in stream order: a snapshot overrides what older events said, and events after it override the snapshot", () => {
    const tracker = makeTorCircuits()
    tracker.watchStarted()
    // Before Tor's circuit-status reply: circuit 43 was still unlinked.
    feed(tracker, 1, `CIRC 43 BUILT ${pathA} PURPOSE=CONFLUX_UNLINKED`)
    tracker.circuitStatus(status())
    expect(tracker.circuits().find((c) => c.id === "43")).toMatchObject({ purpose: "CONFLUX_LINKED" })
    // After the reply (the control port holds these until the snapshot is applied).
    feed(tracker, 2, `CIRC 43 BUILT ${pathB} PURPOSE=GENERAL`, "CIRC 44 CLOSED REASON=FINISHED")
    const byId = new Map(tracker.circuits().map((c) => [c.id, c]))
    expect(byId.get("43")).toMatchObject({ state: "built", purpose: "GENERAL" })
    expect(byId.get("43")!.path.map((relay) => relay.nickname)).toEqual(["auth1", "auth2", "exit0"])
    expect(byId.get("44")).toMatchObject({ state: "closed", closedAt: 2, reason: "FINISHED" })
  })

  it("a restarted Tor reuses circuit ids: the new circuit replaces the old, old connections keep the old path", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    tracker.upstreamOpened(1, "127.0.0.1:55882", 1)
    feed(tracker, 1, stream21.new, stream21.sent, stream21.closed)
    feed(tracker, 2, `CIRC 43 CLOSED ${pathA} PURPOSE=CONFLUX_LINKED REASON=FINISHED`)
    feed(tracker, 50, "CIRC 43 LAUNCHED PURPOSE=GENERAL")
    feed(tracker, 50.5, `CIRC 43 BUILT $${FP.auth0}~auth0,$${FP.auth1}~auth1,$${FP.exit1}~exit1 PURPOSE=GENERAL`)
    expect(tracker.circuits().find((c) => c.id === "43")).toMatchObject({
      state: "built",
      launchedAt: 50,
      buildTime: 0.5,
      connections: [],
      conflux: []
    })
    expect(tracker.torOf(1)?.path).toEqual(relaysA)
  })
})

describe("bounds", () => {
  it("ended circuits beyond the cap are evicted oldest first; open ones stay", () => {
    const tracker = makeTorCircuits({ maxEndedCircuits: 3 })
    feed(tracker, 0, "CIRC 100 LAUNCHED PURPOSE=GENERAL")
    for (let id = 1; id <= 5; id++) {
      feed(tracker, id, `CIRC ${id} LAUNCHED PURPOSE=GENERAL`, `CIRC ${id} CLOSED PURPOSE=GENERAL REASON=FINISHED`)
    }
    expect(tracker.circuits().map((c) => c.id)).toEqual(["3", "4", "5", "100"])
  })

  it("an evicted conflux leg is no longer listed by its partner", () => {
    const tracker = makeTorCircuits({ maxEndedCircuits: 1 })
    feed(tracker, 0, "CIRC 1 LAUNCHED CONFLUX_ID=AA", "CIRC 2 LAUNCHED CONFLUX_ID=AA")
    feed(tracker, 1, "CIRC 1 CLOSED REASON=FINISHED", "CIRC 3 LAUNCHED", "CIRC 3 CLOSED REASON=FINISHED")
    expect(tracker.circuits().map((c) => [c.id, c.conflux])).toEqual([["2", []], ["3", []]])
  })

  it("unmatched streams are capped, oldest dropped first", () => {
    const tracker = makeTorCircuits({ maxUnmatchedStreams: 2 })
    for (const port of [40001, 40002, 40003]) {
      feed(tracker, 1, `STREAM ${port} NEW 0 a:80 SOURCE_ADDR=127.0.0.1:${port} PURPOSE=USER`, `STREAM ${port} SENTCONNECT 1 a:80`)
    }
    expect(tracker.unmatchedStreams).toBe(2)
    expect(tracker.upstreamOpened(1, "127.0.0.1:40001", 1)).toEqual([])
    expect(tracker.upstreamOpened(3, "127.0.0.1:40003", 1)).toHaveLength(1)
  })

  it("an unmatched stream waits for its connection for the match window only", () => {
    const tracker = makeTorCircuits({ matchWindow: 30 })
    feed(tracker, 0, `STREAM 1 NEW 0 a:80 SOURCE_ADDR=127.0.0.1:40001`, `STREAM 2 NEW 0 a:80 SOURCE_ADDR=127.0.0.1:40002`)
    tracker.upstreamOpened(1, "127.0.0.1:40001", 29)
    expect(tracker.torOf(1)).toEqual({ stream: "1", circuit: null, path: [], circuitBuildTime: null })
    tracker.upstreamOpened(2, "127.0.0.1:40002", 31)
    expect(tracker.torOf(2)).toBeNull()
    expect(tracker.unmatchedStreams).toBe(0)
  })

  it("a closed connection without a stream is matched within the window only", () => {
    const tracker = makeTorCircuits({ matchWindow: 30 })
    tracker.upstreamOpened(1, "127.0.0.1:40001", 0)
    tracker.upstreamClosed(1, 1)
    feed(tracker, 40, "STREAM 1 NEW 0 a:80 SOURCE_ADDR=127.0.0.1:40001", "STREAM 1 SENTCONNECT 7 a:80")
    expect(tracker.torOf(1)).toBeNull()
  })

  it("forgetConnection drops the attribution and the circuit no longer lists the connection", () => {
    const tracker = makeTorCircuits()
    tracker.circuitStatus(status())
    tracker.upstreamOpened(1, "127.0.0.1:55882", 1)
    feed(tracker, 1, stream21.new, stream21.sent)
    tracker.forgetConnection(1)
    expect(tracker.torOf(1)).toBeNull()
    expect(tracker.circuits().find((c) => c.id === "43")?.connections).toEqual([])
    expect(feed(tracker, 2, stream21.succeeded)).toEqual([])
  })

  it("closed connections beyond the cap are forgotten oldest first", () => {
    const tracker = makeTorCircuits({ maxClosedConnections: 2 })
    for (const id of [1, 2, 3]) {
      tracker.upstreamOpened(id, `127.0.0.1:${40000 + id}`, id)
      feed(tracker, id, `STREAM ${id} NEW 0 a:80 SOURCE_ADDR=127.0.0.1:${40000 + id}`)
      tracker.upstreamClosed(id, id)
    }
    expect([1, 2, 3].map((id) => tracker.torOf(id)?.stream ?? null)).toEqual([null, "2", "3"])
  })

  it("reset forgets connections and ended circuits; open circuits stay without times", () => {
    const tracker = makeTorCircuits()
    feed(tracker, 1, "CIRC 7 LAUNCHED PURPOSE=GENERAL", "CIRC 8 LAUNCHED PURPOSE=GENERAL", "CIRC 8 FAILED REASON=TIMEOUT")
    feed(tracker, 2, `CIRC 7 BUILT ${pathA} PURPOSE=GENERAL`)
    tracker.upstreamOpened(1, "127.0.0.1:55882", 3)
    feed(tracker, 3, stream21.new, "STREAM 21 SENTCONNECT 7 a:80")
    tracker.reset()
    expect(tracker.torOf(1)).toBeNull()
    expect(tracker.circuits()).toEqual([
      expect.objectContaining({ id: "7", state: "built", launchedAt: null, builtAt: null, connections: [] })
    ])
  })
})
