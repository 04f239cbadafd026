/**
 * A publisher's view of the subscriber table (./layout.ts) for its lane:
 * which ACTIVE slots gate it (block policy: their cursors bound the room)
 * and which may need ringing (any ACTIVE slot). Cached, and scanned again
 * when EPOCH changed (every claim and release bumps it) or when the cached
 * cursors say there is no room (a slot freed by an exit action bumps
 * nothing).
 */
import { readIdentity } from '../identity.js'
import { AWAKE, PARKED } from '../ring/park.js'
import { EPOCH, POLICY_BLOCK, SUB_ACTIVE, SUB_BELL, SUB_OWNER, SUB_PARKED, SUB_POLICY, SUB_STATE } from './layout.js'
import type { TopicSegment } from './segment.js'

/** A parked subscriber this publisher woke (won its parked word's CAS): ring its doorbell. */
export interface TopicWake {
  slot: number
  /** The subscriber's doorbell address word (../doorbell.ts readBell); 0 = none published. */
  bell: number
  pid: number
  startTime: number
}

const NOBODY: readonly TopicWake[] = Object.freeze([])

export class LaneReaders {
  private readonly words: Int32Array
  private epochSeen = Number.NaN
  /** Cursor word indexes (this lane's) of the ACTIVE block slots, and those slots. */
  private readonly gates: number[] = []
  private readonly gateSlots: number[] = []
  /** ACTIVE slots of any policy. */
  private readonly active: number[] = []
  /** Scans so far: a publisher's cached floor is valid only for the scan it was computed from. */
  scans = 0

  constructor(private readonly segment: TopicSegment, private readonly lane: number) {
    this.words = segment.words
  }

  /** ACTIVE subscribers of any policy, as of the last scan. */
  get activeCount(): number {
    return this.active.length
  }

  /** True when some ACTIVE block subscriber gates the lane (as last scanned). */
  get gated(): boolean {
    return this.gates.length > 0
  }

  /** Scans the table again if EPOCH changed since the last scan; true when it did. */
  refresh(): boolean {
    const epoch = Atomics.load(this.words, EPOCH >> 2)
    if (epoch === this.epochSeen) return false
    this.scan(epoch)
    return true
  }

  /** Scans the table (EPOCH is read first, so a change during the scan is seen by the next refresh()). */
  scan(epoch = Atomics.load(this.words, EPOCH >> 2)): void {
    const { words, segment } = this
    this.epochSeen = epoch
    this.scans++
    this.gates.length = this.gateSlots.length = this.active.length = 0
    for (let slot = 0; slot < segment.slots; slot++) {
      if ((Atomics.load(words, segment.slotWord(slot, SUB_STATE)) & 3) !== SUB_ACTIVE) continue
      this.active.push(slot)
      if (words[segment.slotWord(slot, SUB_POLICY)] === POLICY_BLOCK) {
        this.gates.push(segment.cursorWord(slot, this.lane))
        this.gateSlots.push(slot)
      }
    }
  }

  /** The gating cursor furthest behind `pending` (one that is impossible counts as furthest), or `write` when none is further behind than it. */
  floor(pending: number, write: number): number {
    let floor = write
    let worst = (pending - write) >>> 0
    for (const at of this.gates) {
      const cursor = Atomics.load(this.words, at) >>> 0
      const used = (pending - cursor) >>> 0
      if (used > worst) { worst = used; floor = cursor }
    }
    return floor
  }

  /** The gating slots whose cursors leave no room for `need` more bytes after `pending`. */
  blockers(pending: number, need: number, capacity: number): number[] {
    const out: number[] = []
    for (let k = 0; k < this.gates.length; k++) {
      const cursor = Atomics.load(this.words, this.gates[k]!) >>> 0
      if (((pending - cursor) >>> 0) + need > capacity) out.push(this.gateSlots[k]!)
    }
    return out
  }

  /**
   * After a publish (the seq_cst store of WRITE comes first): the ACTIVE
   * subscribers that were parked and whose parked word this call won (CAS
   * PARKED -> AWAKE, ../ring/park.ts). While nobody is parked: a load of
   * EPOCH and one of each active subscriber's parked word, nothing allocated.
   */
  toRing(): readonly TopicWake[] {
    this.refresh()
    return this.parked(true)
  }

  /**
   * The ACTIVE subscribers parked right now, without taking their parked
   * words (no CAS): a new publisher's hello ring, which wakes them to watch
   * it (docs/design.md, "The parking protocol"). Rescans the table first.
   */
  parkedNow(): readonly TopicWake[] {
    this.scan()
    return this.parked(false)
  }

  /** The scanned ACTIVE slots whose parked word says PARKED (with `take`, only those whose CAS PARKED -> AWAKE this call won). */
  private parked(take: boolean): readonly TopicWake[] {
    const { words, segment } = this
    let out: TopicWake[] | null = null
    for (const slot of this.active) {
      const parkedAt = segment.slotWord(slot, SUB_PARKED)
      if (Atomics.load(words, parkedAt) !== PARKED) continue
      if (take && Atomics.compareExchange(words, parkedAt, PARKED, AWAKE) !== PARKED) continue
      const wake = this.target(slot)
      if (wake !== null) (out ??= []).push(wake)
    }
    return out ?? NOBODY
  }

  /**
   * STATE, BELL and OWNER of a slot whose parked word we won, read until
   * stable: the slot may have been released and claimed again since the scan
   * (then its new owner is the one parked). Null when it is not ACTIVE: a
   * claimer drains once it is set up, nobody is owed a ring.
   */
  private target(slot: number): TopicWake | null {
    const { words, segment } = this
    const stateAt = segment.slotWord(slot, SUB_STATE)
    for (let attempt = 0; attempt < 100; attempt++) {
      const state = Atomics.load(words, stateAt)
      if ((state & 3) !== SUB_ACTIVE) return null
      const bell = Atomics.load(words, segment.slotWord(slot, SUB_BELL)) >>> 0
      const owner = Atomics.load(segment.ids, segment.slotWord(slot, SUB_OWNER) >> 1)
      if (Atomics.load(words, stateAt) !== state) continue
      const id = readIdentity(owner, `topic subscriber slot ${slot} owner`)
      return id === null ? null : { slot, bell, pid: id.pid, startTime: id.startTime }
    }
    return null
  }
}
