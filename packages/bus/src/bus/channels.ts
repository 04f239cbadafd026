/**
 * The channel table of one bus instance: the channels it has open, each
 * over a segment of its own that is found by id through the directory.
 * Opening (create the segment, or attach the one the directory names,
 * freeing the slot of an unused channel when the table is full), listing,
 * dropping abandoned entries, and letting go of a closed channel's mapping
 * (on a private bus, kept while it holds unread messages for another
 * member). Channels get a private ChannelContext from here, not the Bus.
 */
import { ChannelSegment, channelBytes, initializeChannel, type Codec, type Directory } from '@ipc/core'
import { shmctl } from '@ipc/native'
import { Channel, type ChannelStats } from '../channel/channel.js'
import type { ChannelContext } from '../channel/context.js'
import { hasLiveMember, isAlive, selfIdentity } from '../liveness.js'
import { openEntry, type EntryHost } from './entries.js'
import { KIND_CHANNEL, checkName } from '../naming.js'
import { checkStoredSchema, resolveChannelOptions, type ChannelOptions, type ResolvedBusOptions, type ResolvedChannelOptions } from '../options.js'
import { attachSegment, detachSegment, removeSegment, type Segment } from '../sysv.js'

interface Open {
  channel: Channel<any>
  segment: Segment
  core: ChannelSegment
}

export class ChannelTable {
  private readonly channels = new Map<string, Open>()
  private readonly context: ChannelContext
  private readonly entries: EntryHost
  private namesCache: { generation: number; names: string[] } | null = null
  /** Set when the thread exits with the bus open: nothing to keep mapped. */
  private exiting = false

  /**
   * `busName` is null for a private bus. `keepAlive` is the bus's: a
   * receiving channel keeps the event loop alive.
   */
  constructor(
    private readonly busName: string | null,
    private readonly directory: Directory,
    private readonly codec: Codec,
    private readonly options: ResolvedBusOptions,
    keepAlive: { retain(): void; release(): void },
  ) {
    this.entries = { directory, busName, mode: options.mode, codec }
    this.context = {
      busName,
      doorbell: options.doorbell,
      doorbellSignal: options.doorbellSignal,
      spinMicros: options.spinMicros,
      runtimeDir: options.runtimeDir,
      retain: () => keepAlive.retain(),
      release: () => keepAlive.release(),
      closed: (channel) => this.forget(channel),
    }
  }

  /** bus.channel(): the channel `name`, opened (and created if needed) on first use. */
  channel<T>(name: string, options?: ChannelOptions): Channel<T> {
    checkName('channel name', name)
    const co = resolveChannelOptions(this.options.userOptions, options) // every call, whether the channel exists or not
    const known = this.channels.get(name)
    if (known !== undefined) {
      checkStoredSchema('channel', name, known.core.schema, co.schema)
      return known.channel as Channel<T>
    }
    const { segment, core } = this.open(name, co)
    try {
      checkStoredSchema('channel', name, core.schema, co.schema)
    } catch (err) {
      detachSegment(segment)
      throw err
    }
    const channel = new Channel<T>(name, core, segment.id, this.codec, this.context, co.highWaterMark, co.zeroCopy)
    this.channels.set(name, { channel, segment, core })
    return channel
  }

  /** The channel `name` if it exists (null otherwise): the patterns never create another process's channel. */
  existing<T>(name: string): Channel<T> | null {
    if (!this.channels.has(name) && this.directory.findChannel(name)?.kind !== KIND_CHANNEL) return null
    return this.channel<T>(name)
  }

  /** bus.channelNames(): cached against the directory's channel generation. */
  names(prefix: string): string[] {
    const generation = this.directory.channelGeneration
    if (this.namesCache === null || this.namesCache.generation !== generation) {
      this.namesCache = { generation, names: this.directory.channels().filter((c) => c.kind === KIND_CHANNEL).map((c) => c.name) }
    }
    return prefix === '' ? [...this.namesCache.names] : this.namesCache.names.filter((n) => n.startsWith(prefix))
  }

  /** bus.dropChannel(): removes the entry of a channel nobody receives on (see there). */
  drop(name: string, options: { force?: boolean }): boolean {
    const entry = this.directory.findChannel(name)
    if (entry === undefined || entry.kind !== KIND_CHANNEL) return false
    let segment: Segment
    try {
      segment = attachSegment(entry.segmentId, `inspecting channel '${name}'`)
    } catch {
      return this.directory.removeChannel(entry.index, entry.segmentId)
    }
    // The entry goes, and so does the segment (a named bus's channels are
    // not marked for removal at creation): processes still attached keep
    // their mapping; the kernel frees it when the last one detaches.
    try {
      const receiver = new ChannelSegment(segment.buffer, 0, this.codec).receiverIdentity()
      const abandoned = receiver === null ? options.force === true : !isAlive(receiver.pid, receiver.startTime)
      if (!abandoned) return false
      const known = this.channels.get(name)
      if (known !== undefined) known.channel.close()
      if (!this.directory.removeChannel(entry.index, entry.segmentId)) return false
      removeSegment(entry.segmentId)
      return true
    } finally {
      detachSegment(segment)
    }
  }

  stats(): ChannelStats[] {
    return [...this.channels.values()].map(({ channel }) => channel.stats())
  }

  /** Closes every open channel (each forgets itself). */
  closeAll(): void {
    for (const { channel } of [...this.channels.values()]) channel.close()
  }

  /** The thread is exiting: channels closed from now on are not kept mapped. */
  processExiting(): void {
    this.exiting = true
  }

  private open(name: string, co: ResolvedChannelOptions): { segment: Segment; core: ChannelSegment } {
    return openEntry(this.entries, name, {
      kind: KIND_CHANNEL,
      what: `channel '${name}'`,
      bytes: channelBytes(co.maxSenders, co.ringBytes, co.schema === null ? 0 : Buffer.byteLength(co.schema.text)),
      capacity: co.ringBytes,
      lanes: co.maxSenders,
      initialize: (buffer) => initializeChannel(buffer, 0, { lanes: co.maxSenders, laneCapacity: co.ringBytes, maxMessageBytes: co.maxMessageBytes, maxRecordBytes: co.maxRecordBytes, schema: co.schema?.text }),
      wrap: (buffer) => new ChannelSegment(buffer, 0, this.codec),
    })
  }

  /** A channel closed itself. */
  private forget(name: string): void {
    const known = this.channels.get(name)
    if (known === undefined) return
    this.channels.delete(name)
    // A private bus's channel vanishes with its last attachment: while it
    // holds unread messages, we are the only process attached and another
    // member lives (who may receive them), keep it mapped (see keep()).
    if (this.busName === null && !this.exiting && hasLiveMember(this.directory, selfIdentity()) && keepsUnread(known)) {
      keep(known.segment, known.channel)
      return
    }
    // Not now: close() may have been called from a 'message' listener, in
    // the middle of a drain over this very mapping. Detach once it returns.
    setImmediate(() => detachSegment(known.segment))
  }

}

/** Mappings of private-bus channels kept for their unread messages (see forget()). */
const kept = new Map<Segment, Channel<any>>()
let keeper: NodeJS.Timeout | null = null

/**
 * Keeps a closed private-bus channel's segment mapped until another
 * process has attached it (a receiver, which then holds it) or nothing is
 * unread any more, looked at every second on an unref'd timer; at the
 * latest it goes when this process exits.
 */
function keep(segment: Segment, channel: Channel<any>): void {
  kept.set(segment, channel)
  keeper ??= setInterval(() => {
    for (const [s, c] of [...kept]) {
      let drop = true
      try {
        drop = shmctl(s.id, 'IPC_STAT').nattch > 1 || !c.hasUnread
      } catch { /* gone */ }
      if (!drop) continue
      kept.delete(s)
      detachSegment(s)
    }
    if (kept.size === 0 && keeper !== null) {
      clearInterval(keeper)
      keeper = null
    }
  }, 1000).unref()
}

function keepsUnread(known: Open): boolean {
  try {
    if (shmctl(known.segment.id, 'IPC_STAT').nattch > 1) return false
    return known.channel.hasUnread
  } catch {
    return false
  }
}
