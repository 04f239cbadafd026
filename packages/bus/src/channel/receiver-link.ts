/**
 * A channel writer's view of the channel's receiver (writer.ts): who it is
 * (the claim in the channel header may change by a takeover), whether it
 * lives (sends fail with PeerGone once it died, until another takes over),
 * whether this process may ring it (checkCanRing, once per claim), and the
 * doorbell address to ring it by, cached under the claim's stamp.
 */
import { performance } from 'node:perf_hooks'
import type { ChannelSegment, Identity } from '@ipc/core'
import { processRuns } from '../alive-cache.js'
import { checkCanRing, ring, type Target } from '../doorbell.js'
import { PeerGone } from '../errors.js'
import { SELF_PID } from '../liveness.js'

/** How long a confirmed receiver is trusted before the next liveness check (ms). */
export const RECHECK_MS = 200

export class ReceiverLink {
  /** The claim stamp of the receiver checkCanRing() last approved. */
  private canRingStamp: number | null = null
  /** The receiver found dead: sends fail fast until another takes over. */
  private gone: Identity | null = null
  private checkedAt = -Infinity
  /** The doorbell address last read, and the claim stamp it was read under. */
  private ringTarget: Target | null = null
  private ringStamp = 0

  constructor(
    private readonly segment: ChannelSegment,
    private readonly name: string,
    private readonly token: number,
    private readonly runtimeDir: string,
  ) {}

  /** check() when due: a dead receiver was seen, or the last check is older than RECHECK_MS. */
  checkIfDue(now: number): void {
    if (this.gone !== null || now - this.checkedAt > RECHECK_MS) this.check(now, this.gone !== null)
  }

  /** True while the receiver last looked at was found dead. */
  get sawGone(): boolean {
    return this.gone !== null
  }

  /**
   * Reads the receiver from the channel header and throws PeerGone if it
   * died; at most every RECHECK_MS unless `force`. No receiver yet is fine:
   * messages wait in the ring for the first one.
   */
  check(now: number, force: boolean): void {
    if (!force && now - this.checkedAt <= RECHECK_MS) return
    this.checkedAt = now
    const stamp = this.segment.receiverStamp() // before the read: a claim that changes in between is checked next time
    const r = this.segment.receiver()
    if (r === null) { this.canRingStamp = null; this.gone = null; return }
    const gone = this.gone
    if (gone !== null && gone.pid === r.pid && gone.startTime === r.startTime) throw new PeerGone(r.pid, `receiver of channel '${this.name}'`)
    this.gone = null
    if (!processRuns(r, now)) {
      this.gone = r
      throw new PeerGone(r.pid, `receiver of channel '${this.name}'`)
    }
    if (r.bell === null || stamp === this.canRingStamp) return // claim in flight (it drains once set up), or approved already
    if (r.pid !== SELF_PID) checkCanRing(r as Target, this.runtimeDir)
    this.canRingStamp = stamp
  }

  /**
   * Rings the receiver that parked (the caller won the right to, by CAS):
   * the instance that receives now, by the address it published with its
   * claim.
   */
  ring(): void {
    const now = performance.now()
    if (now - this.checkedAt > RECHECK_MS) this.check(now, true)
    // The address is read afresh unless the claim's stamp is the one the
    // cached target was read under (reading it allocates: this is the wake
    // path of every idle round trip).
    const stamp = this.segment.receiverStamp()
    if (stamp !== this.ringStamp || this.ringTarget === null) {
      const r = this.segment.receiver()
      this.ringTarget = r === null || r.bell === null ? null : r as Target
      this.ringStamp = this.ringTarget === null ? stamp ^ 1 : stamp // never trust a miss
    }
    // No receiver, or one whose claim is in flight: a new receiver drains
    // once it is set up, so nothing waits on this ring.
    const r = this.ringTarget
    if (r === null) return
    if (!ring(r, this.token, this.runtimeDir, now)) {
      // The message is committed and stays in the ring for a receiver that
      // takes over; this sender learns of the death on its next send.
      this.checkedAt = -Infinity
    }
  }
}
