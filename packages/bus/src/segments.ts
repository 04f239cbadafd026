/**
 * System V segments as the bus uses them: created, attached and removed,
 * with errno failures turned into the bus's errors (EACCES -> PermissionDenied).
 *
 * Linux lets a process attach a segment by id after it was marked for
 * removal (IPC_RMID) as long as someone is still attached. The bus relies on
 * that: channel segments, and every segment of a private (forked) bus, are
 * marked IPC_RMID right after creation, so the kernel frees them when the
 * last attached process exits, SIGKILL included. Only a named bus's
 * directory keeps its key, so that unrelated processes can find it.
 */
import { IPC_CREAT, IPC_EXCL, IPC_PRIVATE, shmat, shmctl, shmdt, shmget } from '@ipc/native'
import { PermissionDenied } from './errors.js'

export interface Segment {
  id: number
  buffer: ArrayBuffer
}

function rethrow(err: unknown, what: string): never {
  if ((err as NodeJS.ErrnoException).code === 'EACCES' || (err as NodeJS.ErrnoException).code === 'EPERM') {
    throw new PermissionDenied(what, { cause: err })
  }
  throw err
}

/** Creates and attaches a new segment; with `removeNow` it is marked IPC_RMID at once (see above). */
export function createSegment(size: number, mode: number, key = IPC_PRIVATE, removeNow = key === IPC_PRIVATE): Segment {
  let id: number
  try {
    id = shmget(key, size, IPC_CREAT | IPC_EXCL | mode)
  } catch (err) {
    rethrow(err, `creating a ${size}-byte segment`)
  }
  let buffer: ArrayBuffer
  try {
    buffer = shmat(id)
  } catch (err) {
    try { shmctl(id, 'IPC_RMID') } catch { /* we made it, we remove it */ }
    rethrow(err, `attaching segment ${id}`)
  }
  if (removeNow) shmctl(id, 'IPC_RMID')
  return { id, buffer }
}

/** Attaches an existing segment by id. */
export function attachSegment(id: number, what: string): Segment {
  try {
    return { id, buffer: shmat(id) }
  } catch (err) {
    rethrow(err, `${what} (segment ${id})`)
  }
}

/** Detaches (all views of the buffer become empty). */
export function detachSegment(segment: Segment): void {
  shmdt(segment.buffer)
}

/** Marks a segment for removal; false when it is already gone. */
export function removeSegment(id: number): boolean {
  try {
    shmctl(id, 'IPC_RMID')
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EINVAL' || code === 'EIDRM') return false
    throw err
  }
}

/** The id of the segment at key, or -1 when there is none. */
export function lookupKey(key: number, what: string): number {
  try {
    return shmget(key, 0, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1
    rethrow(err, what)
  }
}

/** True when the segment is marked for removal (or gone). */
export function isRemoved(id: number): boolean {
  try {
    return shmctl(id, 'IPC_STAT').dest
  } catch {
    return true
  }
}
