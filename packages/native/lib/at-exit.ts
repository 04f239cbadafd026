/**
 * Exit actions: releases that must happen when a thread or process goes
 * away even though it runs no JavaScript on the way out.
 *
 * A worker_thread stopped with worker.terminate() never fires
 * process.on('exit'), so shared-memory words it claimed (a directory slot, a
 * receiver word, lane owner words holding its identity) would stay claimed,
 * and files it made (a doorbell FIFO) would stay. An exit action is
 * registered from JS and run natively, with plain system calls, when the
 * registering environment is torn down:
 *   - a worker_thread ending in any way (worker.terminate(), process.exit()
 *     inside it, the end of its event loop, an uncaught exception);
 *   - the main thread at a normal process exit (the end of the event loop,
 *     process.exit(), an uncaught exception).
 * Nothing runs on SIGKILL, a fatal signal or a native crash, or any other
 * death that skips exit(3) (e.g. an unhandled SIGTERM): a peer must still
 * detect those by liveness.
 *
 * Each thread has its own list; its actions run in registration order.
 * Handles are numbers unique in the process; cancelExit() only cancels
 * actions of the calling thread.
 */
import { resolve } from 'node:path'
import { native } from './binding.js'
import { checkInt, checkString, INT32_MAX, INT32_MIN } from './validate.js'

/** The addon's exit-action functions (src/AtExit.cc). */
interface AtExitBinding {
  addExitStore(shmid: number, byteOffset: number, width: number, expected: bigint, desired: bigint): number
  addExitUnlink(path: string): number
  cancelExit(handle: number): boolean
  pendingExitActions(): number
}

const binding = native as unknown as AtExitBinding

const UINT32_MAX = 0xffff_ffff
const INT64_MIN = -(1n << 63n)
const UINT64_MAX = (1n << 64n) - 1n

/** A word value as the unsigned bigint of its bits (two's complement for negatives). */
function word(name: string, value: unknown, width: 4 | 8): bigint {
  if (typeof value === 'bigint') {
    const [min, max] = width === 4 ? [BigInt(INT32_MIN), BigInt(UINT32_MAX)] : [INT64_MIN, UINT64_MAX]
    if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max} for a ${width}-byte word, got ${value}`)
    return BigInt.asUintN(width * 8, value)
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer or a bigint, got ${typeof value === 'number' ? value : typeof value}`)
  }
  if (width === 4) {
    checkInt(name, value, INT32_MIN, UINT32_MAX)
  } else if (!Number.isSafeInteger(value)) {
    throw new RangeError(`${name} must be a safe integer or a bigint for an 8-byte word, got ${value}`)
  }
  return BigInt.asUintN(width * 8, BigInt(value))
}

/**
 * At teardown of the calling thread's environment: attach segment `shmid`
 * afresh and compare-and-swap the `width`-byte word at `byteOffset` from
 * `expected` to `desired` (sequentially consistent, as Atomics does), then
 * detach. The swap is skipped silently if the segment is gone or refused by
 * then, or no longer holds the word.
 *
 * width 4 takes values from -2^31 to 2^32-1 (int32 or uint32 bits); width 8
 * a bigint from -2^63 to 2^64-1 or a safe integer. byteOffset must be a
 * multiple of width inside the segment, which must exist now (its IPC_STAT
 * errors are thrown as errno errors). Returns a handle for cancelExit().
 */
export function addExitStore(shmid: number, byteOffset: number, width: 4 | 8, expected: number | bigint, desired: number | bigint): number {
  checkInt('shmid', shmid, 0, INT32_MAX)
  checkInt('byteOffset', byteOffset, 0, Number.MAX_SAFE_INTEGER)
  if (typeof width !== 'number') throw new TypeError(`width must be 4 or 8, got ${typeof width}`)
  if (width !== 4 && width !== 8) throw new RangeError(`width must be 4 or 8, got ${width}`)
  if (byteOffset % width !== 0) throw new RangeError(`byteOffset must be a multiple of ${width} (the word's alignment), got ${byteOffset}`)
  const e = word('expected', expected, width)
  const d = word('desired', desired, width)
  return binding.addExitStore(shmid, byteOffset, width, e, d)
}

/**
 * At teardown of the calling thread's environment: unlink(2) `path`
 * (resolved against the current directory now, not then). A missing file,
 * and every other error, is ignored. Returns a handle for cancelExit().
 */
export function addExitUnlink(path: string): number {
  checkString('path', path)
  return binding.addExitUnlink(resolve(path))
}

/**
 * Cancels an exit action of the calling thread. true if it was pending;
 * false for an unknown handle, one already cancelled, or one registered by
 * another thread.
 */
export function cancelExit(handle: number): boolean {
  checkInt('handle', handle, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  return binding.cancelExit(handle)
}

/** How many exit actions the calling thread has registered and not cancelled. */
export function pendingExitActions(): number {
  return binding.pendingExitActions()
}
