/**
 * The commands `npm start -- NAME …` runs instead of the proxy.
 */
import type { Command } from "./Command.js"
import { compare } from "./Compare.js"
import { view } from "./View.js"

const commands: Readonly<Record<string, Command>> = { view, compare }

/** The command named by the first argument; undefined when it names none (then it is a flag of the proxy). */
export const commandNamed = (name: string | undefined): Command | undefined =>
  name !== undefined && Object.hasOwn(commands, name) ? commands[name] : undefined
