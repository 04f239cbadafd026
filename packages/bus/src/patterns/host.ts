/**
 * What pub/sub (pubsub.ts) and request/reply (rpc.ts) need from a Bus, and
 * how they name their channels.
 *
 * Both patterns are built only from plain channels: every subscriber and
 * every server receives on a channel of its own, and the directory's channel
 * table is the registry. A channel name is
 *
 *     <kind>:<topic or service>:<pid>.<n><flag>     e.g.  t:prices:4711.3b
 *
 * with kind 't' (a subscription; flag 'b' = block, 'd' = drop) or 's' (a
 * server; no flag), and `r:<pid>.<n>` for a client's reply channel. <pid> is
 * the receiving process, <n> counts per process. Channel names are at most
 * 64 UTF-8 bytes, so topics and service names are at most 40.
 */
import type { Channel } from './channel.js'
import type { ChannelOptions } from './options.js'
import { checkName } from './naming.js'

/** Longest topic or service name in UTF-8 bytes (the rest of the 64-byte channel name is the prefix and `<pid>.<n><flag>`). */
export const MAX_PATTERN_NAME_BYTES = 40

/** What the patterns use of a Bus (Bus implements it). */
export interface PatternHost {
  channel<T = unknown>(name: string, options?: ChannelOptions): Channel<T>
  /** The channel if it exists, else null (never creates one). */
  existingChannel<T = unknown>(name: string): Channel<T> | null
  channelNames(prefix?: string): string[]
  /** Encodes a value with the bus's codec (shared structures): the bytes are valid until the next encode. */
  encodeValue(value: unknown): Uint8Array
  dropChannel(name: string, options?: { force?: boolean }): boolean
  /** Changes whenever a channel is added to or removed from the directory. */
  readonly channelGeneration: number
  /** Keep / stop keeping the event loop alive (see Bus.retain). */
  retain(): void
  release(): void
  emit(event: 'drop', info: DropEvent): boolean
  emit(event: 'error', error: unknown): boolean
  listenerCount(event: 'error'): number
}

/** Emitted by the bus (`bus.on('drop', ...)`) each time a publish skips a full 'drop' subscriber. */
export interface DropEvent {
  topic: string
  /** The subscriber's channel name (`t:<topic>:<pid>.<n>d`). */
  subscriber: string
  /** The subscriber's process. */
  pid: number
}

/**
 * Validates a topic or service name: InvalidArgType (not a string),
 * InvalidArgValue (empty, NUL) or OutOfRange (over MAX_PATTERN_NAME_BYTES).
 */
export function checkPatternName(what: string, name: unknown): string {
  return checkName(what, name, MAX_PATTERN_NAME_BYTES)
}

/** `<pid>.<n><flag>` at the end of a pattern channel name. */
const SUFFIX = /^(\d+)\.(\d+)([bd]?)$/

/** Parses the part of a channel name after its `<kind>:<name>:` prefix; null when it is not ours. */
export function parseSuffix(rest: string): { pid: number; flag: string } | null {
  const m = SUFFIX.exec(rest)
  return m === null ? null : { pid: Number(m[1]), flag: m[3]! }
}

let counter = 0

/** A fresh per-process number for channel names. */
export function nextNumber(): number {
  return ++counter
}

/**
 * Removes the directory entries under `prefix` whose receiver died (so their
 * slots and names are reused), and returns a name `<prefix><pid>.<n><flag>`
 * that no entry holds.
 */
export function freshName(host: PatternHost, prefix: string, flag = ''): string {
  for (const name of host.channelNames(prefix)) {
    if (parseSuffix(name.slice(prefix.length)) !== null) host.dropChannel(name)
  }
  const taken = new Set(host.channelNames(prefix))
  for (;;) {
    const name = `${prefix}${process.pid}.${nextNumber()}${flag}`
    if (!taken.has(name)) return name
  }
}

/** Reports an error thrown by user code (a handler) without stopping delivery. */
export function report(host: PatternHost, what: string, err: unknown): void {
  if (host.listenerCount('error') > 0) host.emit('error', err)
  else process.emitWarning(`@ipc/bus: ${what} threw: ${err instanceof Error ? err.stack : String(err)}`)
}
