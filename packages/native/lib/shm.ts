/**
 * System V shared memory: ftok, shmget, shmat, shmdt, shmctl.
 *
 * A segment outlives every process until it is removed (IPC_RMID) and its
 * last attachment is gone: remove what you create. IPC_RMID on an attached
 * segment marks it "dest" (ipcs -m shows it so); it stays usable by those
 * attached and disappears with the last shmdt (or exit).
 */
import { native } from './binding.js'
import { IPC_RMID, IPC_SET, IPC_STAT } from './constants.js'
import type { ReadOnlyHandle, ShmStat } from './native-types.js'
import { checkInt, checkString, INT32_MAX, INT32_MIN } from './validate.js'

export type { ShmStat } from './native-types.js'

/** What IPC_SET may change. */
export interface ShmSet {
  uid?: number
  gid?: number
  mode?: number
}

/** ftok(3): a key from an existing file's inode and device plus projId (1..255). */
export function ftok(path: string, projId: number): number {
  checkString('path', path)
  checkInt('projId', projId, 1, 255)
  return native.ftok(path, projId)
}

/**
 * shmget(2): the id of the segment with this key, creating it when flags
 * hold IPC_CREAT (with IPC_EXCL: fail with EEXIST if it exists). The low 9
 * bits of flags are the permission mode. key IPC_PRIVATE (0) always creates
 * a new segment. size may be 0 to look up an existing segment.
 */
export function shmget(key: number, size: number, flags = 0): number {
  checkInt('key', key, INT32_MIN, 0xffff_ffff)
  checkInt('size', size, 0, Number.MAX_SAFE_INTEGER)
  checkInt('flags', flags, 0, INT32_MAX)
  return native.shmget(key | 0, size, flags)
}

/**
 * A read-only attachment (shmat with SHM_RDONLY), which needs only read
 * permission (0644 lets others attach this way). It is not an ArrayBuffer:
 * V8 has no read-only ArrayBuffer, and one JS write through a view of a
 * read-only mapping would kill the process with SIGSEGV. Reads copy, bounds
 * checked.
 */
export class ShmReadOnly implements Disposable {
  /** @internal */
  constructor(private readonly handle: ReadOnlyHandle, readonly byteLength: number) {}

  /** A copy of length bytes at offset. RangeError outside the segment. */
  read(offset: number, length: number): Buffer {
    checkInt('offset', offset, 0, Number.MAX_SAFE_INTEGER)
    checkInt('length', length, 0, Number.MAX_SAFE_INTEGER)
    return native.readOnlyRead(this.handle, offset, length)
  }

  /** shmdt(2); false if already detached. Dropping the object detaches at GC. */
  detach(): boolean {
    return native.readOnlyDetach(this.handle)
  }

  [Symbol.dispose](): void {
    this.detach()
  }
}

export interface ShmatOptions {
  /** Attach with SHM_RDONLY and return a ShmReadOnly (needs only read permission). Default false. */
  readOnly?: boolean
}

/**
 * shmat(2): attaches the segment read-write and returns an ArrayBuffer over
 * the mapping, `size` bytes long (needs read and write permission). Use
 * typed-array views and Atomics on it. With {readOnly: true}: a ShmReadOnly.
 */
export function shmat(shmid: number, options?: { readOnly?: false }): ArrayBuffer
export function shmat(shmid: number, options: { readOnly: true }): ShmReadOnly
export function shmat(shmid: number, options: ShmatOptions = {}): ArrayBuffer | ShmReadOnly {
  checkInt('shmid', shmid, 0, INT32_MAX)
  if (options.readOnly === true) {
    const handle = native.shmatReadOnly(shmid)
    return new ShmReadOnly(handle, native.shmctl(shmid, IPC_STAT)?.size ?? 0)
  }
  return native.shmat(shmid)
}

/**
 * shmdt(2): detaches the ArrayBuffer first (every view of it becomes length
 * 0, so stale views can never touch unmapped memory), then unmaps. Returns
 * false, doing nothing, for a buffer that is already detached. A buffer that
 * is only dropped is unmapped when it is garbage-collected.
 */
export function shmdt(buffer: ArrayBuffer): boolean {
  if (!(buffer instanceof ArrayBuffer)) throw new TypeError('buffer must be the ArrayBuffer returned by shmat()')
  return native.shmdt(buffer)
}

/**
 * Maps the pages under `view` (a typed array over an ArrayBuffer that
 * shmat() returned) into this process now, writable, with
 * madvise(MADV_POPULATE_WRITE): its first writes and reads then take no page
 * faults (about 10 µs each on a VM; a ring's first lap takes one per 4 KiB
 * page), and pages not yet allocated are allocated. Best effort: false,
 * changing nothing, on Linux before 5.14, for a view of any other memory, or
 * when memory is short.
 */
export function prefault(view: ArrayBufferView): boolean {
  if (!ArrayBuffer.isView(view) || view instanceof DataView) throw new TypeError('view must be a typed array over the ArrayBuffer returned by shmat()')
  return native.prefault(view)
}

export type ShmctlCommand = 'IPC_STAT' | 'IPC_SET' | 'IPC_RMID' | number

function commandNumber(cmd: ShmctlCommand): number {
  switch (cmd) {
    case 'IPC_STAT': return IPC_STAT
    case 'IPC_SET': return IPC_SET
    case 'IPC_RMID': return IPC_RMID
    default:
      if (cmd === IPC_STAT || cmd === IPC_SET || cmd === IPC_RMID) return cmd
      throw new RangeError(`cmd must be IPC_STAT, IPC_SET or IPC_RMID, got ${String(cmd)}`)
  }
}

/** shmctl(2): IPC_STAT -> ShmStat; IPC_SET {uid, gid, mode}; IPC_RMID marks it for removal. */
export function shmctl(shmid: number, cmd: 'IPC_STAT' | typeof IPC_STAT): ShmStat
export function shmctl(shmid: number, cmd: 'IPC_SET' | typeof IPC_SET, set: ShmSet): void
export function shmctl(shmid: number, cmd: 'IPC_RMID' | typeof IPC_RMID): void
export function shmctl(shmid: number, cmd: ShmctlCommand, set?: ShmSet): ShmStat | void
export function shmctl(shmid: number, cmd: ShmctlCommand, set?: ShmSet): ShmStat | void {
  checkInt('shmid', shmid, 0, INT32_MAX)
  const n = commandNumber(cmd)
  if (n === IPC_SET) {
    if (set === null || typeof set !== 'object') throw new TypeError('IPC_SET needs {uid?, gid?, mode?}')
    if (set.uid !== undefined) checkInt('set.uid', set.uid, 0, 0xffff_ffff)
    if (set.gid !== undefined) checkInt('set.gid', set.gid, 0, 0xffff_ffff)
    if (set.mode !== undefined) checkInt('set.mode', set.mode, 0, 0o777)
    native.shmctl(shmid, n, set)
    return
  }
  return native.shmctl(shmid, n) ?? undefined
}
