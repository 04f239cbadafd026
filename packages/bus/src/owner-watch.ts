/**
 * A parked receiver's watch on the processes that may owe it a ring: the
 * owners of the lanes it reads (a channel's senders, a topic's publishers).
 * The parking protocol's one hole is a sender that commits, wins the parked
 * word's CAS and dies before it rings (docs/design.md, "The parking
 * protocol"); the kernel's exit notification (alive-cache.ts onExit, a
 * pidfd) tells the receiver instead, so it needs no polling timer while all
 * the owners are watched.
 *
 * At each park, after the parked word says PARKED, the receiver scans the
 * lane owners and watches every one it does not watch yet. A sender that
 * claims a lane later rings a parked receiver once (its hello) after the
 * claim: sequential consistency gives either the scan seeing the new owner
 * or the sender seeing PARKED. An owner found already gone may have
 * committed after the park's re-check of the lanes and died before ringing:
 * the receiver looks at the lanes once more (once per such owner).
 *
 * Owners of this very process are not watched: their exit is ours. Its
 * worker threads are the one gap (a worker terminated between its commit
 * and its ring); the backstop's slow look covers it (./channel/idle.ts).
 */
import type { Identity } from '@ipc/core'
import { exitWatchesOn, onExit } from './alive-cache.js'
import { SELF_PID } from './liveness.js'

/**
 * What a scan found. 'watched': every owner that could owe a ring is
 * watched, sleep; 'look': an owner not seen gone before is gone, look at
 * the lanes again before sleeping; 'unwatched': some owner cannot be
 * watched (no pidfds), keep polling.
 */
export type OwnerScan = 'watched' | 'look' | 'unwatched'

export class OwnerWatch {
  /** Owners watched now, by `pid:startTime`, with what cancels the watch. */
  private readonly watches = new Map<string, () => void>()
  /** Owners found gone (or that exited while watched) since they were last looked for: not looked at again. */
  private readonly gone = new Set<string>()

  /**
   * The owners the last scan that ended 'watched' saw, lane by lane (pid 0:
   * none), unless a watch has fired since (`stale`): a park that finds the
   * same owners is a compare, not a scan (a park is on every idle round trip).
   */
  private readonly lastPids: number[] = []
  private readonly lastStarts: number[] = []
  private stale = true

  /** `exited` is called (on a turn of its own) when a watched owner exits. */
  constructor(private readonly exited: () => void) {}

  /** Watches the owners of lanes [0, count) (ownerOf(i) null: a free lane). Call after storing PARKED. */
  scan(count: number, ownerOf: (lane: number) => Identity | null): OwnerScan {
    if (!this.stale && count === this.lastPids.length && exitWatchesOn() && this.sameOwners(count, ownerOf)) return 'watched'
    this.stale = true
    this.lastPids.length = this.lastStarts.length = count
    // Without pidfds no owner, present or future, is watched.
    let result: OwnerScan = exitWatchesOn() ? 'watched' : 'unwatched'
    const current = new Set<string>()
    for (let i = 0; i < count; i++) {
      const who = ownerOf(i)
      this.lastPids[i] = who?.pid ?? 0
      this.lastStarts[i] = who?.startTime ?? 0
      if (who === null || who.pid === SELF_PID) continue
      const key = `${who.pid}:${who.startTime}`
      if (current.has(key)) continue
      current.add(key)
      if (this.watches.has(key) || this.gone.has(key)) continue
      const watch = onExit(who, () => {
        this.watches.delete(key)
        this.gone.add(key)
        this.stale = true
        this.exited()
      })
      if (watch === 'gone') {
        this.gone.add(key)
        result = 'look'
      } else if (watch === 'unwatched') {
        if (result === 'watched') result = 'unwatched'
      } else {
        this.watches.set(key, watch)
      }
    }
    for (const [key, cancel] of this.watches) {
      if (!current.has(key)) {
        cancel()
        this.watches.delete(key)
      }
    }
    for (const key of this.gone) if (!current.has(key)) this.gone.delete(key)
    this.stale = result !== 'watched'
    return result
  }

  private sameOwners(count: number, ownerOf: (lane: number) => Identity | null): boolean {
    for (let i = 0; i < count; i++) {
      const who = ownerOf(i)
      if (who === null ? this.lastPids[i] !== 0 : who.pid !== this.lastPids[i] || who.startTime !== this.lastStarts[i]) return false
    }
    return true
  }

  /** Stops every watch (the receiver stopped). */
  close(): void {
    for (const cancel of this.watches.values()) cancel()
    this.watches.clear()
    this.gone.clear()
    this.stale = true
  }

  /** Internal, for tests: how many owners are watched. */
  get size(): number {
    return this.watches.size
  }
}
