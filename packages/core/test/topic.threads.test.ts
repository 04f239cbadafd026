/**
 * A topic under real concurrency (worker_threads over one SharedArrayBuffer):
 * 1-3 publisher threads, each on its own lane, and 2-3 subscriber threads
 * that join at random moments (some with history), some of which leave
 * early; subscriber 0 is a slow drop subscriber (long pauses, batches of
 * 1-4) over lanes of 128 B to 4 KiB, so it is lapped over and over. Each
 * subscriber checks what it receives itself (fixtures/topic-peer.ts): no torn
 * or overwritten payload (canaries and every byte), per-lane order, block
 * subscribers get every message from where they started, drop counters equal
 * exactly the seq gaps, and the parking protocol never loses a wakeup
 * (simulated doorbells). Positions start just below 2^32.
 *
 * Fails fast: the first problem sets STOP and every peer reports. Knobs:
 * CORE_TOPIC_RUNS (default 150 runs), FC_SEED.
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TopicSegment, initializeTopic, topicBytes, topicMaxMessageLimit } from '@ipc/core'
import { CONTROL_WORDS, LOST_WAKEUPS, STOP } from './fixtures/topic-control.js'
import type { PeerReply, PublisherJob, SubscriberJob } from './fixtures/topic-peer.js'
import { fixturePath } from '../../../test/support/children.js'
import { params } from './support/fc.js'

const TOPIC_AT = CONTROL_WORDS * 4
const GUARD = 0xcc
const RUNS = Number(process.env.CORE_TOPIC_RUNS ?? 150)
let publishers: Worker[] = []
let subscribers: Worker[] = []

beforeAll(() => {
  publishers = Array.from({ length: 3 }, () => new Worker(fixturePath('core', 'topic-peer')))
  subscribers = Array.from({ length: 3 }, () => new Worker(fixturePath('core', 'topic-peer')))
})
afterAll(async () => {
  await Promise.all([...publishers, ...subscribers].map((w) => w.terminate()))
})

const subscriberShape = fc.record({
  block: fc.boolean(),
  history: fc.constantFrom(0, 0, 2, 50),
  joinDelay: fc.constantFrom(0, 1000, 100_000, 1_000_000),
  leaveAfter: fc.constantFrom(-1, -1, -1, 5, 60),
})

const runShape = fc.record({
  publishers: fc.integer({ min: 1, max: 3 }),
  subscribers: fc.array(subscriberShape, { minLength: 1, maxLength: 2 }),
  slowHistory: fc.constantFrom(0, 10),
  spareSlots: fc.integer({ min: 0, max: 2 }),
  log2: fc.integer({ min: 7, max: 12 }),
  largeMax: fc.boolean(),
  count: fc.integer({ min: 1, max: 600 }),
  pause: fc.constantFrom(0, 0.01, 0.2),
  backoff: fc.integer({ min: 0, max: 2000 }),
  seed: fc.integer(),
})

/** The peers' replies; one that does not answer within `ms` of the others (it ignored STOP) is reported as failed. */
async function settle(replies: Array<Promise<unknown[]>>, ms: number): Promise<PeerReply[]> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<PeerReply[]>((resolve) => {
    timer = setTimeout(() => resolve([{ ok: false, error: `a peer did not finish within ${ms} ms` }]), ms)
  })
  try {
    return await Promise.race([Promise.all(replies).then((all) => all.map(([r]) => r as PeerReply)), late])
  } finally {
    clearTimeout(timer)
  }
}

const totals = { delivered: 0, dropped: 0, laps: 0, parks: 0, runsWithLaps: 0 }

describe('topic under concurrent publishers and subscribers (worker_threads)', () => {
  it('block subscribers get everything, drop subscribers count exactly what they lose, nothing is torn', async () => {
    await fc.assert(fc.asyncProperty(runShape, async (run) => {
      const capacity = 2 ** run.log2
      const subs = [{ block: false, history: run.slowHistory, joinDelay: 0, leaveAfter: -1, slow: true }, ...run.subscribers.map((s) => ({ ...s, slow: false }))]
      const slots = subs.length + run.spareSlots
      const size = topicBytes(run.publishers, slots, capacity)
      const buffer = new SharedArrayBuffer(TOPIC_AT + size + 64)
      const all = new Uint8Array(buffer)
      all.fill(GUARD, CONTROL_WORDS * 4 - 64, TOPIC_AT)
      all.fill(GUARD, TOPIC_AT + size)
      initializeTopic(buffer, TOPIC_AT, {
        lanes: run.publishers, slots, laneCapacity: capacity,
        maxMessageBytes: run.largeMax ? topicMaxMessageLimit(capacity) : undefined,
        initialPosition: (2 ** 32 - run.backoff * 8) >>> 0,
      })
      const max = new TopicSegment(buffer, TOPIC_AT).maxMessageBytes
      const control = new Int32Array(buffer, 0, CONTROL_WORDS)
      const replies: Array<Promise<unknown[]>> = []
      subs.forEach((s, i) => {
        replies.push(once(subscribers[i]!, 'message'))
        const job: SubscriberJob = {
          role: 'subscriber', buffer, topicAt: TOPIC_AT, subscriber: i, publishers: run.publishers, seed: run.seed, count: run.count, max,
          policy: s.block ? 'block' : 'drop', history: s.history, slow: s.slow, joinDelay: s.joinDelay, leaveAfter: s.leaveAfter, sleepLimitMs: 5000,
        }
        subscribers[i]!.postMessage(job)
      })
      for (let p = 0; p < run.publishers; p++) {
        replies.push(once(publishers[p]!, 'message'))
        const job: PublisherJob = { role: 'publisher', buffer, topicAt: TOPIC_AT, publisher: p, publishers: run.publishers, seed: run.seed, count: run.count, max, pause: run.pause }
        publishers[p]!.postMessage(job)
      }
      const results = await settle(replies, 60_000)
      const failed = results.find((r) => !r.ok)
      if (failed !== undefined || Atomics.load(control, STOP) !== 0) {
        expect.fail(`${failed?.error ?? 'a peer stopped the run'}\nlost wakeups: ${control[LOST_WAKEUPS]}\nrun: ${JSON.stringify(run)}`)
      }
      expect(all.subarray(CONTROL_WORDS * 4 - 64, TOPIC_AT).every((b) => b === GUARD) && all.subarray(TOPIC_AT + size).every((b) => b === GUARD), 'guard bytes around the segment').toBe(true)
      let laps = 0
      for (const r of results) {
        totals.delivered += r.delivered ?? 0
        totals.dropped += r.dropped ?? 0
        totals.parks += r.parks ?? 0
        laps += r.laps ?? 0
      }
      totals.laps += laps
      if (laps > 0) totals.runsWithLaps++
    }), params(RUNS, { endOnFailure: true }))
    console.log(`topic threads: ${totals.delivered} messages delivered and checked, ${totals.dropped} dropped in ${totals.laps} laps (${totals.runsWithLaps} runs lapped), ${totals.parks} parks`)
    expect(totals.runsWithLaps, 'runs in which the slow drop subscriber was lapped').toBeGreaterThan(RUNS / 10)
  }, 300_000)
})
