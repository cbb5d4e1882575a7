/**
 * Builds dist/mitm.mjs, the program `npm start` runs: src/main.ts and everything it imports
 * in one ES module, unused library code left out. Started from this bundle MITM takes about
 * half the memory it takes when run from the TypeScript sources through tsx.
 * `node scripts/build.mjs OUTFILE` writes the bundle elsewhere (tests that build their own copy);
 * `node scripts/build.mjs OUTFILE ENTRY` bundles another entry the same way (the benchmarks' stream relay).
 */
import { build } from "esbuild"

await build({
  entryPoints: [process.argv[3] ?? "src/main.ts"],
  outfile: process.argv[2] ?? "dist/mitm.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  // `measure` drives Chromium with it, loaded only then; it stays a package of its own in node_modules.
  external: ["playwright-core"],
  // CommonJS dependencies (socks, ws) call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __mitmCreateRequire } from 'node:module'; const require = __mitmCreateRequire(import.meta.url);" }
})
