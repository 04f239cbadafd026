/**
 * What pub/sub (pubsub.ts) and request/reply (rpc/) need from their bus:
 * the PatternHost interface, and the events they emit on it. The bus hands
 * them an object of this shape; they never see the Bus class.
 */
import type { Channel } from '../channel/channel.js'
import type { BusOptions, ChannelOptions, DoorbellKind, TopicSizes } from '../options.js'
import type { ErrorEmitter } from '../report.js'
import type { OpenTopic } from './topics.js'

/** The bus's settings and topics, as pub/sub uses them. */
export interface PatternContext {
  /** The bus's name (null: private), for diagnostics. */
  readonly busName: string | null
  readonly doorbell: DoorbellKind
  readonly doorbellSignal: number
  readonly spinMicros: number | 'adaptive'
  readonly runtimeDir: string
  /** The options the bus was opened with (topic sizes default to them). */
  readonly busOptions: BusOptions
  /** The topic `name`, opened (created with sizes() if nobody has) on first use. */
  topic(name: string, sizes: () => TopicSizes): OpenTopic
}

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
  /** Doorbell settings and the topic table. */
  readonly pattern: PatternContext
  /** Keep / stop keeping the event loop alive (a receiving channel retains once). */
  retain(): void
  release(): void
  emit(event: 'drop', info: DropEvent): boolean
  emit(event: 'error', error: unknown): boolean
}

/**
 * Emitted by the bus (`bus.on('drop', ...)`) in a subscriber's process each
 * time one of its 'drop' subscriptions was lapped: `dropped` values of
 * `topic` were overwritten before it read them (and are never delivered).
 */
export interface DropEvent {
  topic: string
  /** How many values this lap cost (the subscription's total is subscription.dropped). */
  dropped: number
  /** The subscription's slot in the topic (subscription.slot). */
  slot: number
  /** The subscriber's process (this one). */
  pid: number
}
