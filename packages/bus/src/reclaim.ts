/**
 * Reclaiming what members left behind, on the next use (nothing runs in the
 * background): the channel segments of a named bus whose members are all
 * gone, and channel slots of channels nobody uses any more.
 *
 * A named bus's channel segments are not marked for removal when created
 * (unlike a private bus's): a channel with unread messages outlives the
 * processes that wrote them for as long as the bus exists. So they are
 * removed with the bus: by its last member's close(), or, when every
 * member died, by the next Bus.create or Bus.open of the name.
 */
import { ChannelSegment, Directory, type Codec } from '@ipc/core'
import { shmctl } from '@ipc/native'
import { KIND_CHANNEL } from './naming.js'
import { channels as diagnostics, observed, report } from './diagnostics.js'
import { attachSegment, detachSegment, isGone, removeSegment } from './sysv.js'

/** Removes every channel segment listed in a named bus's directory (segment `dirId`, or `directory` if attached already). */
export function removeChannelSegments(dirId: number, directory?: Directory): void {
  if (directory !== undefined) {
    for (const entry of directory.channels()) removeSegment(entry.segmentId)
    return
  }
  let dir
  try {
    dir = attachSegment(dirId, 'reclaiming a dead bus')
  } catch {
    return // gone meanwhile, or not ours to read: its channels go with whoever can
  }
  try {
    if (Directory.isInitialised(dir.buffer, 0)) removeChannelSegments(dirId, new Directory(dir.buffer, 0))
  } catch {
    // Not a directory we can read: leave its segments alone.
  } finally {
    detachSegment(dir)
  }
}

/**
 * Frees one directory slot whose channel or topic nobody uses: its segment
 * is gone, or no process has it attached and (a channel) none of its lanes
 * holds an unread message. Returns whether a slot was freed.
 */
export function reclaimChannelSlot(directory: Directory, codec: Codec): boolean {
  for (const entry of directory.channels()) {
    let nattch: number
    try {
      nattch = shmctl(entry.segmentId, 'IPC_STAT').nattch
    } catch (err) {
      if (!isGone(err)) continue
      if (directory.removeChannel(entry.index, entry.segmentId)) return true
      continue
    }
    if (nattch > 0) continue
    let segment
    try {
      segment = attachSegment(entry.segmentId, `inspecting channel '${entry.name}'`)
    } catch {
      continue
    }
    try {
      // A topic nobody has attached has no subscriber to deliver to; a
      // channel may still hold unread messages for its next receiver.
      if (entry.kind === KIND_CHANNEL && new ChannelSegment(segment.buffer, 0, codec).hasUnread()) continue
      // Between our look and our removal, a process that found the entry
      // first may attach; bus.channel() re-checks the entry after attaching.
      if (!directory.removeChannel(entry.index, entry.segmentId)) continue
      removeSegment(entry.segmentId)
      if (observed(diagnostics.reclaim)) report(diagnostics.reclaim, { bus: directory.name, what: 'channel-slot', detail: `'${entry.name}': unused, nothing unread` })
      return true
    } catch {
      continue // not a channel we can read: leave it
    } finally {
      detachSegment(segment)
    }
  }
  return false
}
