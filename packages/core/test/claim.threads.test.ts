/**
 * Exactly one receiver: 2-3 threads race to claim the receiver of one channel
 * segment (a SharedArrayBuffer) whose receiver died, or that has none, round
 * after round, released together from a spin barrier. claimReceiver() must
 * let exactly one of them win each time (a compare-and-swap on the RECEIVER
 * word), and the word must then name the winner. Stops at the first bad
 * round (see fixtures/claim-peer.ts). A run lasts at least 500
 * rounds, then until CONTENDED of its rounds had two or more contenders past
 * the liveness check at once (each of them a double win if the claim is not
 * a compare-and-swap), or 4 s.
 *
 * Knobs: FC_RUNS (default 3 runs) and FC_SEED as in the other property tests;
 * CORE_CLAIM_CONTENDED contended rounds per run (default 300).
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { channelBytes, initializeChannel } from '@ipc/core'
import { CHANNEL_AT, CONTROL_WORDS, C_CONTENDED, C_FAIL_KIND, C_FAIL_ROUND, C_FAIL_WINS, C_ROUNDS } from './fixtures/race.js'
import { fixturePath } from '../../../test/support/children.js'
import { params } from './support/fc.js'

const RUNS = Number(process.env.FC_RUNS ?? 3)
const CONTENDED = Number(process.env.CORE_CLAIM_CONTENDED ?? 300)
const MIN_ROUNDS = 500
const url = fixturePath('core', 'claim-peer')
const totals = { rounds: 0, contended: 0 }

describe('receiver claim race (worker_threads)', () => {
  it('lets exactly one of several racing receivers win, every time', async () => {
    await fc.assert(fc.asyncProperty(fc.integer(), fc.integer({ min: 2, max: 3 }), async (seed, contenders) => {
      const buffer = new SharedArrayBuffer(CHANNEL_AT + channelBytes(1, 256))
      initializeChannel(buffer, CHANNEL_AT, { lanes: 1, laneCapacity: 256 })
      const threads = Array.from({ length: contenders }, (_, contender) =>
        new Worker(url, { workerData: { buffer, contenders, contender, seed, minRounds: MIN_ROUNDS, contended: CONTENDED, maxMs: 4000 } }))
      try {
        await Promise.all(threads.map((t) => Promise.race([once(t, 'message'), once(t, 'error').then(([e]) => { throw e })])))
      } finally {
        await Promise.all(threads.map((t) => t.terminate()))
      }
      const control = new Int32Array(buffer, 0, CONTROL_WORDS)
      const round = control[C_FAIL_ROUND]!
      const why = ({
        1: `round ${round}: ${control[C_FAIL_WINS]} of ${contenders} racing receivers won the claim: exactly one may (claimReceiver must take the RECEIVER word with a compare-and-swap)`,
        2: `round ${round}: the RECEIVER word does not name the one contender that won`,
        3: `round ${round}: claimReceiver threw`,
        4: `round ${round}: claimReceiver reported the dead receiver as the live one`,
      } as Record<number, string>)[control[C_FAIL_KIND]!]
      if (why !== undefined) expect.fail(`${why} (seed ${seed})`)
      expect(control[C_ROUNDS], 'rounds completed').toBeGreaterThanOrEqual(MIN_ROUNDS)
      totals.rounds += control[C_ROUNDS]!
      totals.contended += control[C_CONTENDED]!
    }), params(RUNS, { endOnFailure: true }))
    console.log(`receiver claims: ${totals.rounds} races, ${totals.contended} with 2+ contenders past the liveness check at once, each won exactly once`)
    expect(totals.contended, 'rounds where two or more contenders raced for a dead receiver').toBeGreaterThanOrEqual(Math.min(20 * RUNS, CONTENDED * RUNS))
  }, 30_000 + RUNS * 10_000)
})
