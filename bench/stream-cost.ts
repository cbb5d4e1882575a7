/**
 * What each Effect 3 operator a Stream relay needs costs, per use, in this process: the fixed
 * cost of running a Stream (which a relay pays per connection and direction), of the handshake's
 * Sink, of a fork, and the cost of one pull of a socket-like source (paid per chunk). Beside
 * each, the same work as a plain Effect or a plain callback, so the Stream's own share shows.
 *
 *   npx tsx bench/stream-cost.ts [--runs 3] [--count 5000]
 *
 * Each case is run `count` times after as many warm-up uses, `runs` times; medians of CPU time
 * (user + system) and wall time per use, in µs. Then one pass under V8's sampling heap profiler
 * (objects collected since counted too) gives the bytes allocated per use. The pull cases run
 * 100 pulls per Stream run, so a hundredth of a run's fixed cost is in each pull's figure.
 * Output: a table, then one JSON line, on stdout.
 */
import { Channel, Chunk, Effect, Option, Sink, Stream } from "effect"
import { Session } from "node:inspector/promises"
import { median, parseCommonFlags, parseRuns, round, runMain, table } from "./common.js"

const USAGE = `Usage: npx tsx bench/stream-cost.ts [flags]

  --count N          uses per case and run                                                    [5000]
  --runs N           runs of every case; medians are reported                                 [3]
  --help             this text
`

/** A source like the relay's socket adapter: each pull waits for a callback (here setImmediate) to hand it a chunk. */
const callbackSource = (chunks: number) => {
  let left = chunks
  const chunk = Chunk.of(new Uint8Array(16))
  const pull = Effect.async<Chunk.Chunk<Uint8Array>, Option.Option<never>>((resume) => {
    if (left-- === 0) return resume(Effect.fail(Option.none()))
    setImmediate(() => resume(Effect.succeed(chunk)))
  })
  return { pull, stream: Stream.repeatEffectChunkOption(pull) }
}

/** The same source without Effect: a callback per chunk. */
const plainCallbacks = (chunks: number): Promise<void> =>
  new Promise((done) => {
    let left = chunks
    const next = (): void => {
      if (left-- === 0) return done()
      setImmediate(next)
    }
    next()
  })

const PULLS = 100

interface Case {
  readonly name: string
  /** What a relay pays it for. */
  readonly per: string
  readonly run: () => Promise<unknown>
  /** Uses per run of `run` (a case may do many pulls in one run). */
  readonly uses?: number
}

const three = Stream.fromIterable([new Uint8Array(1), new Uint8Array(1), new Uint8Array(1)]).pipe(Stream.rechunk(1))

const CASES: ReadonlyArray<Case> = [
  { name: "Effect.runPromise(Effect.void)", per: "baseline: starting a fiber", run: () => Effect.runPromise(Effect.void) },
  {
    name: "Effect.fork + await",
    per: "a second direction's fiber",
    run: () => Effect.runPromise(Effect.flatMap(Effect.fork(Effect.void), (f) => f.await))
  },
  {
    name: "Effect.scoped(acquireRelease)",
    per: "a connection's scope",
    run: () => Effect.runPromise(Effect.scoped(Effect.acquireRelease(Effect.void, () => Effect.void)))
  },
  { name: "Channel.runDrain(Channel.void)", per: "running any channel", run: () => Effect.runPromise(Channel.runDrain(Channel.void)) },
  { name: "Stream.runDrain(Stream.empty)", per: "running any stream", run: () => Effect.runPromise(Stream.runDrain(Stream.empty)) },
  {
    name: "Stream.run(3 chunks, Sink.forEachChunk)",
    per: "one direction of a short connection",
    run: () => Effect.runPromise(Stream.run(three, Sink.forEachChunk(() => Effect.void)))
  },
  {
    name: "Stream.run(3 chunks, Sink.fold)",
    per: "the SOCKS handshake as a Sink",
    run: () => Effect.runPromise(Stream.run(three, Sink.fold(0, (n) => n < 3, (n) => n + 1)))
  },
  {
    name: "the same 3 chunks as an Effect loop",
    per: "the work without a Stream",
    run: () => Effect.runPromise(Effect.forEach([1, 2, 3], () => Effect.void, { discard: true }))
  },
  {
    name: "a pull through a Stream",
    per: "each chunk (callback source)",
    uses: PULLS,
    run: () => Effect.runPromise(Stream.runForEachChunk(callbackSource(PULLS).stream, () => Effect.void))
  },
  {
    name: "a pull as a plain Effect loop",
    per: "each chunk, no Stream",
    uses: PULLS,
    run: () => {
      const { pull } = callbackSource(PULLS)
      const loop: Effect.Effect<void> = Effect.matchEffect(pull, { onFailure: () => Effect.void, onSuccess: () => loop })
      return Effect.runPromise(loop)
    }
  },
  { name: "a callback, no Effect", per: "each chunk, as MITM relays", uses: PULLS, run: () => plainCallbacks(PULLS) }
]

interface Sample {
  readonly cpuUs: number
  readonly wallUs: number
}

const repeat = async (c: Case, count: number): Promise<number> => {
  const runs = Math.max(1, Math.round(count / (c.uses ?? 1)))
  for (let i = 0; i < runs; i++) await c.run()
  return runs * (c.uses ?? 1)
}

const measure = async (c: Case, count: number): Promise<Sample> => {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const uses = await repeat(c, count)
  const wallUs = ((performance.now() - t0) * 1000) / uses
  const cpu = process.cpuUsage(cpu0)
  return { cpuUs: (cpu.user + cpu.system) / uses, wallUs }
}

interface SamplingNode {
  readonly selfSize: number
  readonly children: ReadonlyArray<SamplingNode>
}
const totalSize = (n: SamplingNode): number => n.children.reduce((sum, c) => sum + totalSize(c), n.selfSize)

/** Bytes allocated per use, collected or not, from V8's sampling heap profiler (every 1 KiB on average). */
const allocatedPerUse = async (session: Session, c: Case, count: number): Promise<number> => {
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  })
  const uses = await repeat(c, count)
  const { profile } = await session.post("HeapProfiler.stopSampling")
  return totalSize(profile.head as SamplingNode) / uses
}

const main = async (): Promise<void> => {
  let count = 5000
  const options = parseCommonFlags(process.argv.slice(2), {
    usage: USAGE,
    onValue: (name, value) => {
      if (name !== "--count") return false
      count = parseRuns(value, name)
      return true
    }
  })
  const samples = new Map<string, Array<Sample>>(CASES.map((c) => [c.name, []]))
  for (const c of CASES) await measure(c, count) // warm-up: JIT and caches
  for (let run = 0; run < options.runs; run++) {
    for (const c of CASES) samples.get(c.name)!.push(await measure(c, count))
  }
  const session = new Session()
  session.connect()
  const allocation = new Map<string, number>()
  for (const c of CASES) allocation.set(c.name, await allocatedPerUse(session, c, Math.ceil(count / 5)))
  session.disconnect()
  const med = (name: string, field: keyof Sample) => median(samples.get(name)!.map((s) => s[field]))
  const result = {
    scenario: "stream-cost",
    count,
    runs: options.runs,
    cases: Object.fromEntries(CASES.map((c) => [c.name, {
      per: c.per,
      cpuUs: round(med(c.name, "cpuUs"), 1),
      wallUs: round(med(c.name, "wallUs"), 1),
      allocatedKiB: round(allocation.get(c.name)! / 1024, 1)
    }]))
  }
  process.stdout.write(
    `Effect ${(await import("effect/package.json", { with: { type: "json" } })).default.version}: cost per use, median of ${options.runs} runs of ${count} uses\n` +
      table(
        ["operator", "a relay pays it for", "CPU µs", "wall µs", "KiB allocated"],
        CASES.map((c) => [c.name, c.per, result.cases[c.name].cpuUs, result.cases[c.name].wallUs, result.cases[c.name].allocatedKiB])
      ) + "\n"
  )
  process.stdout.write(JSON.stringify(result) + "\n")
}

runMain(import.meta.url, main)
