import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { isLoopback } from "../src/domain/Address.js"
import { parseFlags, torControlAddress } from "../src/domain/Flags.js"
import { defaultSettings } from "../src/domain/Settings.js"
import * as os from "node:os"
import * as path from "node:path"

const run = (argv: Array<string>) => {
  const result = Either.getOrThrow(parseFlags(argv))
  if (result._tag !== "Run") throw new Error("expected a run")
  return result.flags
}

const failure = (argv: Array<string>) => Either.flip(parseFlags(argv)).pipe(Either.getOrThrow).message

describe("command-line flags", () => {
  it("defaults follow SPEC §1", () => {
    expect(run([])).toEqual({
      listen: { host: "127.0.0.1", port: 9000 },
      report: { host: "127.0.0.1", port: 9001 },
      settings: defaultSettings,
      maxClients: 1024,
      harOut: undefined,
      allowRemoteClients: false,
      torControl: "auto",
      torControlPassword: undefined,
      sessionsDir: path.join(os.homedir(), ".local", "share", "mitm", "sessions")
    })
    expect(run(["--allow-remote-clients"]).allowRemoteClients).toBe(true)
    expect(isLoopback("127.0.0.1") && isLoopback("::1") && isLoopback("::ffff:127.0.0.1")).toBe(true)
    expect(isLoopback("192.168.1.2") || isLoopback("::ffff:10.0.0.1") || isLoopback("0.0.0.0")).toBe(false)
    expect(run(["--max-clients", "8"]).maxClients).toBe(8)
    expect(failure(["--max-clients", "0"])).toMatch(/^--max-clients: expected a whole number/)
  })

  it("--sessions-dir: $XDG_DATA_HOME/mitm/sessions, else ~/.local/share/mitm/sessions; a relative XDG_DATA_HOME is ignored", () => {
    const dir = (argv: Array<string>, env: Record<string, string>) => {
      const result = Either.getOrThrow(parseFlags(argv, env))
      return result._tag === "Run" ? result.flags.sessionsDir : undefined
    }
    expect(dir([], { XDG_DATA_HOME: "/data", HOME: "/home/u" })).toBe("/data/mitm/sessions")
    expect(dir([], { HOME: "/home/u" })).toBe("/home/u/.local/share/mitm/sessions")
    expect(dir([], { XDG_DATA_HOME: "relative", HOME: "/home/u" })).toBe("/home/u/.local/share/mitm/sessions")
    expect(dir(["--sessions-dir", "/tmp/s"], { HOME: "/home/u" })).toBe("/tmp/s")
    expect(failure(["--sessions-dir", ""])).toBe("--sessions-dir: expected a directory path")
    expect(failure(["--sessions-dir"])).toBe("--sessions-dir: needs a value (a directory path)")
  })

  it("the Tor control port: auto is the SOCKS upstream's port + 1 and off for direct; an address, off, and a password from the flag or the environment", () => {
    expect(torControlAddress(run([]))).toEqual({ host: "127.0.0.1", port: 9051 })
    expect(torControlAddress(run(["--upstream", "socks5://127.0.0.1:9150"]))).toEqual({ host: "127.0.0.1", port: 9151 })
    expect(torControlAddress(run(["--upstream", "direct"]))).toBe("off")
    expect(torControlAddress(run(["--tor-control", "127.0.0.2:7000"]))).toEqual({ host: "127.0.0.2", port: 7000 })
    expect(torControlAddress(run(["--tor-control=off"]))).toBe("off")
    expect(run(["--tor-control-password", "s3cret"]).torControlPassword).toBe("s3cret")
    const fromEnv = parseFlags([], { MITM_TOR_CONTROL_PASSWORD: "from env" })
    expect(Either.isRight(fromEnv) && fromEnv.right._tag === "Run" && fromEnv.right.flags.torControlPassword).toBe("from env")
    expect(failure(["--tor-control", "nine"])).toMatch(/^--tor-control: expected HOST:PORT, auto or off/)
  })

  it("every flag is taken, in both --flag value and --flag=value forms", () => {
    const flags = run([
      "--listen", "127.0.0.1:0", "--upstream=direct", "--report", "off", "--headers", "all",
      "--socks-delay", "200ms..800ms", "--http-delay=250ms", "--max-connections", "50",
      "--bandwidth", "250KiB/s", "--bandwidth-total=2Mbit/s"
    ])
    expect(flags.listen).toEqual({ host: "127.0.0.1", port: 0 })
    expect(flags.report).toBeUndefined()
    expect(flags.settings).toEqual({
      headers: "all",
      upstream: { _tag: "Direct" },
      socksDelay: { _tag: "Range", minMillis: 200, maxMillis: 800 },
      httpDelay: { _tag: "Fixed", millis: 250 },
      maxConnections: 50,
      bandwidth: 250 * 1024,
      bandwidthTotal: 250000,
      otlp: null,
      otlpEncoding: "protobuf",
      vantage: defaultSettings.vantage
    })
  })

  it("a bad value names the flag and what it accepts, in one line", () => {
    expect(failure(["--socks-delay", "soon"])).toBe(
      `--socks-delay: expected 0, a duration like 250ms or 1.5s, a range like 200ms..800ms, or per-host rules like *.onion=2s,example.com=100ms..400ms,*=0, got "soon"`
    )
    expect(failure(["--max-connections", "many"])).toMatch(/^--max-connections: expected a whole number/)
    expect(failure(["--listen", "9000"])).toMatch(/^--listen: expected HOST:PORT/)
    expect(failure(["--upstream", "tor"])).toMatch(/^--upstream: expected "direct" or socks5:\/\//)
    expect(failure(["--colour"])).toBe("--colour: unknown flag; see --help")
    expect(failure(["--headers"])).toMatch(/^--headers: needs a value/)
    for (const message of [failure(["--socks-delay", "soon"]), failure(["--colour"])]) expect(message).not.toContain("\n")
  })

  it("--help gives the help text with the defaults", () => {
    const result = Either.getOrThrow(parseFlags(["--help"]))
    expect(result._tag).toBe("Help")
    if (result._tag === "Help") {
      expect(result.text).toContain("--listen HOST:PORT")
      expect(result.text).toContain("[127.0.0.1:9000]")
      expect(result.text).toContain("[socks5://127.0.0.1:9050]")
    }
  })
})
