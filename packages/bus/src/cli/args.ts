/**
 * Command-line arguments: each command declares its options once (for
 * util.parseArgs and for its --help), and misuse is a UsageError (exit 2)
 * that says what was wrong; a failure of the command itself is a Failure
 * (exit 1). --help and --json are every command's.
 */
import { parseArgs } from 'node:util'
import { checkName } from '../naming.js'
import type { Target } from './buses.js'

/** Wrong arguments: exit code 2. */
export class UsageError extends Error {}

/** The command could not do what was asked: exit code 1, the message on stderr. */
export class Failure extends Error {}

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** The value's placeholder in help ('N', 'DIR'). */
  value?: string
  help: string
}

export interface CommandSpec {
  name: string
  /** One line, for `ipc-bus --help`. */
  summary: string
  /** Arguments after the command name, for its usage line ('NAME | --id N'). */
  args: string
  /** Paragraphs of its --help. */
  description: string
  options: Record<string, OptionSpec>
  /** How many positional arguments it takes. */
  positionals: { min: number; max: number }
}

export type Values = Record<string, string | boolean | string[] | undefined>

export interface Parsed {
  values: Values
  positionals: string[]
}

const COMMON: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'print JSON (for scripts) instead of tables' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
}

/** Parses a command's arguments; UsageError for unknown options, missing values or a wrong number of arguments. */
export function parse(spec: CommandSpec, argv: string[]): Parsed {
  const options = { ...spec.options, ...COMMON }
  let parsed
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, {
        type: o.type, ...(o.short === undefined ? {} : { short: o.short }), ...(o.multiple === undefined ? {} : { multiple: o.multiple }),
      }])),
    })
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!)
  }
  const values = parsed.values as Values
  if (values.help === true) return { values, positionals: parsed.positionals }
  const n = parsed.positionals.length
  if (n < spec.positionals.min) throw new UsageError(`${spec.name}: missing ${spec.args.split(' ')[0] ?? 'argument'}`)
  if (n > spec.positionals.max) throw new UsageError(`${spec.name}: unexpected argument '${parsed.positionals[spec.positionals.max]}'`)
  return { values, positionals: parsed.positionals }
}

/** The --help of a command. */
export function helpText(spec: CommandSpec): string {
  const options = { ...spec.options, ...COMMON }
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`
    return [flag, o.help] as const
  })
  const width = Math.max(...rows.map(([flag]) => flag.length))
  return [
    `Usage: ipc-bus ${spec.name}${spec.args ? ` ${spec.args}` : ''} [options]`,
    '',
    spec.description,
    '',
    'Options:',
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
  ].join('\n')
}

/** An integer option within [min, max]; undefined when not given. */
export function intOption(values: Values, name: string, min: number, max: number): number | undefined {
  const raw = values[name]
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${String(raw)}'`)
  }
  return n
}

/** A number of seconds within [min, max]; undefined when not given. */
export function secondsOption(values: Values, name: string, min: number, max: number): number | undefined {
  const raw = values[name]
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number of seconds from ${min} to ${max}, got '${String(raw)}'`)
  }
  return n
}

/** The bus a command is pointed at: NAME, or --id N (one of them). */
export function target(command: string, parsed: Parsed): Target {
  const id = intOption(parsed.values, 'id', 0, 0x7fffffff)
  const name = parsed.positionals[0]
  if (id !== undefined && name !== undefined) throw new UsageError(`${command}: give a bus NAME or --id N, not both`)
  if (id !== undefined) return { id }
  if (name === undefined) throw new UsageError(`${command}: missing NAME (or --id N)`)
  try {
    return { name: checkName('NAME', name) }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** The option every command pointed at one bus takes. */
export const ID_OPTION: OptionSpec = { type: 'string', value: 'N', help: 'the bus whose directory is segment N (a private bus has no name to give)' }
