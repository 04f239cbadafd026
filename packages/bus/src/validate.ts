/**
 * Validators behind options.ts: each checks one option value (or an
 * options object's keys) and throws Node-style argument errors (errors.ts)
 * naming the option as the caller wrote it.
 */
import { MAX_CAPACITY, MAX_MESSAGE_LIMIT, MIN_CAPACITY, fragmentBytes, maxMessageLimit } from '@ipc/core'
import { signalNumber, SIGRTMAX, SIGRTMIN, type Signal } from '@ipc/native'
import { InvalidArgType, InvalidArgValue, OutOfRange } from './errors.js'


const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 }

/** Parses 4096, '4096', '64 KiB', '4 MiB', '1g' (binary units). */
export function parseBytes(what: string, value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new OutOfRange(what, 'a whole number of bytes (an integer >= 0)', value)
    return value
  }
  if (typeof value !== 'string') throw new InvalidArgType(what, 'of type number or string', value)
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value)
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) throw new InvalidArgValue(what, value, "must be a number of bytes or a string like '64 KiB' or '4 MiB'")
  const bytes = Number(m[1]) * unit
  if (!Number.isSafeInteger(bytes)) throw new OutOfRange(what, 'a whole number of bytes', value)
  return bytes
}

/** `value`, or `fallback` when it is undefined (null is a value: a wrong one). */
export function or<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value
}

export function int(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new InvalidArgType(what, 'of type number', value)
  if (!Number.isInteger(value)) throw new OutOfRange(what, 'an integer', value)
  if (value < min || value > max) throw new OutOfRange(what, max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `>= ${min} && <= ${max}`, value)
  return value
}

/** Milliseconds: a number >= 0 (at most `max` unless Infinity). */
export function ms(what: string, value: unknown, max = Infinity): number {
  if (typeof value !== 'number') throw new InvalidArgType(what, 'of type number', value)
  if (!(value >= 0) || (value > max && value !== Infinity)) {
    throw new OutOfRange(what, max === Infinity ? '>= 0 (ms), or Infinity' : `>= 0 && <= ${max} (ms), or Infinity`, value)
  }
  return value
}

export function bool(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgType(what, 'of type boolean', value)
  return value
}

export function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new InvalidArgValue(what, value, `must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value as T
}

/** Duck-typed like Node's validateAbortSignal (AbortSignals from other realms pass). */
export function abortSignal(what: string, value: unknown): AbortSignal {
  if (value === null || typeof value !== 'object' || !('aborted' in value) || typeof (value as AbortSignal).addEventListener !== 'function') {
    throw new InvalidArgType(what, 'an instance of AbortSignal', value)
  }
  return value as AbortSignal
}

export function ringSize(what: string, value: number | string): number {
  const bytes = parseBytes(what, value)
  if (bytes < MIN_CAPACITY || bytes > MAX_CAPACITY || (bytes & (bytes - 1)) !== 0) {
    throw new OutOfRange(what, `a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}`, value)
  }
  return bytes
}

/** Default maxMessageBytes: 256 MiB (less where the ring cannot carry fragments, see messageLimit()); a 100 MiB Buffer goes through with default options. */
export const DEFAULT_MAX_MESSAGE = 256 << 20

/**
 * Largest message a channel with lanes of `ringBytes` can carry: up to
 * MAX_MESSAGE_LIMIT once its records (an eighth of the ring) hold a
 * fragment (@ipc/core channel/fragments.ts), else what one record holds.
 */
export function messageLimit(ringBytes: number): number {
  return fragmentBytes(ringBytes / 8) > 0 ? MAX_MESSAGE_LIMIT : maxMessageLimit(ringBytes)
}

/** The lanes' record limit for messages of up to `maxMessageBytes`: larger ones travel as fragments. */
export function recordLimit(ringBytes: number, maxMessageBytes: number): number {
  return fragmentBytes(ringBytes / 8) > 0 ? Math.min(maxMessageBytes, ringBytes / 8) : maxMessageBytes
}

export function messageSize(what: string, value: number | string, ringBytes: number, whose = ''): number {
  const bytes = parseBytes(what, value)
  const most = messageLimit(ringBytes)
  if (bytes < 1 || bytes > most) {
    const why = most === MAX_MESSAGE_LIMIT ? '' : ` (a ${ringBytes}-byte ring is too small for fragments: half of it less a record header)`
    throw new OutOfRange(what, `from 1 to ${most}${why}${whose}`, value)
  }
  return bytes
}

export function realTimeSignal(what: string, value: unknown): number {
  const range = `a real-time signal, SIGRTMIN (${SIGRTMIN}) to SIGRTMAX (${SIGRTMAX}): standard signals coalesce and some are Node's`
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < SIGRTMIN || value > SIGRTMAX) throw new OutOfRange(what, range, value)
    return value
  }
  if (typeof value !== 'string') throw new InvalidArgType(what, 'of type string or number', value)
  let n: number
  try {
    n = signalNumber(value as Signal)
  } catch (err) {
    if (err instanceof RangeError) throw new OutOfRange(what, range, value)
    throw new InvalidArgValue(what, value, "must be a signal name like 'SIGRTMIN+4'")
  }
  if (n < SIGRTMIN || n > SIGRTMAX) throw new OutOfRange(what, range, value)
  return n
}

export function directory(what: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidArgType(what, 'of type string', value)
  if (value.length === 0 || value.includes('\0')) throw new InvalidArgValue(what, value, 'must be a directory path (non-empty, without NUL)')
  return value
}

// ============================================================ option keys

/** Edit distance, for 'did you mean'. */
export function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}

/** The valid key closest to `key` (case ignored), if it is close enough to be a likely typo (2 edits; 1 for short keys). */
export function nearestKey(key: string, valid: readonly string[]): string | undefined {
  const k = key.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of valid) {
    const d = distance(k, candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best !== undefined && bestDistance <= (best.length >= 6 ? 2 : 1) ? best : undefined
}

/**
 * Checks that `options` is an object (undefined counts as {}) whose every
 * own key is in `valid`; an unknown key throws InvalidArgValue naming the
 * nearest valid key (or, if none is near, all of them). `aliases` are
 * accepted keys never suggested (deprecated names), mapped to what to
 * suggest instead.
 */
export function checkKeys<T extends object>(options: T | undefined, valid: readonly string[], whose: string, aliases: Record<string, string> = {}): T {
  if (options === undefined) return {} as T
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new InvalidArgType('options', 'of type object', options)
  for (const key of Object.keys(options)) {
    if (valid.includes(key) || Object.hasOwn(aliases, key)) continue
    const near = nearestKey(key, [...valid, ...Object.keys(aliases)])
    const suggestion = near === undefined ? `one of ${valid.join(', ')}` : `did you mean '${Object.hasOwn(aliases, near) ? aliases[near] : near}'?`
    throw new InvalidArgValue(`options.${key}`, (options as Record<string, unknown>)[key], `is not ${whose} option (${suggestion})`)
  }
  return options
}

