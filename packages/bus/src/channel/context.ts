/**
 * What a channel needs from its bus: the bus's doorbell settings and three
 * callbacks. The bus hands each channel a private object of this shape (not
 * itself), so none of it is public API.
 */
import type { DoorbellKind } from '../options.js'

export interface ChannelContext {
  readonly doorbell: DoorbellKind
  readonly doorbellSignal: number
  readonly spinMicros: number
  readonly runtimeDir: string
  /** A receiving channel keeps the process alive (like a listening server) until it stops. */
  retain(): void
  release(): void
  /** The channel closed itself: the bus drops it from its table (and detaches its segment). */
  closed(name: string): void
}
