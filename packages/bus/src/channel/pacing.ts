/**
 * When a writer (a channel's sender, a topic's publisher) rings the readers
 * that parked: a ring is a system call that wakes another CPU, dearer than
 * many messages, and a reader faster than its writer parks between any two
 * of the writer's bursts (docs/design.md, "Rings at the end of an event-loop
 * turn"). Each publishing store asks `due(when)`:
 * - 'mid', a store in the middle of a long synchronous burst: every
 *   RING_EVERY-th rings;
 * - 'burst', a burst's end: the first to ring in its event-loop turn rings
 *   (a lone send wakes its reader at once); later ones in the same turn (an
 *   `await send()` loop: each is a burst of its own) ring once RING_AFTER
 *   messages were published since the last ring;
 * - 'now': rings (before waiting for room, on close, at exit).
 * A pacer made with `coalesceBursts` false (a channel's: request/reply
 * rides channels, and timing every send's turn costs a setImmediate per
 * turn, measured as 10% of request/reply throughput with 4 clients) treats
 * 'burst' as 'now' and paces only 'mid'.
 * What 'mid' and 'burst' left is rung by a setImmediate at the end of the
 * turn, or by the process's 'exit' hook: no reader sleeps on published data
 * past its writer's current turn, or RING_EVERY long bursts or RING_AFTER
 * messages in it.
 */

/** Publishing stores in a row that may leave ringing to later (an internal tuning knob for the bench). */
export const RING_EVERY = Number(process.env.IPC_BUS_RING_EVERY ?? 16) || 16

/** Messages that bursts after the first in one event-loop turn may publish before one rings. */
export const RING_AFTER = 1024

export type RingWhen = 'now' | 'burst' | 'mid'

/** Pacers owing a ring: rung if the process exits before their sweep. */
const owing = new Set<RingPacer>()
process.on('exit', () => {
  for (const pacer of [...owing]) pacer.settle()
})

export class RingPacer {
  /** 'mid' stores and 'burst' messages since the last ring. */
  private unrung = 0
  private unrungMessages = 0
  private rungThisTurn = false
  private sweepQueued = false

  /** `ring` rings every parked reader now (the writer's own ring); `live` says whether the writer can still. */
  constructor(private readonly ring: () => void, private readonly live: () => boolean, private readonly coalesceBursts = true) {}

  /** After a publishing store of `messages`: true when the caller should ring now; false when the ring is left to later (and owed). */
  due(when: RingWhen, messages: number): boolean {
    if ((when === 'mid' && ++this.unrung < RING_EVERY) ||
        (when === 'burst' && this.coalesceBursts && this.rungThisTurn && (this.unrungMessages += messages) < RING_AFTER)) {
      this.queueSweep() // even a 'mid' one: the burst may end on it, with nothing left to publish
      return false
    }
    this.unrung = this.unrungMessages = 0
    owing.delete(this)
    if (this.coalesceBursts && !this.rungThisTurn) {
      this.rungThisTurn = true
      this.queueSweep()
    }
    return true
  }

  /** A ring left to later is owed. */
  get owed(): boolean {
    return this.unrung > 0 || this.unrungMessages > 0
  }

  /** Rings now what is owed (the writer closes, or waits for room). */
  settle(): void {
    if (!this.owed) return
    this.unrung = this.unrungMessages = 0
    owing.delete(this)
    if (this.live()) this.ring()
  }

  private queueSweep(): void {
    if (this.owed) owing.add(this)
    if (this.sweepQueued) return
    this.sweepQueued = true
    setImmediate(this.sweep)
  }

  /** The end of an event-loop turn: the next turn's first burst rings again; what was left is rung now. */
  private readonly sweep = (): void => {
    this.sweepQueued = false
    this.rungThisTurn = false
    this.settle()
  }
}
