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
import { MAX_LANES, MAX_SLOTS, defineSchema, type Schema, type SchemaDeclaration } from '@ipc/core'
import type { Signal } from '@ipc/native'
import { InvalidArgType, InvalidArgValue, NotABus, SchemaMismatch } from './errors.js'
import {
  DEFAULT_MAX_MESSAGE, abortSignal, bool, checkKeys, directory, int, messageLimit, messageSize, recordLimit, ms, oneOf, or, realTimeSignal, ringSize,
} from './validate.js'

export { nearestKey, parseBytes } from './validate.js'
export type { SlowPolicy, SubscribeOptions, TopicOptions, TopicSizes } from './topic-options.js'

export type DoorbellKind = 'signal' | 'pipe'

export interface BusOptions {
  /**
   * Bytes of each lane ring (one lane per sending process per channel), a
   * power of two, as a number or a string like '4 MiB'. Default '1 MiB'.
   */
  ringBytes?: number | string
  /**
   * Largest message in bytes, independent of ringBytes: one larger than a
   * record (ringBytes / 8) travels as fragments, reassembled by the
   * receiver. Default '256 MiB'; at most 2 GiB - 1.
   */
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
   * How long a receiver that found nothing keeps polling before it parks
   * (blocking its event loop meanwhile): microseconds, every time (lower
   * latency, a busy core while traffic lasts); or 'adaptive': only when a
   * message arrived within the last millisecond, for at most
   * ADAPTIVE_SPIN_MICROS, and not again until a message arrives (so a
   * request/reply stream gets near-hot latency and an idle receiver parks at
   * once). Default 0 (always park).
   */
  spinMicros?: number | 'adaptive'
  /** Directory for doorbell FIFOs; every process of a bus must use the same one. Default os.tmpdir(). */
  runtimeDir?: string
}

export interface SendOptions {
  /** Reject with ChannelFull if there is still no room after this many ms. Default: wait forever. */
  timeout?: number
  /** Abort the wait (rejects with signal.reason); nothing is written. */
  signal?: AbortSignal
}

// ------------------------------------------------ subscribe, serve, request (shapes; checked below)

export interface ServeOptions {
  /** Handlers running at once in this server; more requests wait in the ring. Default 64. */
  concurrency?: number
  /** Stops serving when aborted (like server.close()). */
  signal?: AbortSignal
  /** Ring of each client's lane into this server. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** Most client processes sending to this server at once. Default: the bus's maxSenders. */
  maxSenders?: number
  /** Finished ids remembered per client for at-most-once retries. Default 256. */
  rememberIds?: number
  /** Clients whose ids are remembered. Default 256. */
  rememberClients?: number
  /** How long a finished id is remembered, ms. Default 60 000. */
  rememberMs?: number
  /**
   * This server forwards requests elsewhere (@ipc/bridge-nats): a NoServer
   * its handler throws reaches the caller as NoServer, not as a
   * RemoteError. Default false.
   */
  relay?: boolean
}

export interface RequestOptions {
  /** Per attempt, in ms; Infinity for none. Default 30 000. */
  timeout?: number
  /** Aborting rejects the request with signal.reason (a reply that comes later is discarded). */
  signal?: AbortSignal
  /** Attempts after a timeout, with the same id, to the same server. Default 0. */
  retries?: number
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
  spinMicros: number | 'adaptive'
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
  /**
   * Fixed record schema (@ipc/core defineSchema), e.g. `{ id: 'u32', ts: 'f64',
   * kind: 'string' }`: values are encoded by generated code straight into
   * the ring instead of msgpack. Stored in the channel when it is created;
   * opening it with a different schema throws SchemaMismatch, opening it
   * without one uses the stored one.
   */
  schema?: SchemaDeclaration
  /** Lane ring size for this channel. Default: the bus's ringBytes. */
  ringBytes?: number | string
  /** Largest message. Default: the bus's maxMessageBytes (256 MiB unless set). */
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
  /** The lanes' record limit: larger messages travel as fragments. */
  maxRecordBytes: number
  maxSenders: number
  highWaterMark: number
  zeroCopy: boolean
  schema: Schema | null
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
  spinMicros: 0 as number | 'adaptive',
  highWaterMark: 1024,
  maxSubscribers: 32,
} as const

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
  const maxMessageBytes = messageSize('options.maxMessageBytes', or(o.maxMessageBytes, Math.min(DEFAULT_MAX_MESSAGE, messageLimit(ringBytes))), ringBytes)
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
    spinMicros: o.spinMicros === 'adaptive' ? 'adaptive' : int('options.spinMicros', or(o.spinMicros, DEFAULTS.spinMicros), 0, 1_000_000),
    runtimeDir: directory('options.runtimeDir', or(o.runtimeDir, tmpdir())),
    userOptions: o,
  }
}

// ============================================================ channels

const CHANNEL_KEYS = ['ringBytes', 'maxMessageBytes', 'maxSenders', 'highWaterMark', 'zeroCopy', 'schema'] as const

/**
 * Validates bus.channel() options (every call, whether or not the channel
 * exists) and resolves the channel's sizes once: each size is the
 * channel's own, else the bus's (`busOptions`: ResolvedBusOptions.userOptions),
 * else the default (maxMessageBytes: 256 MiB, less only for rings too small
 * to carry fragments).
 */
export function resolveChannelOptions(busOptions: BusOptions, options?: ChannelOptions): ResolvedChannelOptions {
  const o = checkKeys(options, CHANNEL_KEYS, 'a channel')
  const ringBytes = ringSize('options.ringBytes', or(o.ringBytes, or(busOptions.ringBytes, DEFAULTS.ringBytes)))
  const maxMessageBytes = o.maxMessageBytes !== undefined
    ? messageSize('options.maxMessageBytes', o.maxMessageBytes, ringBytes)
    : busOptions.maxMessageBytes !== undefined
      ? messageSize('options.maxMessageBytes', busOptions.maxMessageBytes, ringBytes, "; this is the bus's maxMessageBytes: give the channel its own")
      : Math.min(DEFAULT_MAX_MESSAGE, messageLimit(ringBytes))
  return {
    ringBytes,
    maxMessageBytes,
    maxRecordBytes: recordLimit(ringBytes, maxMessageBytes),
    maxSenders: int('options.maxSenders', or(o.maxSenders, or(busOptions.maxSenders, DEFAULTS.maxSenders)), 1, MAX_LANES),
    highWaterMark: int('options.highWaterMark', or(o.highWaterMark, DEFAULTS.highWaterMark), 1, Number.MAX_SAFE_INTEGER),
    zeroCopy: o.zeroCopy === undefined ? false : bool('options.zeroCopy', o.zeroCopy),
    schema: o.schema === undefined ? null : compileSchema(o.schema),
  }
}

/** Compiled once per declaration object (a channel opened again with the same object pays nothing). */
const compiled = new WeakMap<object, Schema>()

export function compileSchema(declaration: unknown): Schema {
  if (declaration === null || typeof declaration !== 'object') throw new InvalidArgType('options.schema', 'of type object', declaration)
  let schema = compiled.get(declaration)
  if (schema === undefined) {
    try {
      schema = defineSchema(declaration as SchemaDeclaration)
    } catch (err) {
      throw new InvalidArgValue('options.schema', declaration, (err as Error).message)
    }
    compiled.set(declaration, schema)
  }
  return schema
}

/** A schema asked for must be the one stored when the channel or topic was created (SchemaMismatch); none asked for takes the stored one. */
export function checkStoredSchema(kind: 'channel' | 'topic', name: string, stored: Schema | null, asked: Schema | null): void {
  if (asked !== null && stored?.text !== asked.text) throw new SchemaMismatch(name, stored?.text ?? null, asked.text, kind)
}

// ============================================================ calls

const SEND_KEYS = ['timeout', 'signal'] as const
const NO_OPTIONS: Readonly<SendOptions> = Object.freeze({})

/** Validates send / sendMany / sendBytes / publish options: call it on every call, before looking at the lane. Returns them ({} for undefined). */
export function checkSendOptions(options?: SendOptions): SendOptions {
  if (options === undefined) return NO_OPTIONS
  const o = checkKeys(options, SEND_KEYS, 'a send')
  if (o.timeout !== undefined) ms('options.timeout', o.timeout)
  if (o.signal !== undefined) abortSignal('options.signal', o.signal)
  return o
}

const SERVE_KEYS = ['concurrency', 'signal', 'ringBytes', 'maxSenders', 'rememberIds', 'rememberClients', 'rememberMs', 'relay'] as const

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
  if (o.relay !== undefined) bool('options.relay', o.relay)
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
