/**
 * Pub/sub property across real processes (issue 13, "Tests"): 1-3
 * publishing processes and 1-4 subscriptions (in 4 long-lived agents,
 * fixtures/topic-agent.ts) that join at random times, some leaving again
 * mid-stream, with mixed policies, message sizes from a few bytes to an
 * eighth of the ring and rings of 4-64 KiB (the topic created by the bus's
 * ringBytes or by a first subscribe() with ringBytes).
 *
 * What "published after subscribe() returned" means is decided with shared
 * memory (fixtures/topic-control.ts): a publisher stores STARTED = i + 1
 * before it starts publishing #i and DONE = i + 1 once #i is written; a
 * subscriber loads DONE (lo) just before subscribe() and STARTED (hi) just
 * after it returned. So a subscription's window in each publisher's stream
 * is a suffix starting at some s with lo <= s <= hi: #hi and later must
 * come, #lo - 1 and earlier must not, and those in between may or may not
 * (they were being published while it joined). Half of the subscriptions
 * join "quiesced" (every publisher paused around the call: lo = hi), where
 * the window is known exactly; the others race with the publishers.
 *
 * - block: per publisher a contiguous run of indices from s on, to the end
 *   (unless it left), byte-identical; no drops.
 * - drop: per publisher an increasing subsequence of the window, byte-
 *   identical; subscription.dropped = the sum of its 'drop' events (in its
 *   own process, none elsewhere) = its entry in bus.stats(), and
 *   delivered + dropped = the size of its window: exactly when the window is
 *   known (quiesced), else within the bounds above. Without drops, a drop
 *   subscriber's run is contiguous like a block subscriber's.
 *
 * FC_RUNS (default 40) runs; reproduce a failure with FC_SEED and FC_PATH
 * as fast-check prints them.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Bus } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { Agent } from '../../../test/support/agents.js'
import { trackBus } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'
import type { Collected } from './fixtures/topic-agent.js'
import { CONTROL_BYTES } from './fixtures/topic-control.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 40)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']
const TOPIC = 'ticks'
const AGENTS = 4

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const scenario = fc.record({
  ringBytes: fc.constantFrom(4096, 8192, 16384, 32768, 65536),
  createdBy: fc.constantFrom<'bus' | 'subscribe'>('bus', 'subscribe'),
  publishers: fc.array(fc.record({
    count: fc.integer({ min: 0, max: 250 }),
    // Per mille of the largest pad that fits an eighth of the ring.
    sizes: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 4 }),
    mode: fc.constantFrom<'one' | 'try' | 'many'>('one', 'try', 'many'),
    chunk: fc.integer({ min: 1, max: 16 }),
    pauseEvery: fc.integer({ min: 0, max: 40 }),
  }), { minLength: 1, maxLength: 3 }),
  subscribers: fc.array(fc.record({
    agent: fc.integer({ min: 0, max: AGENTS - 1 }),
    policy: fc.constantFrom<'block' | 'drop'>('block', 'drop'),
    quiesce: fc.boolean(),
    delayMs: fc.integer({ min: 0, max: 40 }),
    leaveAfterMs: fc.oneof({ arbitrary: fc.constant(null), weight: 2 }, { arbitrary: fc.integer({ min: 0, max: 60 }), weight: 1 }),
    slowEvery: fc.integer({ min: 0, max: 30 }),
    slowMs: fc.integer({ min: 1, max: 3 }),
  }), { minLength: 1, maxLength: 4 }),
})

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never
type SubSpec = Scenario['subscribers'][number]

/** Everything wrong with what one subscription got (empty: all is well). */
function judge(c: Collected, spec: SubSpec, left: boolean, counts: number[], tally: { exact: number; bounded: number; drops: number }): string[] {
  const name = `subscriber ${spec.policy}${spec.quiesce ? ' quiesced' : ''}${left ? ' (left early)' : ''} slot ${c.slot}`
  const errors = c.errors.map((e) => `${name}: ${e}`)
  let delivered = 0
  let lower = 0
  let upper = 0
  c.received.forEach((got, p) => {
    if (p >= counts.length) {
      if (got.length > 0) errors.push(`${name}: got messages of publisher ${p}, which does not exist`)
      return
    }
    const count = counts[p]!
    const lo = c.lo[p]!
    const hi = c.hi[p]!
    if (lo > hi) errors.push(`${name}: publisher ${p}: DONE ${lo} > STARTED ${hi}`)
    if (spec.quiesce && lo !== hi) errors.push(`${name}: publisher ${p} was not paused (DONE ${lo}, STARTED ${hi})`)
    for (let k = 1; k < got.length; k++) {
      if (got[k]! <= got[k - 1]!) { errors.push(`${name}: publisher ${p}: #${got[k - 1]} then #${got[k]} (order)`); break }
    }
    if (got.length > 0 && got[0]! < lo) errors.push(`${name}: publisher ${p}: got #${got[0]}, published before subscribe() began (DONE was ${lo})`)
    if (got.length > 0 && got.at(-1)! >= count) errors.push(`${name}: publisher ${p}: got #${got.at(-1)}, never published (count ${count})`)
    const contiguous = got.every((i, k) => i === got[0]! + k)
    if (spec.policy === 'block' || c.dropped === 0) {
      if (!contiguous) {
        const gap = got.findIndex((i, k) => i !== got[0]! + k)
        errors.push(`${name}: publisher ${p}: missing #${got[0]! + gap} (got #${got[gap - 1]} then #${got[gap]}), ${c.dropped} dropped`)
      }
      if (got.length > 0 && got[0]! > hi) errors.push(`${name}: publisher ${p}: lost #${hi}..#${got[0]! - 1}, published after subscribe() returned (first got #${got[0]})`)
      if (!left && got.length === 0 && count > hi) errors.push(`${name}: publisher ${p}: lost #${hi}..#${count - 1}, published after subscribe() returned (got none)`)
      if (!left && got.length > 0 && got.at(-1)! !== count - 1) errors.push(`${name}: publisher ${p}: got up to #${got.at(-1)} of ${count}`)
    }
    delivered += got.length
    upper += count - lo
    lower += count - Math.min(hi, got[0] ?? count)
  })
  if (c.dropped !== c.dropEvents) errors.push(`${name}: subscription.dropped ${c.dropped}, but its 'drop' events sum to ${c.dropEvents}`)
  if (c.statsDropped !== c.dropped) errors.push(`${name}: subscription.dropped ${c.dropped}, bus.stats() says ${c.statsDropped}`)
  if (spec.policy === 'block' && c.dropped !== 0) errors.push(`${name}: a block subscriber counted ${c.dropped} drops`)
  if (spec.policy === 'drop') {
    tally.drops += c.dropped
    const total = delivered + c.dropped
    if (left) {
      if (total > upper) errors.push(`${name}: delivered ${delivered} + dropped ${c.dropped} > ${upper}, all that was published after subscribe() began`)
    } else {
      if (lower === upper) tally.exact++
      else tally.bounded++
      if (total < lower || total > upper) {
        errors.push(lower === upper
          ? `${name}: delivered ${delivered} + dropped ${c.dropped} = ${total}, but exactly ${lower} were published after subscribe() returned`
          : `${name}: delivered ${delivered} + dropped ${c.dropped} = ${total}, outside [${lower}, ${upper}] (published after subscribe() returned .. after it began)`)
      }
    }
  }
  return errors
}

describe('pub/sub property across processes', () => {
  test('random publishers and subscribers joining and leaving: block gets every later message in per-publisher order, drop an in-order subsequence with exact drop counts; nothing torn', async () => {
    const agents = Array.from({ length: AGENTS }, () => new Agent('topic-agent'))
    const controlId = makeSegment(CONTROL_BYTES)
    const controlBuf = shmat(controlId)
    const control = new Int32Array(controlBuf)
    const tally = { runs: 0, subscribers: 0, exact: 0, bounded: 0, drops: 0, left: 0 }
    try {
      await fc.assert(
        fc.asyncProperty(scenario, async (sc) => {
          tally.runs++
          control.fill(0)
          const r = sc.ringBytes
          const bus = trackBus(await Bus.create(sc.createdBy === 'bus' ? { ringBytes: r } : {}))
          try {
            // The topic gets its ring from whoever opens it first: here.
            if (sc.createdBy === 'subscribe') bus.subscribe(TOPIC, () => {}, { ringBytes: r, policy: 'drop' }).unsubscribe()
            else expect(await bus.publish(TOPIC, 'created')).toBe(0) // written with nobody subscribed: history only
            const attached = await Promise.all(agents.map((a) => a.call<{ backstop: string | null }>('attach', { address: bus.address, shm: controlId })))
            for (const a of attached) expect(a.backstop).toBe('off') // a lost wakeup must stall, not hide behind the backstop
            const maxPad = r / 8 - 32
            const sizes = sc.publishers.map((p) => p.sizes.map((permille) => Math.floor((permille * maxPad) / 1000)))
            const counts = sc.publishers.map((p) => p.count)
            const publishing = sc.publishers.map((p, id) => agents[id]!.call<{ count: number; results: number[] }>('publish', {
              topic: TOPIC, publisher: id, count: p.count, sizes: sizes[id], mode: p.mode, chunk: p.chunk, pauseEvery: p.pauseEvery, pauseMs: 1,
            }))
            const subscribing = sc.subscribers.map(async (s) => {
              await sleep(s.delayMs)
              const agent = agents[s.agent]!
              const { key } = await agent.call<{ key: number }>('subscribe', {
                topic: TOPIC, policy: s.policy, quiesce: s.quiesce, sizes, slowEvery: s.slowEvery, slowMs: s.slowMs,
              })
              if (s.leaveAfterMs === null) return { key, left: null }
              await sleep(s.leaveAfterMs)
              return { key, left: await agent.call<Collected>('leave', { key, topic: TOPIC }) }
            })
            const subs = await Promise.all(subscribing)
            const published = await Promise.all(publishing)
            for (const p of published) for (const n of p.results) expect(n).toBeGreaterThanOrEqual(-1) // -1: tryPublish wrote it
            for (const p of published) for (const n of p.results) expect(n).toBeLessThanOrEqual(sc.subscribers.length)
            const collected = await Promise.all(subs.map((s, j) => s.left ?? agents[sc.subscribers[j]!.agent]!.call<Collected>('collect', {
              key: s.key, topic: TOPIC, counts, deadlineMs: 15_000, quietMs: 30,
            }, 40_000)))
            const errors = collected.flatMap((c, j) => judge(c, sc.subscribers[j]!, subs[j]!.left !== null, counts, tally))
            tally.subscribers += collected.length
            tally.left += subs.filter((s) => s.left !== null).length
            expect(errors.slice(0, 10)).toEqual([])
            // Topics are not channels: nothing is listed.
            expect(bus.channelNames()).toEqual([])
          } finally {
            await Promise.all(agents.map((a) => a.call('close')))
            await bus.close()
          }
        }),
        { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true },
      )
    } finally {
      shmdt(controlBuf)
      console.log(`pubsub property: ${tally.runs} runs, ${tally.subscribers} subscriptions (${tally.left} left early); drop subscribers checked exactly ${tally.exact}, within bounds ${tally.bounded}; ${tally.drops} drops counted`)
    }
  }, 300_000)
})
