/**
 * System V segments as the bus uses them: created, attached and removed,
 * with errno failures turned into the bus's errors (EACCES / EPERM ->
 * PermissionDenied; attaching a segment that is gone -> what the caller's
 * `gone` makes of it, e.g. NoSuchBus). Other failures (EEXIST, which the
 * bus handles, and the host's limits: ENOSPC, ENOMEM) stay Node-style
 * system errors whose `code` is the errno name.
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

/** True for the errno of a segment id that names no segment (any more): EINVAL, EIDRM. */
export function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code
  return code === 'EINVAL' || code === 'EIDRM'
}

/**
 * Attaches an existing segment by id. When there is no segment of that id
 * (it was removed, or never existed), throws `gone(errnoError)` if given,
 * else the errno error itself (code 'EINVAL' or 'EIDRM': see isGone) for
 * callers that handle it.
 */
export function attachSegment(id: number, what: string, gone?: (cause: Error) => Error): Segment {
  try {
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) {
      throw Object.assign(new Error(`shmat: no segment can have id ${id}`), { code: 'EINVAL', syscall: 'shmat' })
    }
    return { id, buffer: shmat(id) }
  } catch (err) {
    if (gone !== undefined && isGone(err)) throw gone(err as Error)
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
