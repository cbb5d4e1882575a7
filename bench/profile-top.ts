/**
 * Summarizes V8 CPU profiles (`--cpu-prof` output, e.g. from `npx tsx bench/connrate.ts
 * --cpu-prof /tmp/prof --peers mitm`): the functions with the most self time, and the same
 * grouped by file (src/…, node_modules/<package>, node: internals, (garbage collector), …).
 *
 *   npx tsx bench/profile-top.ts /tmp/prof [--top 25]      # every *.cpuprofile in the folder, merged
 *   npx tsx bench/profile-top.ts /tmp/prof/CPU.….cpuprofile
 *   npx tsx bench/profile-top.ts /tmp/prof --last 10      # only the last 10 s of each profile
 *
 * MITM runs as the bundle dist/mitm.mjs (the stream relay as dist/stream-relay.mjs); their frames
 * are mapped back to the sources (src/…, node_modules/…) through the bundle's own map. Effect's
 * frames are grouped by its module (effect/…/channelExecutor, fiberRuntime, sink, …): which
 * part of the runtime the time goes to.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { SourceMap } from "node:module"
import * as path from "node:path"
import { ROOT, fail, parseRuns, table } from "./common.js"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber?: number
}
interface Node {
  readonly id: number
  readonly children?: ReadonlyArray<number>
  readonly callFrame: CallFrame
}

/** Source maps of the bundles in dist/ (MITM's, the stream relay's), read when a profile names them. */
const maps = new Map<string, SourceMap | undefined>()
const mapOf = (file: string): SourceMap | undefined => {
  if (!file.startsWith(path.join(ROOT, "dist") + path.sep)) return undefined
  if (!maps.has(file)) maps.set(file, existsSync(`${file}.map`) ? new SourceMap(JSON.parse(readFileSync(`${file}.map`, "utf8"))) : undefined)
  return maps.get(file)
}

/** A frame of a bundle as the source file and line it came from; other frames as they are. */
const original = (frame: CallFrame): CallFrame => {
  const bundle = frame.url.replace(/^file:\/\//, "")
  const map = mapOf(bundle)
  if (map === undefined) return frame
  const entry = map.findEntry(frame.lineNumber, frame.columnNumber ?? 0) as {
    originalSource?: string
    originalLine?: number
  }
  if (entry.originalSource === undefined) return frame
  const source = path.resolve(path.dirname(bundle), entry.originalSource.replace(/^file:\/\//, ""))
  return { functionName: frame.functionName, url: source, lineNumber: entry.originalLine ?? 0 }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly endTime: number
}

const args = process.argv.slice(2)
let top = 25
let lastSeconds = Infinity
const inputs: Array<string> = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--top") top = parseRuns(args[++i] ?? fail("--top: missing value"), "--top")
  else if (args[i] === "--last") lastSeconds = Number(args[++i] ?? fail("--last: missing value"))
  else inputs.push(args[i])
}
if (inputs.length === 0) fail("usage: npx tsx bench/profile-top.ts DIR|FILE.cpuprofile [--top N]")
const files = inputs.flatMap((p) =>
  statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(p, f)) : [p]
)
if (files.length === 0) fail(`no .cpuprofile files in ${inputs.join(", ")}`)

const where = (url: string): string => {
  if (url === "") return ""
  const file = url.replace(/^file:\/\//, "")
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(file)
  if (nm) return `${nm[1]}/${nm[2]}`
  return file.startsWith(ROOT) ? path.relative(ROOT, file) : file
}
const group = (url: string, name: string): string => {
  if (url === "") return name.startsWith("(") ? name : "(native)"
  const file = url.replace(/^file:\/\//, "")
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(file)
  if (nm) return nm[1] === "effect" ? `effect/${nm[2].replace(/^(src|dist\/(esm|cjs))\//, "").replace(/\.[jt]s$/, "")}` : nm[1]
  if (file.startsWith("node:")) return "node: internals"
  return file.startsWith(ROOT) ? path.relative(ROOT, file) : file
}

const byFunction = new Map<string, number>()
const byGroup = new Map<string, number>()
/** Every sample charged to the innermost src/ frame on its stack (self + what it called). */
const bySrc = new Map<string, number>()
let total = 0
let idle = 0
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const nodes = new Map(profile.nodes.map((n) => [n.id, { ...n, callFrame: original(n.callFrame) }]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const srcFrame = (id: number): string => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = nodes.get(cur)!.callFrame
      const file = f.url.replace(/^file:\/\//, "")
      if (file.startsWith(path.join(ROOT, "src"))) return `${f.functionName || "(anonymous)"}  ${path.relative(ROOT, file)}:${f.lineNumber + 1}`
    }
    return "(no src/ frame on the stack)"
  }
  // sample times from the end backwards, for --last
  const at: Array<number> = new Array(profile.samples.length)
  let t = profile.endTime
  for (let i = profile.samples.length - 1; i >= 0; i--) {
    at[i] = t
    t -= profile.timeDeltas[i] ?? 0
  }
  profile.samples.forEach((id, i) => {
    if (profile.endTime - at[i] > lastSeconds * 1e6) return
    const dt = profile.timeDeltas[i] ?? 0
    const n = nodes.get(id)
    if (n === undefined) return
    const { functionName, url, lineNumber } = n.callFrame
    if (functionName === "(idle)") {
      idle += dt
      return
    }
    bySrc.set(srcFrame(id), (bySrc.get(srcFrame(id)) ?? 0) + dt)
    const key = `${functionName || "(anonymous)"}  ${where(url)}${url ? `:${lineNumber + 1}` : ""}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt)
    const g = group(url, functionName)
    byGroup.set(g, (byGroup.get(g) ?? 0) + dt)
    total += dt
  })
}
const rows = (m: Map<string, number>, n: number) =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => [k, (us / 1000).toFixed(0), `${((us / total) * 100).toFixed(1)}%`])
process.stdout.write(
  `${files.length} profile(s), ${((total + idle) / 1e6).toFixed(1)} s sampled, ${(total / 1e6).toFixed(1)} s busy (percentages of busy time)\n\nself time by function\n` +
    table(["function  file:line", "ms", "%"], rows(byFunction, top)) +
    `\n\nself time by file / package\n` +
    table(["file or package", "ms", "%"], rows(byGroup, 15)) +
    `\n\ntime charged to the innermost src/ frame on the stack (self + callees)\n` +
    table(["src function  file:line", "ms", "%"], rows(bySrc, 12)) +
    "\n"
)
