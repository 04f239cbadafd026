/**
 * What pub/sub (pubsub.ts) and request/reply (rpc/) need from their bus:
 * the PatternHost interface, and the events they emit on it. The bus hands
 * them an object of this shape; they never see the Bus class.
 */
import type { Channel } from '../channel/channel.js'
import type { ChannelOptions } from '../options.js'
import type { ErrorEmitter } from '../report.js'

/** What the patterns use of a bus. */
export interface PatternHost extends ErrorEmitter {
  /** Opens (creating if needed) a channel of this bus; sizes are checked against the bus's. */
  channel<T = unknown>(name: string, options?: ChannelOptions): Channel<T>
  /** The channel if it exists, else null (never creates one). */
  existingChannel<T = unknown>(name: string): Channel<T> | null
  /** The names of the directory's channels that start with prefix. */
  channelNames(prefix?: string): string[]
  /** Removes a channel's directory entry if its receiver died (with force: also if it has none); returns whether it did. */
  dropChannel(name: string, options?: { force?: boolean }): boolean
  /** Changes whenever a channel is added to or removed from the directory. */
  readonly channelGeneration: number
  /** Encodes a value with the bus's codec (shared structures): the bytes are valid until the next encode. */
  encodeValue(value: unknown): Uint8Array
  /** Keep / stop keeping the event loop alive (a receiving channel retains once). */
  retain(): void
  release(): void
  emit(event: 'drop', info: DropEvent): boolean
  emit(event: 'error', error: unknown): boolean
}

/** Emitted by the bus (`bus.on('drop', ...)`) each time a publish skips a full 'drop' subscriber. */
export interface DropEvent {
  topic: string
  /** The subscriber's channel name (`t:<topic>:<pid>.<n>d`). */
  subscriber: string
  /** The subscriber's process. */
  pid: number
}
