/**
 * Ring pages mapped ahead of use. A lane's ring is shared memory that each
 * process maps lazily: until the ring has gone round once, every 4 KiB page
 * a writer or a reader reaches first costs that process a page fault (about
 * 10 µs on a VM, more from idle), and a stream of small messages meets one
 * every hundred or so: a round trip from idle showed a spike every 128
 * messages (32-byte records), which made its p99. So a sender maps its lane
 * when it claims it, and a receiver or subscriber each lane once it sees it
 * in use, with one madvise(MADV_POPULATE_WRITE) (@ipc/native prefault:
 * about 0.25 ms per MiB, allocating what the first lap would have
 * allocated anyway). Only lanes in use are touched: an unused lane costs no
 * memory. Rings larger than PREFAULT_MAX_BYTES are mapped up to it (their
 * first lap is long; the call must not stall the event loop). Best effort:
 * on Linux before 5.14 pages fault in on first use, as before.
 */
import type { Buffer } from 'node:buffer'
import { prefault } from '@ipc/native'

/** The most bytes of one ring mapped ahead (about 4 ms on a VM). */
export const PREFAULT_MAX_BYTES = 16 * 1024 * 1024

let enabled = true

/** Tests: turn prefaulting off (or back on) for this process, to compare. */
export function usePrefault(on: boolean): void {
  enabled = on
}

/** Maps `ring` (a lane's data region, a view of a segment) into this process ahead of use. */
export function prefaultRing(ring: Buffer): boolean {
  if (!enabled) return false
  return prefault(ring.length > PREFAULT_MAX_BYTES ? ring.subarray(0, PREFAULT_MAX_BYTES) : ring)
}

/** The reading side: lanes below `done` are mapped; catchUp(n) maps the rest of the first n. */
export class LanesAhead {
  private done = 0

  constructor(private readonly ringOf: (lane: number) => Buffer) {}

  catchUp(lanesInUse: number): void {
    while (this.done < lanesInUse) prefaultRing(this.ringOf(this.done++))
  }
}

/** One LanesAhead per mapping of a segment (every subscription of a topic in a process shares the topic's). */
const perMapping = new WeakMap<object, LanesAhead>()

/** The LanesAhead of `mapping` (a TopicSegment), created with `ringOf` on first use. */
export function lanesAheadOf(mapping: object, ringOf: (lane: number) => Buffer): LanesAhead {
  let ahead = perMapping.get(mapping)
  if (ahead === undefined) perMapping.set(mapping, (ahead = new LanesAhead(ringOf)))
  return ahead
}
