/**
 * Opening a shared object of the bus by name: a channel (kind KIND_CHANNEL)
 * or a topic (kind KIND_TOPIC), each a segment of its own listed in the
 * directory's entry table by name and segment id. Both tables
 * (channels.ts, ../patterns/topics.ts) open through here: attach the
 * segment an entry names, or create, initialize and register one (the
 * loser of a race to register the same name uses the winner's), freeing
 * the slot of an unused entry when the table is full.
 */
import type { ChannelEntry, Directory, Codec } from '@ipc/core'
import { CorruptSegment, InvalidArgValue, TooManyChannels } from '../errors.js'
import { selfIdentity } from '../liveness.js'
import { KIND_TOPIC } from '../naming.js'
import { reclaimChannelSlot } from '../reclaim.js'
import { attachSegment, createSegment, detachSegment, isRemoved, removeSegment, type Segment } from '../sysv.js'

/** What opening one kind of object needs: its size and layout, and how to look at a mapped one. */
export interface EntrySpec<T> {
  kind: number
  /** What the object is, for errors ("channel 'x'", "topic 'y'"). */
  what: string
  bytes: number
  /** Recorded in the entry (for observers): ring bytes and lanes. */
  capacity: number
  lanes: number
  /** Writes a fresh layout into a new segment. */
  initialize(buffer: ArrayBuffer): void
  /** Validates a mapped segment and wraps it (throws on a bad one). */
  wrap(buffer: ArrayBuffer): T
}

export interface Opened<T> {
  segment: Segment
  core: T
}

/** Where and how the entries of one bus live. */
export interface EntryHost {
  directory: Directory
  /** Null for a private bus (its segments are marked for removal at creation). */
  busName: string | null
  mode: number
  codec: Codec
}

/** Attaches the object `name` of `spec.kind`, creating it if needed. */
export function openEntry<T>(host: EntryHost, name: string, spec: EntrySpec<T>): Opened<T> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const entry = host.directory.findChannel(name)
    if (entry !== undefined) {
      const opened = attachEntry(host, entry, spec)
      if (opened !== null) return opened
      continue // stale entry replaced: look again
    }
    // A named bus's segments outlive their writers (see ../reclaim.ts); a
    // private bus's are removed by the kernel with their last process.
    const segment = createSegment(spec.bytes, host.mode, undefined, host.busName === null)
    let added: { entry: ChannelEntry; created: boolean }
    try {
      spec.initialize(segment.buffer)
      added = addEntry(host, { name, segmentId: segment.id, kind: spec.kind, capacity: spec.capacity, lanes: spec.lanes, owner: selfIdentity() })
      if (added.created) return { segment, core: spec.wrap(segment.buffer) }
    } catch (err) {
      discard(segment) // nothing stays created or attached
      throw err
    }
    discard(segment) // lost the race: use the winner's
    const opened = attachEntry(host, added.entry, spec)
    if (opened !== null) return opened
  }
  throw new CorruptSegment(`bus '${host.busName ?? 'private'}' ${spec.what}`, name, 'could not be opened after 5 attempts')
}

/** Adds an entry, reclaiming the slot of an unused one when the table is full; TooManyChannels when none is. */
function addEntry(host: EntryHost, entry: Omit<ChannelEntry, 'index'>): { entry: ChannelEntry; created: boolean } {
  for (;;) {
    try {
      return host.directory.addChannel(entry)
    } catch (err) {
      if (!(err instanceof RangeError) || !err.message.includes('channel slots')) throw err
      if (!reclaimChannelSlot(host.directory, host.codec)) throw new TooManyChannels(host.busName ?? 'private', host.directory.channelSlots)
    }
  }
}

/** Attaches an entry's segment; null (after removing a stale entry) when the segment is gone or no longer the entry's. */
function attachEntry<T>(host: EntryHost, entry: ChannelEntry, spec: EntrySpec<T>): Opened<T> | null {
  if (entry.kind !== spec.kind) {
    const kind = (k: number): string => (k === KIND_TOPIC ? 'topic' : 'channel')
    throw new InvalidArgValue('name', entry.name, `is taken by a ${kind(entry.kind)} of this bus, not a ${kind(spec.kind)}`)
  }
  let segment: Segment
  try {
    segment = attachSegment(entry.segmentId, `opening ${spec.what}`)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EINVAL' && code !== 'EIDRM') throw err
    // Every process that had it attached is gone, and so is the segment.
    host.directory.removeChannel(entry.index, entry.segmentId)
    return null
  }
  try {
    // Reclaimed meanwhile (../reclaim.ts): the entry no longer names it.
    if (host.directory.findChannel(entry.name)?.segmentId !== entry.segmentId || (host.busName !== null && isRemoved(entry.segmentId))) {
      detachSegment(segment)
      return null
    }
    return { segment, core: spec.wrap(segment.buffer) }
  } catch (err) {
    detachSegment(segment)
    throw err
  }
}

/** Detaches a segment we created and marks it for removal. */
function discard(segment: Segment): void {
  detachSegment(segment)
  removeSegment(segment.id)
}
