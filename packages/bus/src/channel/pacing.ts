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
 *
 * PublishBatch (below) is the batched commit both writers share: when the
 * staged records are published, each store asking the pacer.
 */
import { resolved } from './idle.js'

/** Publishing stores in a row that may leave ringing to later (an internal tuning knob for the bench). */
export const RING_EVERY = Number(process.env.IPC_BUS_RING_EVERY ?? 16) || 16

/** Messages that bursts after the first in one event-loop turn may publish before one rings. */
export const RING_AFTER = 1024

export type RingWhen = 'now' | 'burst' | 'mid'

/** Pacers owing a ring: rung if the process exits before their sweep (the 'exit' hook below). */
const owing = new Set<RingPacer>()

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

/**
 * Batches staged, unpublished: published (and rung) if the process exits
 * before the microtask that publishes them (a process.exit() in the same
 * synchronous code), then every pacer still owing a ring is rung.
 */
const unpublished = new Set<PublishBatch>()
process.on('exit', () => {
  for (const batch of [...unpublished]) batch.finish()
  for (const pacer of [...owing]) pacer.settle()
})

/** What a PublishBatch drives: a writer's lane and its rings. */
export interface BatchedLane {
  /** The publishing store of what is staged. */
  publish(): void
  /** Rings every parked reader (won by CAS: once per park). */
  ring(): void
  /** Whether the writer still has a lane to publish on (claimed, not closed). */
  live(): boolean
}

/**
 * Batched commits, shared by both writers (docs/design.md, "Batched
 * commits"): staged records are published by one store at the end of the
 * synchronous burst (a microtask) or every `every` records, and each store
 * asks the RingPacer whether to ring now.
 */
export class PublishBatch {
  private count = 0
  private queued = false
  private readonly pacer: RingPacer

  /** `onLateError` gets what the microtask's publish threw (nobody else can); without it, it is rethrown. */
  constructor(
    private readonly lane: BatchedLane,
    private readonly every: number,
    coalesceBursts: boolean,
    private readonly onLateError?: (err: unknown) => void,
  ) {
    this.pacer = new RingPacer(() => lane.ring(), () => lane.live(), coalesceBursts)
  }

  /** Records staged since the last publishing store. */
  get staged(): number {
    return this.count
  }

  /** One more record staged: published with its burst, or now once `every` are waiting. */
  add(): void {
    if (++this.count >= this.every) this.publish('mid')
    else if (!this.queued) {
      this.queued = true
      void resolved.then(this.publishSoon)
      unpublished.add(this) // so that process.exit() in this same burst loses nothing
    }
  }

  private readonly publishSoon = (): void => {
    this.queued = false
    unpublished.delete(this)
    if (!this.lane.live()) return
    if (this.onLateError === undefined) return this.publish('burst')
    try {
      this.publish('burst')
    } catch (err) {
      this.onLateError(err)
    }
  }

  /** Publishes what is staged (one store), then after(when). */
  publish(when: RingWhen): void {
    const n = this.count
    if (n === 0) return
    this.count = 0
    this.lane.publish()
    this.after(when, n)
  }

  /** After a publishing store of `messages` (this batch's or the writer's own): rings parked readers now, or later (RingPacer). */
  after(when: RingWhen, messages = 1): void {
    if (this.pacer.due(when, messages)) this.lane.ring()
  }

  /** Publishes what is staged and rings every parked reader, rings left to later included. */
  publishAndRing(): void {
    this.publish('now')
    this.pacer.settle()
  }

  /** The process exits, or the writer closes: publishes and rings what is left, while the lane is live. */
  finish(): void {
    this.queued = false
    unpublished.delete(this)
    if (this.lane.live()) this.publishAndRing()
  }
}
