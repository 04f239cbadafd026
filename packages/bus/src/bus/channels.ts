/**
 * The channel table of one bus instance: the channels it has open, each
 * over a segment of its own that is found by id through the directory.
 * Opening (create the segment, or attach the one the directory names,
 * freeing the slot of an unused channel when the table is full), listing,
 * dropping abandoned entries, and letting go of a closed channel's mapping
 * (on a private bus, kept while it holds unread messages for another
 * member). Channels get a private ChannelContext from here, not the Bus.
 */
import { ChannelSegment, channelBytes, initializeChannel, type ChannelEntry, type Codec, type Directory } from '@ipc/core'
import { IPC_PRIVATE, shmctl } from '@ipc/native'
import { Channel, type ChannelStats } from '../channel/channel.js'
import type { ChannelContext } from '../channel/context.js'
import { CorruptSegment, TooManyChannels } from '../errors.js'
import { hasLiveMember, isAlive, selfIdentity } from '../liveness.js'
import { checkName } from '../naming.js'
import { resolveChannelOptions, type ChannelOptions, type ResolvedBusOptions, type ResolvedChannelOptions } from '../options.js'
import { reclaimChannelSlot } from '../reclaim.js'
import { attachSegment, createSegment, detachSegment, isRemoved, removeSegment, type Segment } from '../sysv.js'

interface Open {
  channel: Channel<any>
  segment: Segment
}

export class ChannelTable {
  private readonly channels = new Map<string, Open>()
  private readonly context: ChannelContext
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
    this.context = {
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
    if (known !== undefined) return known.channel as Channel<T>
    const { segment, core } = this.open(name, co)
    const channel = new Channel<T>(name, core, segment.id, this.codec, this.context, co.highWaterMark, co.zeroCopy)
    this.channels.set(name, { channel, segment })
    return channel
  }

  /** The channel `name` if it exists (null otherwise): the patterns never create another process's channel. */
  existing<T>(name: string): Channel<T> | null {
    if (!this.channels.has(name) && this.directory.findChannel(name) === undefined) return null
    return this.channel<T>(name)
  }

  /** bus.channelNames(): cached against the directory's channel generation. */
  names(prefix: string): string[] {
    const generation = this.directory.channelGeneration
    if (this.namesCache === null || this.namesCache.generation !== generation) {
      this.namesCache = { generation, names: this.directory.channels().map((c) => c.name) }
    }
    return prefix === '' ? [...this.namesCache.names] : this.namesCache.names.filter((n) => n.startsWith(prefix))
  }

  /** bus.dropChannel(): removes the entry of a channel nobody receives on (see there). */
  drop(name: string, options: { force?: boolean }): boolean {
    const entry = this.directory.findChannel(name)
    if (entry === undefined) return false
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
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = this.directory.findChannel(name)
      if (entry !== undefined) {
        const opened = this.attach(entry)
        if (opened !== null) return opened
        continue // stale entry replaced: look again
      }
      // A named bus's channels outlive their writers (see reclaim.ts); a
      // private bus's are removed by the kernel with their last process.
      const segment = createSegment(channelBytes(co.maxSenders, co.ringBytes), this.options.mode, IPC_PRIVATE, this.busName === null)
      let added: { entry: ChannelEntry; created: boolean }
      try {
        initializeChannel(segment.buffer, 0, { lanes: co.maxSenders, laneCapacity: co.ringBytes, maxMessageBytes: co.maxMessageBytes })
        added = this.addEntry({ name, segmentId: segment.id, kind: 0, capacity: co.ringBytes, lanes: co.maxSenders, owner: selfIdentity() })
        if (added.created) return { segment, core: new ChannelSegment(segment.buffer, 0, this.codec) }
      } catch (err) {
        discard(segment) // nothing stays created or attached
        throw err
      }
      discard(segment) // lost the race: use the winner's
      const opened = this.attach(added.entry)
      if (opened !== null) return opened
    }
    throw new CorruptSegment(`bus '${this.busName}' channel '${name}'`, name, 'could not be opened after 5 attempts')
  }

  /** Adds a channel entry, reclaiming the slot of an unused channel when the table is full; TooManyChannels when none is. */
  private addEntry(entry: Omit<ChannelEntry, 'index'>): { entry: ChannelEntry; created: boolean } {
    for (;;) {
      try {
        return this.directory.addChannel(entry)
      } catch (err) {
        if (!(err instanceof RangeError) || !err.message.includes('channel slots')) throw err
        if (!reclaimChannelSlot(this.directory, this.codec)) throw new TooManyChannels(this.busName ?? 'private', this.directory.channelSlots)
      }
    }
  }

  /** Attaches a channel's segment; null (after removing a stale entry) when the segment is gone or no longer the entry's. */
  private attach(entry: ChannelEntry): { segment: Segment; core: ChannelSegment } | null {
    let segment: Segment
    try {
      segment = attachSegment(entry.segmentId, `opening channel '${entry.name}'`)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EINVAL' && code !== 'EIDRM') throw err
      // Every process that had it attached is gone, and so is the segment.
      this.directory.removeChannel(entry.index, entry.segmentId)
      return null
    }
    try {
      // Reclaimed meanwhile (reclaim.ts): the entry no longer names it.
      if (this.directory.findChannel(entry.name)?.segmentId !== entry.segmentId || (this.busName !== null && isRemoved(entry.segmentId))) {
        detachSegment(segment)
        return null
      }
      return { segment, core: new ChannelSegment(segment.buffer, 0, this.codec) }
    } catch (err) {
      detachSegment(segment)
      throw err
    }
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

/** Detaches a segment we created and marks it for removal. */
function discard(segment: Segment): void {
  detachSegment(segment)
  removeSegment(segment.id)
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
