/**
 * Removing a bus from the outside (`ipc-bus gc`, `ipc-bus rm`): IPC_RMID on
 * every segment its directory lists, then on the directory. Only segments
 * that still carry a channel's or topic's magic are removed (an id the
 * directory names is checked before it is removed). A process still
 * attached keeps its mapping until it detaches; the segments are gone for
 * everyone else at once. This is what Bus.create / Bus.open do to a named
 * bus whose members all died (../reclaim.ts), without joining it.
 */
import { shmctl } from '@ipc/native'
import type { FoundBus } from './buses.js'
import { peekKind, problemOf } from './segments.js'

export interface Removal {
  id: number
  name: string | null
  /** Segment ids removed (or that would be, with dryRun): the directory's entries first, the directory last. */
  segments: number[]
  /** Entries not removed, and why (not ours any more, gone, not permitted). */
  skipped: string[]
  /** Whether the directory itself was removed (false with dryRun, or when it could not be). */
  removed: boolean
  error: string | null
}

/** Removes (or, with dryRun, lists) the segments of `bus`. */
export function removeBus(bus: FoundBus, dryRun: boolean): Removal {
  const removal: Removal = { id: bus.row.id, name: bus.summary.name, segments: [], skipped: [], removed: false, error: null }
  for (const entry of bus.directory?.entries ?? []) {
    let kind
    try {
      kind = peekKind(entry.segmentId)
    } catch (err) {
      const problem = problemOf(err, entry.segmentId)
      if (problem.problem !== 'gone') removal.skipped.push(`${entry.name}: ${problem.message}`)
      continue // gone already: a private bus's segments go with their last process
    }
    if (kind !== 'channel' && kind !== 'topic') {
      removal.skipped.push(`${entry.name}: segment ${entry.segmentId} is no longer a channel or topic`)
      continue
    }
    const error = dryRun ? null : rmid(entry.segmentId)
    if (error === null) removal.segments.push(entry.segmentId)
    else removal.skipped.push(`${entry.name}: ${error}`)
  }
  const error = dryRun ? null : rmid(bus.row.id)
  if (error === null) {
    removal.segments.push(bus.row.id)
    removal.removed = !dryRun
  } else {
    removal.error = error
  }
  return removal
}

/** IPC_RMID; null when done (or gone already), else why not. */
function rmid(id: number): string | null {
  try {
    shmctl(id, 'IPC_RMID')
    return null
  } catch (err) {
    const problem = problemOf(err, id)
    return problem.problem === 'gone' ? null : problem.problem === 'unreadable' ? `not permitted to remove segment ${id}` : `segment ${id}: ${problem.message}`
  }
}
