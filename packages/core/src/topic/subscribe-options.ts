/**
 * What a subscription to a topic asks for (TopicSegment.subscribe) and what
 * its drains hand over: the options and their checks, the handler types,
 * and the release steps an exit action runs.
 */
import type { BellAddress } from '../doorbell.js'

export interface SubscribeOptions {
  /** 'block': publishers never overwrite what this subscriber has not read; 'drop': it never holds them up and may be lapped. */
  policy: 'block' | 'drop'
  /** Doorbell by which publishers wake it when parked (or setBell() later); none: nobody rings. */
  bell?: BellAddress | null
  /** Start this many messages back in every lane where they are still in the ring. Default 0: the live end. */
  history?: number
  /** A lapped subscriber skips to the oldest intact record at least this many bytes from being overwritten; 0..capacity/2, default capacity/8. */
  lapHeadroom?: number
  /** Bytes of the scratch buffer a batch is copied into; default min(capacity, 64 KiB), at least maxMessageBytes. */
  batchBytes?: number
}

/**
 * Receives each message, copied out of the ring: data[start, end) is valid
 * only during the call. `seq` is the message's sequence number in its lane.
 */
export type TopicRecordHandler = (data: Buffer, start: number, end: number, type: number, lane: number, seq: number) => void
/** Receives each decoded message. */
export type TopicValueHandler = (value: unknown, type: number, lane: number, seq: number) => void

/** A compare-and-swap that releases the slot, for an exit action run natively (see @ipc/native AtExit). */
export interface ReleaseStep {
  /** Byte offset from the start of the topic segment. */
  offset: number
  width: 4 | 8
  expected: bigint
  desired: bigint
}

/** Throws RangeError for options no subscriber can have (before anything is claimed). */
export function checkSubscribeOptions(options: SubscribeOptions, capacity: number): void {
  if (options.policy !== 'drop' && options.policy !== 'block') throw new RangeError(`options.policy must be 'block' or 'drop', got ${String(options.policy)}`)
  const history = options.history ?? 0
  if (!Number.isInteger(history) || history < 0) throw new RangeError(`options.history must be a non-negative integer, got ${history}`)
  const headroom = options.lapHeadroom ?? capacity / 8
  if (!Number.isInteger(headroom) || headroom < 0 || headroom > capacity / 2) throw new RangeError(`options.lapHeadroom must be an integer from 0 to ${capacity / 2}, got ${headroom}`)
  const batch = options.batchBytes ?? 0
  if (!Number.isInteger(batch) || batch < 0 || batch > 2 ** 30) throw new RangeError(`options.batchBytes must be an integer from 0 to 2^30, got ${batch}`)
}
