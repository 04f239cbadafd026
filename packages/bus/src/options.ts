/**
 * Options of every call that takes them (Bus.create / open / attach,
 * bus.channel, send, subscribe, serve, request), their defaults, and their
 * validation: complete, on every call, before anything is created or
 * waited for. Errors are Node's kind (see errors.ts): InvalidArgType for a
 * wrong type, OutOfRange for a number or size out of range, InvalidArgValue
 * for any other wrong value and for an unknown key, which names the nearest
 * valid one ('ringbytes' -> 'ringBytes').
 */
import { tmpdir } from 'node:os'
import { MAX_CAPACITY, MAX_LANES, MAX_SLOTS, MIN_CAPACITY, maxMessageLimit } from '@ipc/core'
import { signalNumber, SIGRTMAX, SIGRTMIN, type Signal } from '@ipc/native'
import { InvalidArgType, InvalidArgValue, NotABus, OutOfRange } from './errors.js'
import type { RequestOptions, ServeOptions, SubscribeOptions } from './patterns/options.js'

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
  doorbellSignal?: Signal
  /**
   * An AbortSignal: aborts Bus.create / open / attach while they wait (for
   * a bus being built by another process), rejecting with its reason.
   * (A signal name or number here is the deprecated old name of
   * `doorbellSignal`, accepted with a DeprecationWarning, IPC_BUS_DEP_SIGNAL,
   * once per process.)
   */
  signal?: AbortSignal | Signal
  /**
   * Microseconds a receiver that found nothing keeps polling before it parks
   * (it blocks its event loop meanwhile). Lower latency, more CPU. Default 0.
   */
  spinMicros?: number
  /** Directory for doorbell FIFOs; every process of a bus must use the same one. Default os.tmpdir(). */
  runtimeDir?: string
}

export interface SendOptions {
  /** Reject with ChannelFull if there is still no room after this many ms. Default: wait forever. */
  timeout?: number
  /** Abort the wait (rejects with signal.reason); nothing is written. */
  signal?: AbortSignal
}

export interface ResolvedBusOptions {
  ringBytes: number
  maxMessageBytes: number
  maxSenders: number
  maxChannels: number
  maxMembers: number
  mode: number
  doorbell: DoorbellKind
  doorbellSignal: number
  /** @deprecated Same as doorbellSignal, until bus.ts, channel.ts and doorbell.ts use that name. */
  signal: number
  spinMicros: number
  runtimeDir: string
  /**
   * The options as given (inherited ones merged in), validated, with the
   * deprecated `signal` renamed `doorbellSignal` and undefined values left
   * out: what bus.address hands on, and what resolveChannelOptions sizes
   * channels from.
   */
  userOptions: BusOptions
}

/** Per-channel options; sizes apply when this process is the one that creates the channel. */
export interface ChannelOptions {
  /** Lane ring size for this channel. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** Largest message. Default: the bus's maxMessageBytes (at most ringBytes / 8 by default). */
  maxMessageBytes?: number | string
  /** Lanes (concurrent sending processes). Default: the bus's maxSenders. */
  maxSenders?: number
  /** Messages a `for await` consumer may have buffered before draining pauses (backpressure). Default 1024. */
  highWaterMark?: number
  /**
   * Hand raw-bytes messages (sendBytes) to 'message' listeners as views of
   * the ring instead of copies: no allocation or copy per message, but the
   * view is only valid until the listener returns (the ring reuses the
   * memory), so copy what you keep. (`for await` always gets copies.) Default false.
   */
  zeroCopy?: boolean
}

export interface ResolvedChannelOptions {
  /** Sizes for creating the channel's segment (ignored when it exists already). */
  ringBytes: number
  maxMessageBytes: number
  maxSenders: number
  highWaterMark: number
  zeroCopy: boolean
}

export const DEFAULTS = {
  ringBytes: 1 << 20,
  maxSenders: 8,
  maxChannels: 64,
  maxMembers: 64,
  mode: 0o600,
  doorbell: 'signal',
  doorbellSignal: 'SIGRTMIN+4',
  /** @deprecated Old name of doorbellSignal. */
  signal: 'SIGRTMIN+4',
  spinMicros: 0,
  highWaterMark: 1024,
} as const

// ============================================================ validators

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
function or<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value
}

function int(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number') throw new InvalidArgType(what, 'of type number', value)
  if (!Number.isInteger(value)) throw new OutOfRange(what, 'an integer', value)
  if (value < min || value > max) throw new OutOfRange(what, max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `>= ${min} && <= ${max}`, value)
  return value
}

/** Milliseconds: a number >= 0 (at most `max` unless Infinity). */
function ms(what: string, value: unknown, max = Infinity): number {
  if (typeof value !== 'number') throw new InvalidArgType(what, 'of type number', value)
  if (!(value >= 0) || (value > max && value !== Infinity)) {
    throw new OutOfRange(what, max === Infinity ? '>= 0 (ms), or Infinity' : `>= 0 && <= ${max} (ms), or Infinity`, value)
  }
  return value
}

function bool(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidArgType(what, 'of type boolean', value)
  return value
}

function oneOf<T extends string>(what: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new InvalidArgValue(what, value, `must be one of: ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value as T
}

/** Duck-typed like Node's validateAbortSignal (AbortSignals from other realms pass). */
function abortSignal(what: string, value: unknown): AbortSignal {
  if (value === null || typeof value !== 'object' || !('aborted' in value) || typeof (value as AbortSignal).addEventListener !== 'function') {
    throw new InvalidArgType(what, 'an instance of AbortSignal', value)
  }
  return value as AbortSignal
}

function ringSize(what: string, value: number | string): number {
  const bytes = parseBytes(what, value)
  if (bytes < MIN_CAPACITY || bytes > MAX_CAPACITY || (bytes & (bytes - 1)) !== 0) {
    throw new OutOfRange(what, `a power of two from ${MIN_CAPACITY} to ${MAX_CAPACITY}`, value)
  }
  return bytes
}

function messageSize(what: string, value: number | string, ringBytes: number, whose = ''): number {
  const bytes = parseBytes(what, value)
  const most = maxMessageLimit(ringBytes)
  if (bytes < 1 || bytes > most) throw new OutOfRange(what, `from 1 to ${most} (half the ${ringBytes}-byte ring less a record header)${whose}`, value)
  return bytes
}

function realTimeSignal(what: string, value: unknown): number {
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

function directory(what: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidArgType(what, 'of type string', value)
  if (value.length === 0 || value.includes('\0')) throw new InvalidArgValue(what, value, 'must be a directory path (non-empty, without NUL)')
  return value
}

// ============================================================ option keys

/** Edit distance, for 'did you mean'. */
function distance(a: string, b: string): number {
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
function checkKeys<T extends object>(options: T | undefined, valid: readonly string[], whose: string, aliases: Record<string, string> = {}): T {
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

// ============================================================ Bus

const BUS_KEYS = ['ringBytes', 'maxMessageBytes', 'maxSenders', 'maxChannels', 'maxMembers', 'mode', 'doorbell', 'doorbellSignal', 'spinMicros', 'runtimeDir'] as const
const BUS_ALIASES = { signal: 'doorbellSignal' }
let warnedSignal = false

/** Validates keys and renames the deprecated `signal`; keeps only defined values. */
function normalizeBusOptions(options: BusOptions | undefined): BusOptions {
  const given = checkKeys(options, BUS_KEYS, 'a Bus', BUS_ALIASES)
  const out: Record<string, unknown> = {}
  for (const key of BUS_KEYS) if (given[key] !== undefined) out[key] = given[key]
  // An AbortSignal under `signal` is what the word means everywhere else:
  // it aborts Bus.create/open/attach's waits (see abortSignalOf), and is
  // never handed on in an address.
  if (given.signal instanceof AbortSignal) {
    delete out.signal
  } else if (given.signal !== undefined) {
    if (given.doorbellSignal !== undefined) {
      throw new InvalidArgValue('options.signal', given.signal, "cannot be given with options.doorbellSignal: it is that option's deprecated name")
    }
    if (!warnedSignal) {
      warnedSignal = true
      process.emitWarning(
        "The Bus option 'signal' (the doorbell's POSIX signal) is deprecated: use 'doorbellSignal' ('signal' means an AbortSignal everywhere else)",
        'DeprecationWarning', 'IPC_BUS_DEP_SIGNAL',
      )
    }
    realTimeSignal('options.signal', given.signal) // named as the caller wrote it
    out.doorbellSignal = given.signal
  }
  return out as BusOptions
}

/** The AbortSignal given as options.signal, if any (anything else there is the deprecated doorbell signal). */
export function abortSignalOf(options: BusOptions | undefined): AbortSignal | undefined {
  const signal = (options as { signal?: unknown } | undefined)?.signal
  return signal instanceof AbortSignal ? signal : undefined
}

/**
 * Validates Bus.create / open / attach options and fills in defaults.
 * `inherited` (Bus.attach: the options in the address) are validated the
 * same way and overridden key by key by `options`.
 */
export function resolveOptions(options?: BusOptions, inherited?: BusOptions): ResolvedBusOptions {
  const o: BusOptions = inherited === undefined ? normalizeBusOptions(options) : { ...normalizeBusOptions(inherited), ...normalizeBusOptions(options) }
  const ringBytes = ringSize('options.ringBytes', or(o.ringBytes, DEFAULTS.ringBytes))
  const maxMessageBytes = messageSize('options.maxMessageBytes', or(o.maxMessageBytes, Math.floor(ringBytes / 8)), ringBytes)
  const doorbellSignal = realTimeSignal('options.doorbellSignal', or(o.doorbellSignal, DEFAULTS.doorbellSignal))
  return {
    ringBytes,
    maxMessageBytes,
    maxSenders: int('options.maxSenders', or(o.maxSenders, DEFAULTS.maxSenders), 1, MAX_LANES),
    maxChannels: int('options.maxChannels', or(o.maxChannels, DEFAULTS.maxChannels), 1, MAX_SLOTS),
    maxMembers: int('options.maxMembers', or(o.maxMembers, DEFAULTS.maxMembers), 2, MAX_SLOTS),
    mode: int('options.mode', or(o.mode, DEFAULTS.mode), 0, 0o777),
    doorbell: oneOf('options.doorbell', or(o.doorbell, DEFAULTS.doorbell), ['signal', 'pipe']),
    doorbellSignal,
    signal: doorbellSignal,
    spinMicros: int('options.spinMicros', or(o.spinMicros, DEFAULTS.spinMicros), 0, 1_000_000),
    runtimeDir: directory('options.runtimeDir', or(o.runtimeDir, tmpdir())),
    userOptions: o,
  }
}

// ============================================================ channels

const CHANNEL_KEYS = ['ringBytes', 'maxMessageBytes', 'maxSenders', 'highWaterMark', 'zeroCopy'] as const

/**
 * Validates bus.channel() options (every call, whether or not the channel
 * exists) and resolves the channel's sizes once: each size is the
 * channel's own, else the bus's (`busOptions`: ResolvedBusOptions.userOptions),
 * else the default; maxMessageBytes defaults to ringBytes / 8 when neither
 * gives it.
 */
export function resolveChannelOptions(busOptions: BusOptions, options?: ChannelOptions): ResolvedChannelOptions {
  const o = checkKeys(options, CHANNEL_KEYS, 'a channel')
  const ringBytes = ringSize('options.ringBytes', or(o.ringBytes, or(busOptions.ringBytes, DEFAULTS.ringBytes)))
  const maxMessageBytes = o.maxMessageBytes !== undefined
    ? messageSize('options.maxMessageBytes', o.maxMessageBytes, ringBytes)
    : busOptions.maxMessageBytes !== undefined
      ? messageSize('options.maxMessageBytes', busOptions.maxMessageBytes, ringBytes, "; this is the bus's maxMessageBytes: give the channel its own")
      : Math.floor(ringBytes / 8)
  return {
    ringBytes,
    maxMessageBytes,
    maxSenders: int('options.maxSenders', or(o.maxSenders, or(busOptions.maxSenders, DEFAULTS.maxSenders)), 1, MAX_LANES),
    highWaterMark: int('options.highWaterMark', or(o.highWaterMark, DEFAULTS.highWaterMark), 1, Number.MAX_SAFE_INTEGER),
    zeroCopy: o.zeroCopy === undefined ? false : bool('options.zeroCopy', o.zeroCopy),
  }
}

// ============================================================ calls

const SEND_KEYS = ['timeout', 'signal'] as const
const NO_OPTIONS: Readonly<SendOptions> = Object.freeze({})

/** Validates send / sendMany / sendBytes / sendEncoded options: call it on every call, before looking at the lane. Returns them ({} for undefined). */
export function checkSendOptions(options?: SendOptions): SendOptions {
  if (options === undefined) return NO_OPTIONS
  const o = checkKeys(options, SEND_KEYS, 'a send')
  if (o.timeout !== undefined) ms('options.timeout', o.timeout)
  if (o.signal !== undefined) abortSignal('options.signal', o.signal)
  return o
}

const SUBSCRIBE_KEYS = ['policy', 'signal', 'ringBytes', 'maxSenders', 'highWaterMark'] as const

/** Validates bus.subscribe() options (sizes too; resolveChannelOptions re-checks them against the bus's). Returns them ({} for undefined). */
export function checkSubscribeOptions(options?: SubscribeOptions): SubscribeOptions {
  const o = checkKeys(options, SUBSCRIBE_KEYS, 'a subscribe')
  if (o.policy !== undefined) oneOf('options.policy', o.policy, ['block', 'drop'])
  if (o.signal !== undefined) abortSignal('options.signal', o.signal)
  if (o.ringBytes !== undefined) ringSize('options.ringBytes', o.ringBytes)
  if (o.maxSenders !== undefined) int('options.maxSenders', o.maxSenders, 1, MAX_LANES)
  if (o.highWaterMark !== undefined) int('options.highWaterMark', o.highWaterMark, 1, Number.MAX_SAFE_INTEGER)
  return o
}

const SERVE_KEYS = ['concurrency', 'signal', 'ringBytes', 'maxSenders', 'rememberIds', 'rememberClients', 'rememberMs'] as const

/** Validates bus.serve() options. Returns them ({} for undefined). */
export function checkServeOptions(options?: ServeOptions): ServeOptions {
  const o = checkKeys(options, SERVE_KEYS, 'a serve')
  if (o.concurrency !== undefined) int('options.concurrency', o.concurrency, 1, Number.MAX_SAFE_INTEGER)
  if (o.signal !== undefined) abortSignal('options.signal', o.signal)
  if (o.ringBytes !== undefined) ringSize('options.ringBytes', o.ringBytes)
  if (o.maxSenders !== undefined) int('options.maxSenders', o.maxSenders, 1, MAX_LANES)
  if (o.rememberIds !== undefined) int('options.rememberIds', o.rememberIds, 1, Number.MAX_SAFE_INTEGER)
  if (o.rememberClients !== undefined) int('options.rememberClients', o.rememberClients, 1, Number.MAX_SAFE_INTEGER)
  if (o.rememberMs !== undefined) ms('options.rememberMs', o.rememberMs)
  return o
}

const REQUEST_KEYS = ['timeout', 'signal', 'retries'] as const
/** Longest finite timer Node keeps (a longer setTimeout fires after 1 ms, with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 0x7fffffff

/** Validates bus.request() options. Returns them ({} for undefined). */
export function checkRequestOptions(options?: RequestOptions): RequestOptions {
  const o = checkKeys(options, REQUEST_KEYS, 'a request')
  if (o.timeout !== undefined) ms('options.timeout', o.timeout, MAX_TIMER_MS)
  if (o.signal !== undefined) abortSignal('options.signal', o.signal)
  if (o.retries !== undefined) int('options.retries', o.retries, 0, Number.MAX_SAFE_INTEGER)
  return o
}

// ============================================================ addresses

/** What bus.address holds (and bus.fork() puts in IPC_BUS_ATTACH). */
export interface AttachInfo {
  directory: number
  name: string | null
  options: BusOptions
}

/**
 * Parses an address (or the IPC_BUS_ATTACH variable: `source` says which,
 * for the message). Throws InvalidArgType when it is not a string, NotABus
 * when it is not JSON of an address ('null', '{}', a negative id...).
 */
export function parseAttachAddress(raw: unknown, source = 'the address'): AttachInfo {
  if (typeof raw !== 'string') throw new InvalidArgType('address', 'of type string (a bus.address); to pass options alone: Bus.attach(undefined, options)', raw)
  let info: unknown
  try {
    info = JSON.parse(raw)
  } catch (err) {
    throw new NotABus(`${source} is not valid JSON`, { cause: err })
  }
  if (info === null || typeof info !== 'object' || Array.isArray(info)) throw new NotABus(`${source} is not a bus address (a JSON object)`)
  const { directory: id, name, options } = info as Partial<Record<keyof AttachInfo, unknown>>
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new NotABus(`${source} has no directory id`)
  if (name !== null && name !== undefined && typeof name !== 'string') throw new NotABus(`${source} has a bus name that is not a string`)
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) throw new NotABus(`${source} has options that are not an object`)
  return { directory: id, name: name ?? null, options: (options ?? {}) as BusOptions }
}
