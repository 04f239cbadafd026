#!/usr/bin/env node
/**
 * `ipc-bus`: see and clean buses from the shell (ls, inspect, top, gc, rm).
 * Everything it reads it reads without joining: segments are attached
 * read-only and copied (./segments.ts). Exit codes: 0 ok, 1 the command
 * failed (why on stderr), 2 wrong usage.
 */
import { readFileSync } from 'node:fs'
import { Failure, UsageError, helpText, parse, type CommandSpec, type Parsed } from './args.js'
import { NoSuchTarget } from './buses.js'
import { SegmentProblem } from './segments.js'
import { stdio, type Output } from './commands/output.js'
import * as gc from './commands/gc.js'
import * as inspect from './commands/inspect.js'
import * as ls from './commands/ls.js'
import * as rm from './commands/rm.js'
import * as top from './commands/top.js'

interface Command {
  spec: CommandSpec
  run(parsed: Parsed, out: Output): number | Promise<number>
}

const COMMANDS: readonly Command[] = [ls, inspect, top, gc, rm]

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length))
  return [
    'Usage: ipc-bus <command> [options]',
    '',
    'See and clean @ipc/bus buses on this host, without joining them.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary}`),
    '',
    "Each command takes --help, and --json for scripts. 'ipc-bus help <command>' is the same as --help.",
    'Exit codes: 0 ok, 1 the command failed (message on stderr), 2 wrong usage.',
  ].join('\n')
}

export async function main(argv: string[], out: Output = stdio): Promise<number> {
  const [name, ...rest] = argv
  try {
    if (name === undefined) {
      out.warn(`ipc-bus: a command is needed\n\n${usage()}`)
      return 2
    }
    if (name === '--help' || name === '-h') {
      out.print(usage())
      return 0
    }
    if (name === '--version' || name === '-v') {
      out.print(version())
      return 0
    }
    if (name === 'help') {
      const command = COMMANDS.find((c) => c.spec.name === rest[0])
      if (rest[0] !== undefined && command === undefined) throw new UsageError(`unknown command '${rest[0]}'`)
      out.print(command === undefined ? usage() : helpText(command.spec))
      return 0
    }
    const command = COMMANDS.find((c) => c.spec.name === name)
    if (command === undefined) throw new UsageError(`unknown command '${name}'`)
    const parsed = parse(command.spec, rest)
    if (parsed.values.help === true) {
      out.print(helpText(command.spec))
      return 0
    }
    return await command.run(parsed, out)
  } catch (err) {
    if (err instanceof UsageError) {
      out.warn(`ipc-bus: ${err.message}`)
      out.warn(name !== undefined && COMMANDS.some((c) => c.spec.name === name) ? `See 'ipc-bus ${name} --help'.` : "See 'ipc-bus --help'.")
      return 2
    }
    if (err instanceof Failure || err instanceof NoSuchTarget || err instanceof SegmentProblem) {
      out.warn(`ipc-bus: ${err.message}`)
      return 1
    }
    out.warn(`ipc-bus: ${err instanceof Error ? err.message : String(err)}`)
    if (process.env.IPC_BUS_DEBUG) out.warn(String((err as Error)?.stack))
    return 1
  }
}

// A reader that goes away (`ipc-bus top | head`) ends the program quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

process.exitCode = await main(process.argv.slice(2))
