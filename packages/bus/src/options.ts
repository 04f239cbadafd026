/**
 * Options of Bus.create / Bus.open / bus.channel, their defaults, and their
 * validation (TypeError for a wrong type, RangeError for a wrong value,
 * always before anything is created).
 */
import { tmpdir } from 'node:os'
import { MAX_CAPACITY, MIN_CAPACITY } from '@ipc/core'
import { signalNumber, SIGRTMAX, SIGRTMIN, type Signal } from '@ipc/native'

export type DoorbellKind = 'signal' | 'pipe'

export interface BusOptions {
  /**
   * Bytes of each lane ring (one lane per sending process per channel), a
   * power of two, as a number or a string like '4 MiB'. Default '1 MiB'.
   */
  ringBytes?: number | string
  /** Largest message in bytes. Default ringBytes / 8. */
  maxMessageBytes?: number | string
  /** Lanes per channel: how many processes may send on one channel at once. Default 8. */
  maxSenders?: number
  /** Most channels on the bus. Default 64. */
  maxChannels?: number
  /** Most processes on the bus at once. Default 64. */
  maxMembers?: number
  /** Permission bits of the bus's segments and FIFOs. Default 0o600. */
  mode?: number
  /**
   * How a sender wakes this process when it receives and has gone to sleep:
   * 'signal' (a real-time signal aimed at the main thread, default) or
   * 'pipe' (a byte into this process's FIFO).
   */
  doorbell?: DoorbellKind
  /** The real-time signal of the 'signal' doorbell. Default 'SIGRTMIN+4'. */
  signal?: Signal
  /**
   * Microseconds a receiver that found nothing keeps polling before it parks
   * (it blocks its event loop meanwhile). Lower latency, more CPU. Default 0.
   */
  spinMicros?: number
  /** Directory for doorbell FIFOs; every process of a bus must use the same one. Default os.tmpdir(). */
  runtimeDir?: string
}

export interface ResolvedBusOptions {
  ringBytes: number
  maxMessageBytes: number
  maxSenders: number
  maxChannels: number
  maxMembers: number
  mode: number
  doorbell: DoorbellKind
  signal: number
  spinMicros: number
  runtimeDir: string
}

export const DEFAULTS = {
  ringBytes: 1 << 20,
  maxSenders: 8,
  maxChannels: 64,
  maxMembers: 64,
  mode: 0o600,
  doorbell: 'signal',
  signal: 'SIGRTMIN+4',
  spinMicros: 0,
} as const

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 }

/** Parses 4096, '4096', '64 KiB', '4 MiB', '1g' (binary units). */
export function parseBytes(what: string, value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer, got ${value}`)
    return value
  }
  if (typeof value !== 'string') throw new TypeError(`${what} must be a number or a string like '4 MiB'`)
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value)
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) throw new TypeError(`${what} must be a number or a string like '4 MiB', got '${value}'`)
  const bytes = Number(m[1]) * unit
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`${what} must be a whole number of bytes, got '${value}'`)
  return bytes
}

function int(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${what} must be an integer, got ${String(value)}`)
  if (value < min || value > max) throw new RangeError(`${what} must be from ${min} to ${max}, got ${value}`)
  return value
}

export function resolveOptions(options: BusOptions = {}): ResolvedBusOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object')
  const ringBytes = parseBytes('options.ringBytes', options.ringBytes ?? DEFAULTS.ringBytes)
  if (ringBytes < MIN_CAPACITY || ringBytes > MAX_CAPACITY || (ringBytes & (ringBytes - 1)) !== 0) {
    throw new RangeError(`options.ringBytes must be a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}, got ${ringBytes}`)
  }
  const maxMessageBytes = parseBytes('options.maxMessageBytes', options.maxMessageBytes ?? Math.floor(ringBytes / 8))
  if (maxMessageBytes < 1 || maxMessageBytes > ringBytes / 2 - 16) {
    throw new RangeError(`options.maxMessageBytes must be from 1 to ${ringBytes / 2 - 16} (half the ring less a record header), got ${maxMessageBytes}`)
  }
  const doorbell = options.doorbell ?? DEFAULTS.doorbell
  if (doorbell !== 'signal' && doorbell !== 'pipe') throw new TypeError(`options.doorbell must be 'signal' or 'pipe', got ${String(doorbell)}`)
  const signal = signalNumber(options.signal ?? DEFAULTS.signal)
  if (signal < SIGRTMIN || signal > SIGRTMAX) {
    throw new RangeError(`options.signal must be a real-time signal (SIGRTMIN..SIGRTMAX): standard signals coalesce and some are Node's, got ${String(options.signal)}`)
  }
  const runtimeDir = options.runtimeDir ?? tmpdir()
  if (typeof runtimeDir !== 'string' || runtimeDir.length === 0) throw new TypeError('options.runtimeDir must be a directory path')
  return {
    ringBytes,
    maxMessageBytes,
    maxSenders: int('options.maxSenders', options.maxSenders ?? DEFAULTS.maxSenders, 1, 1024),
    maxChannels: int('options.maxChannels', options.maxChannels ?? DEFAULTS.maxChannels, 1, 4096),
    maxMembers: int('options.maxMembers', options.maxMembers ?? DEFAULTS.maxMembers, 2, 4096),
    mode: int('options.mode', options.mode ?? DEFAULTS.mode, 0, 0o777),
    doorbell,
    signal,
    spinMicros: int('options.spinMicros', options.spinMicros ?? DEFAULTS.spinMicros, 0, 1_000_000),
    runtimeDir,
  }
}
