/**
 * What a channel needs from its bus: the bus's doorbell settings and three
 * callbacks. The bus hands each channel a private object of this shape (not
 * itself), so none of it is public API.
 */
import type { ChannelSegment, Codec } from '@ipc/core'
import type { DoorbellKind } from '../options.js'

export interface ChannelContext {
  /** The bus's name (null: private), for diagnostics. */
  readonly busName: string | null
  readonly doorbell: DoorbellKind
  readonly doorbellSignal: number
  readonly spinMicros: number | 'adaptive'
  readonly runtimeDir: string
  /** A receiving channel keeps the process alive (like a listening server) until it stops. */
  retain(): void
  release(): void
  /** The channel closed itself: the bus drops it from its table (and detaches its segment). */
  closed(name: string): void
}

/** What both sides of one channel share: its name, its segment and token (the segment id), the bus's codec and context. */
export interface ChannelParts {
  readonly name: string
  readonly segment: ChannelSegment
  /** The channel's doorbell token: its segment id, unique on the host while the channel exists. */
  readonly token: number
  readonly codec: Codec
  readonly ctx: ChannelContext
}
