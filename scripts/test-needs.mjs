#!/usr/bin/env node
/**
 * What `npm test` needs from the machine, before any test runs (SPEC §11):
 * Debian's Chromium (browser tests), Tor and tor-gencert (the private Tor network),
 * openssl (self-signed certificates for the TLS tests). As root with apt-get, the
 * missing packages are installed; otherwise it stops at once with one line that
 * says what to install. Nothing is ever downloaded but Debian's packages.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const onPath = (command) =>
  (process.env.PATH ?? "").split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const needs = [
  { what: "Chromium", package: "chromium", present: () => fs.existsSync(chromiumPath) },
  { what: "tor", package: "tor", present: () => onPath("tor") && onPath("tor-gencert") },
  { what: "openssl", package: "openssl", present: () => onPath("openssl") }
]

const missing = () => needs.filter((need) => !need.present())
const packages = (list) => list.map((need) => need.package).join(" ")

const run = (command, args, quiet = false) => {
  const result = spawnSync(command, args, {
    stdio: ["ignore", "ignore", quiet ? "ignore" : "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  })
  return result.status === 0
}

let absent = missing()
if (absent.length === 0) process.exit(0)

const canInstall = process.getuid?.() === 0 && onPath("apt-get")
if (!canInstall) {
  console.error(
    `npm test needs ${absent.map((need) => need.what).join(", ")}: run as root \`apt-get install -y ${packages(absent)}\`, then npm test again`
  )
  process.exit(1)
}

console.error(`npm test: installing ${packages(absent)} from Debian (apt-get) for the browser, Tor and TLS tests`)
const installed = run("apt-get", ["update", "-qq"]) &&
  run("apt-get", ["install", "-y", "-qq", ...absent.map((need) => need.package)])
// The tests start their own private Tor network; a system Tor daemon would try the real network.
if (absent.some((need) => need.package === "tor")) {
  if (onPath("systemctl")) run("systemctl", ["disable", "--now", "tor"], true)
  if (onPath("service")) run("service", ["tor", "stop"], true)
}
absent = missing()
if (!installed || absent.length > 0) {
  console.error(`npm test needs ${absent.map((need) => need.what).join(", ") || "packages apt-get could not install"}: \`apt-get install -y ${packages(absent.length > 0 ? absent : needs)}\` failed here; install them, then npm test again`)
  process.exit(1)
}
