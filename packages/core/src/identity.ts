/**
 * A process identity as stored in shared memory: pid plus process start time,
 * packed into one 64-bit word so that it is claimed, compared and recycled
 * with a single atomic compare-and-swap (a pid alone is reused by the kernel;
 * pid + start time is not).
 *
 *   word = startTime * 2^22 + pid        0 = nobody
 *
 * pid < 2^22 (Linux's PID_MAX_LIMIT), startTime < 2^41 (clock ticks since
 * boot, as in /proc/<pid>/stat field 22; any caller-chosen unit works).
 */
import { CorruptSegment } from './errors.js'

export interface Identity {
  pid: number
  startTime: number
}

/** Supplied by the caller (core makes no system calls): is this process still running? */
export type IsAlive = (pid: number, startTime: number) => boolean

const PID_BITS = 22
const PID_LIMIT = 2 ** PID_BITS
const START_LIMIT = 2 ** 41

/** Packs an identity into its word; RangeError for an impossible pid or start time. */
export function identityWord(id: Identity): bigint {
  const { pid, startTime } = id
  if (!Number.isInteger(pid) || pid <= 0 || pid >= PID_LIMIT) throw new RangeError(`pid must be an integer from 1 to ${PID_LIMIT - 1}, got ${pid}`)
  if (!Number.isInteger(startTime) || startTime < 0 || startTime >= START_LIMIT) {
    throw new RangeError(`startTime must be an integer from 0 to 2^41-1, got ${startTime}`)
  }
  return (BigInt(startTime) << BigInt(PID_BITS)) | BigInt(pid)
}

/** Unpacks a word read from shared memory: null for 0, CorruptSegment for what no identityWord() produces. */
export function readIdentity(word: bigint, where: string): Identity | null {
  if (word === 0n) return null
  const pid = Number(word & BigInt(PID_LIMIT - 1))
  const startTime = Number(word >> BigInt(PID_BITS))
  if (pid === 0 || word < 0n || startTime >= START_LIMIT) throw new CorruptSegment(where, `0x${word.toString(16)}`, 'is not a process identity')
  return { pid, startTime }
}
