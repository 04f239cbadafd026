/**
 * At most one ring per park: the parking protocol (ring/park.ts) lets exactly
 * one sender win a parked receiver (CAS PARKED -> AWAKE), so doorbells never
 * pile up. Here 2-3 sender threads publish after the receiver parked and call
 * shouldRing() together, released from one spin barrier, round after round;
 * the rings are counted in shared memory and the receiver checks, once every
 * sender of the round is done, that its park got exactly one (none is a lost
 * wakeup, two is a double ring). Every other round the senders stall between
 * seeing PARKED and taking it, as a preempted sender would (see
 * fixtures/park-rounds-peer.ts). Stops at the first bad round.
 * A run lasts at least 500 rounds, then until CONTENDED of its rounds had
 * two or more senders past their look at PARKED at once (each of them a
 * double ring if shouldRing() is not atomic), or 4 s.
 *
 * Knobs: FC_RUNS (default 3 runs) and FC_SEED as in the other property tests;
 * CORE_PARK_CONTENDED contended rounds per run (default 300).
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ChannelSegment, channelBytes, initializeChannel } from '@ipc/core'
import {
  CHANNEL_AT, CONTROL_WORDS, R_CONTENDED, R_FAIL_KIND, R_FAIL_RINGS, R_FAIL_ROUND, R_ROUNDS,
} from './fixtures/race.js'
import { fixturePath } from '../../../test/support/children.js'
import { params } from './support/fc.js'

const RUNS = Number(process.env.FC_RUNS ?? 3)
const CONTENDED = Number(process.env.CORE_PARK_CONTENDED ?? 300)
const MIN_ROUNDS = 500
const url = fixturePath('core', 'park-rounds-peer')
const totals = { rounds: 0, contended: 0 }

describe('parking protocol: rings per park (worker_threads)', () => {
  it('rings a parked receiver exactly once, however many senders race for it', async () => {
    await fc.assert(fc.asyncProperty(fc.integer(), fc.integer({ min: 2, max: 3 }), async (seed, senders) => {
      const buffer = new SharedArrayBuffer(CHANNEL_AT + channelBytes(senders, 1024))
      initializeChannel(buffer, CHANNEL_AT, { lanes: senders, laneCapacity: 1024 })
      new ChannelSegment(buffer, CHANNEL_AT).setReceiver({ pid: 1, startTime: 1 })
      const base = { buffer, senders, seed, minRounds: MIN_ROUNDS, contended: CONTENDED, maxMs: 4000, sleepLimitMs: 2000 }
      const threads = [new Worker(url, { workerData: { ...base, role: 'receiver', sender: 0 } })]
      for (let s = 0; s < senders; s++) threads.push(new Worker(url, { workerData: { ...base, role: 'sender', sender: s } }))
      try {
        await Promise.all(threads.map((t) => Promise.race([once(t, 'message'), once(t, 'error').then(([e]) => { throw e })])))
      } finally {
        await Promise.all(threads.map((t) => t.terminate()))
      }
      const control = new Int32Array(buffer, 0, CONTROL_WORDS)
      const round = control[R_FAIL_ROUND]!
      const rings = control[R_FAIL_RINGS]!
      const why = ({
        1: rings === 0
          ? `round ${round}: nobody rang the parked receiver although ${senders} senders published after it parked (lost wakeup)`
          : `round ${round}: ${rings} senders rang one park: at most one ring per park (shouldRing() must take PARKED -> AWAKE with one compare-and-swap)`,
        2: `round ${round}: a sender did not finish its round within 10 s`,
        3: `round ${round}: park() found data on empty lanes`,
        4: `round ${round}: the receiver did not find every message of the previous round, in order`,
      } as Record<number, string>)[control[R_FAIL_KIND]!]
      if (why !== undefined) expect.fail(`${why} (${senders} senders, seed ${seed})`)
      expect(control[R_ROUNDS], 'rounds completed').toBeGreaterThanOrEqual(MIN_ROUNDS)
      totals.rounds += control[R_ROUNDS]!
      totals.contended += control[R_CONTENDED]!
    }), params(RUNS, { endOnFailure: true }))
    console.log(`rings per park: ${totals.rounds} parks, ${totals.contended} with 2+ senders seeing PARKED at once, each rung exactly once`)
    // the race must actually have been run, or the test proves nothing
    expect(totals.contended, 'rounds where two or more senders raced for one park').toBeGreaterThanOrEqual(Math.min(20 * RUNS, CONTENDED * RUNS))
  }, 30_000 + RUNS * 10_000)
})
