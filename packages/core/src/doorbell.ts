/**
 * Doorbell addresses: how a sender (or a receiver freeing room) wakes one
 * sleeping bus instance. An address is one 32-bit word, stored next to the
 * claim it belongs to (a channel's receiver, a lane's owner), so that a
 * process with several bus instances (two libraries, a worker thread and its
 * main thread) is always rung on the doorbell of the instance that sleeps:
 *
 *   bits 0-1   kind: DOORBELL_NONE, DOORBELL_SIGNAL or DOORBELL_PIPE
 *   bits 2-8   signal number (DOORBELL_SIGNAL), else 0
 *   bits 9-31  thread: 0 for a process's main thread, else its worker
 *              threadId (names the FIFO of DOORBELL_PIPE; a signal doorbell
 *              always belongs to the main thread)
 *
 * The word 0 means "no doorbell known": nobody is rung.
 */

export const DOORBELL_NONE = 0
export const DOORBELL_SIGNAL = 1
export const DOORBELL_PIPE = 2
/** Largest kind a directory member entry may record. */
export const MAX_DOORBELL = 2

/** Largest thread id an address can name. */
export const MAX_BELL_THREAD = 2 ** 23 - 1

export interface BellAddress {
  kind: number
  /** Signal number for DOORBELL_SIGNAL, else 0. */
  signal: number
  /** 0 for the main thread, else the worker's threadId. */
  thread: number
}

/** Packs an address into its word; RangeError for an impossible one. */
export function bellWord(bell: BellAddress): number {
  const { kind, signal, thread } = bell
  if (kind !== DOORBELL_SIGNAL && kind !== DOORBELL_PIPE) throw new RangeError(`doorbell kind must be ${DOORBELL_SIGNAL} (signal) or ${DOORBELL_PIPE} (pipe), got ${kind}`)
  if (!Number.isInteger(signal) || signal < 0 || signal > 127 || (kind === DOORBELL_SIGNAL) !== (signal > 0)) throw new RangeError(`doorbell signal must be 1..127 for a signal doorbell and 0 otherwise, got ${signal}`)
  if (!Number.isInteger(thread) || thread < 0 || thread > MAX_BELL_THREAD) throw new RangeError(`doorbell thread must be 0..${MAX_BELL_THREAD}, got ${thread}`)
  return (kind | (signal << 2) | (thread << 9)) >>> 0
}

/** Unpacks a word read from shared memory; null for 0 or a word no bellWord() produces (never rung). */
export function readBell(word: number): BellAddress | null {
  const w = word >>> 0
  const kind = w & 3
  const signal = (w >>> 2) & 0x7f
  const thread = w >>> 9
  if (kind === DOORBELL_SIGNAL && signal > 0 && thread === 0) return { kind, signal, thread }
  if (kind === DOORBELL_PIPE && signal === 0) return { kind, signal, thread }
  return null
}
