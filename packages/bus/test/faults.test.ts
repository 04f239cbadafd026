/**
 * Crash containment (I5): a sender killed with SIGKILL at a random moment
 * loses at most the message it was writing; every message it committed is
 * delivered exactly once, no torn message is ever delivered, and the other
 * senders keep flowing within 100 ms.
 *
 * Each trial: two senders stream into this process; one is killed after a
 * random delay. Reproduce with FC_SEED as printed.
 */
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, test, vi } from 'vitest'
import { Bus } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { fixturePath, track } from '../../../test/support/children.js'
import { trackBus } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'
import { checkMessage, type Message } from './fixtures/payloads.js'

// Killing senders at random moments is exactly the case of a sender killed
// between winning the right to ring and ringing: the parked receiver learns
// of its exit from its watch on the lane owners (src/owner-watch.ts). The
// backstop stays off, as everywhere else, so that a hole in the watch
// stalls a trial instead of hiding as a delay.

const TRIALS = Number(process.env['FAULT_TRIALS'] ?? 120)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])

describe('faults', () => {
  test(`SIGKILL a sender at random moments (${TRIALS} trials)`, async () => {
    const progressId = makeSegment(4096)
    const progressBuf = shmat(progressId)
    const progress = new Int32Array(progressBuf)
    let worstGapMs = 0
    const gaps: number[] = []
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 120 }), fc.constantFrom<'signal' | 'pipe'>('signal', 'pipe'), async (killAfterMs, doorbell) => {
          progress.fill(0)
          const bus = trackBus(await Bus.create({ ringBytes: 16384, doorbell }))
          try {
            const next = [0, 0]
            const errors: string[] = []
            let lastFromSurvivor = 0
            let survivorGap = 0
            let killedAt = Infinity
            const stream = bus.channel<Message>('stream')
            stream.on('message', (m) => {
              if (!checkMessage(m)) { errors.push('torn or corrupt message'); return }
              if (m.i !== next[m.s]) errors.push(`sender ${m.s}: got #${m.i}, expected #${next[m.s]}`)
              next[m.s] = m.i + 1
              if (m.s === 1) {
                const now = performance.now()
                if (lastFromSurvivor > 0 && now > killedAt) survivorGap = Math.max(survivorGap, now - lastFromSurvivor)
                lastFromSurvivor = now
              }
            })
            const senders = [0, 1].map((s) => track(bus.fork(fixturePath('bus', 'killable-sender'), [String(s), String(progressId), String(s)], {
              stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            })))
            await Promise.all(senders.map((c) => once(c, 'message')))
            await new Promise((r) => setTimeout(r, killAfterMs))
            senders[0]!.kill('SIGKILL')
            killedAt = performance.now()
            await once(senders[0]!, 'exit')
            const committed = Atomics.load(progress, 0)
            // Let the survivor run on for a while (at least 150 ms, and until
            // it has committed something since the kill: on a loaded machine
            // a starved process may not run at all for that long; at most
            // 2 s), then stop it too.
            const before = Atomics.load(progress, 1)
            await new Promise((r) => setTimeout(r, 150))
            await vi.waitUntil(() => Atomics.load(progress, 1) > before, { timeout: 2000, interval: 10 }).catch(() => {}) // the assertions below report it
            const survivorCommitted = Atomics.load(progress, 1)
            senders[1]!.kill('SIGKILL')
            await once(senders[1]!, 'exit')
            // Drain what is left: until every lane is empty (at most 3 s; a
            // receiver stranded by a sender killed mid-ring wakes within 2 s).
            await vi.waitUntil(() => stream.stats().lanes.every((l) => l.usedBytes === 0), { timeout: 3000, interval: 10 }).catch(() => {})
            worstGapMs = Math.max(worstGapMs, survivorGap)
            expect(errors).toEqual([])
            // Everything the killed sender knew was committed arrived; at most
            // one more (committed but not yet counted) may have too.
            expect(next[0]).toBeGreaterThanOrEqual(committed)
            expect(next[0]).toBeLessThanOrEqual(committed + 1)
            // If this fails, say whether the survivor committed anything (a
            // stalled receiver) or not (a starved or stuck sender).
            const stats = stream.stats()
            expect(next[1], `survivor committed ${survivorCommitted}; receiver parks ${stats.parks}, drains ${stats.drains}, lanes ${JSON.stringify(stats.lanes.map((l) => [l.owner, l.messagesWritten, l.messagesRead, l.usedBytes, l.fullEvents, l.doorbellsRung]))}`).toBeGreaterThan(0)
            // Hard bound per trial; the 100 ms requirement is checked on the
            // distribution below, because a 2-vCPU CI machine running other
            // test files beside this one can starve any process for longer.
            expect(survivorGap).toBeLessThan(1000)
            gaps.push(survivorGap)
          } finally {
            await bus.close()
          }
        }),
        { numRuns: TRIALS, seed, verbose: 1, endOnFailure: true },
      )
    } finally {
      shmdt(progressBuf)
    }
    gaps.sort((a, b) => a - b)
    const p90 = gaps[Math.floor(gaps.length * 0.9)] ?? 0
    console.log(`faults: gap in the surviving sender's stream around a kill: p50 ${(gaps[gaps.length >> 1] ?? 0).toFixed(1)} ms, p90 ${p90.toFixed(1)} ms, worst ${worstGapMs.toFixed(1)} ms`)
    expect(p90).toBeLessThan(100)
  }, 600_000)

  test('a dead receiver makes pending and future sends reject with PeerGone within a second', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: 4096, maxMessageBytes: 256 }))
    const child = track(bus.fork(fixturePath('bus', 'idle-receiver'), ['60000'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }))
    const ch = bus.channel<number>('idle')
    // Wait until the child is the receiver (its lane drains), then stop it so the ring fills.
    await ch.send(0)
    for (let i = 0; i < 100 && ch.stats().lanes.every((l) => l.messagesRead === 0); i++) await new Promise((r) => setTimeout(r, 20))
    child.kill('SIGSTOP')
    while (ch.trySend(1)) { /* fill */ }
    const pending = ch.send(2)
    const t0 = performance.now()
    child.kill('SIGKILL')
    await expect(pending).rejects.toMatchObject({ code: 'ERR_PEER_GONE' })
    expect(performance.now() - t0).toBeLessThan(1000)
    await expect(ch.send(3)).rejects.toMatchObject({ code: 'ERR_PEER_GONE' })
    expect(() => ch.trySend(4)).toThrow(expect.objectContaining({ code: 'ERR_PEER_GONE' }))
  })
})
