/**
 * Lost wakeup: the parking protocol (ring/park.ts) between a receiver thread
 * and 1-2 sender threads, with a simulated doorbell (Atomics.wait/notify) and
 * random delays on both sides, over many park/wake cycles. Allowed outcome,
 * and the only one: every message arrives in order, the receiver never sleeps
 * past a committed message (a sleep longer than sleepLimitMs counts as a lost
 * wakeup, and the first one stops the run), and no park is rung twice
 * (rings <= parks attempted; park.rings.threads.test.ts counts the rings of
 * each park exactly).
 *
 * Knobs: FC_RUNS runs (default 3; the nightly run sets more, e.g. FC_RUNS=12)
 * of CORE_PARK_CYCLES messages each (default 100000), FC_SEED to replay.
 * The timeout grows with both.
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ChannelSegment, channelBytes, initializeChannel } from '@ipc/core'
import { LOST, PARKS, RECEIVED, RINGS, SLEEPS } from './fixtures/park-control.js'
import { fixturePath } from '../../../test/support/children.js'
import { params } from './support/fc.js'

const RUNS = Number(process.env.FC_RUNS ?? 3)
const CYCLES = Number(process.env.CORE_PARK_CYCLES ?? 100_000)
/** About 10 s per 100k cycles on 2 busy vCPUs, plus room. */
const TIMEOUT = 30_000 + RUNS * Math.ceil(CYCLES / 100_000) * 20_000
const url = fixturePath('core', 'park-peer')
const totals = { parks: 0, sleeps: 0, rings: 0, messages: 0 }

describe('parking protocol across threads', () => {
  it('never loses a wakeup and rings at most once per park', async () => {
    await fc.assert(fc.asyncProperty(fc.integer(), fc.integer({ min: 1, max: 2 }), async (seed, senders) => {
      const count = Math.ceil(CYCLES / senders)
      const buffer = new SharedArrayBuffer(64 + channelBytes(senders, 1024))
      initializeChannel(buffer, 64, { lanes: senders, laneCapacity: 1024 })
      new ChannelSegment(buffer, 64).setReceiver({ pid: 1, startTime: 1 })
      const base = { buffer, channelOffset: 64, count, senders, seed, sleepLimitMs: 2000 }
      const threads = [new Worker(url, { workerData: { ...base, role: 'receiver', sender: 0 } })]
      for (let s = 0; s < senders; s++) threads.push(new Worker(url, { workerData: { ...base, role: 'sender', sender: s } }))
      try {
        await Promise.all(threads.map((t) => Promise.race([once(t, 'message'), once(t, 'error').then(([e]) => { throw e })])))
      } finally {
        await Promise.all(threads.map((t) => t.terminate()))
      }
      const control = new Int32Array(buffer, 0, 16)
      const [parks, rings, lost, sleeps, received] = [control[PARKS]!, control[RINGS]!, control[LOST]!, control[SLEEPS]!, control[RECEIVED]!]
      const attempts = new ChannelSegment(buffer, 64).stats().parks // every store of PARKED, including parks undone by a re-check
      totals.parks += parks
      totals.rings += rings
      totals.sleeps += sleeps
      totals.messages += count * senders
      if (lost > 0) {
        expect.fail(`lost wakeup: the receiver slept ${base.sleepLimitMs} ms after ${received} of ${count * senders} messages with messages committed and nobody ringing (${senders} senders, seed ${seed}): park() must re-check the lanes after storing PARKED, and a sender that sees PARKED must ring`)
      }
      expect(received, 'every message delivered once, in per-sender order (-1: out of order)').toBe(count * senders)
      expect(rings, 'doorbells rung <= parks attempted: one CAS PARKED -> AWAKE wins per park at most').toBeLessThanOrEqual(attempts)
      expect(rings, 'doorbells rung >= parks that slept: every park that slept was ended by a doorbell of its own').toBeGreaterThanOrEqual(parks)
    }), params(RUNS, { endOnFailure: true }))
    console.log(`parking: ${totals.parks} parks (${totals.sleeps} real sleeps), ${totals.rings} doorbells, ${totals.messages} messages`)
    expect(totals.parks, 'parks that slept: most messages must need a wakeup, or the race was not run').toBeGreaterThan(RUNS * CYCLES / 2)
  }, TIMEOUT)
})
