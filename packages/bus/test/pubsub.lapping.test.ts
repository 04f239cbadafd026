/**
 * Lapping (issue 13, "Tests"): deliberately slow 'drop' subscribers over a
 * small ring, checked against a model of what was published.
 *
 * One publishing process (fixtures/topic-agent.ts) publishes `count` raw
 * frames (fixtures/payloads.ts makeFrame: sender, index and a body derived
 * from both, with canaries at both ends) of model-chosen sizes as fast as it
 * can (or with a 1 ms pause every so many), by publish(), tryPublish() or
 * publishMany(); 1-3 'drop' subscribers
 * in this process, subscribed before it starts, spin in their handlers now
 * and then so they fall more than a ring behind. Each must get:
 *   - a strictly increasing sequence of indices ending at count - 1 (the
 *     last record is never overwritten), every frame byte-identical to the
 *     model's frame for that index;
 *   - delivered + dropped == count exactly, with dropped ==
 *     subscription.dropped == the sum of its 'drop' events == its entry in
 *     bus.stats().pubsub (and the bus totals add up);
 *   - its drops counted no later than the drain that skipped them: at each
 *     'drop' event, the drops counted so far cover the gaps delivered so far.
 *
 * LAP_RUNS runs (default 20); reproduce with FC_SEED and FC_PATH as printed.
 */
import fc from 'fast-check'
import { describe, expect, test, vi } from 'vitest'
import { Bus, type DropEvent } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { Agent } from '../../../test/support/agents.js'
import { trackBus } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'
import { checkFrame, makeFrame } from './fixtures/payloads.js'
import { CONTROL_BYTES } from './fixtures/topic-control.js'

const RUNS = Number(process.env['LAP_RUNS'] ?? 20)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']
const TOPIC = 'lapped'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function spin(micros: number): void {
  const until = performance.now() + micros / 1000
  while (performance.now() < until) { /* a slow subscriber: the publisher laps it */ }
}

interface Log {
  got: number[]
  errors: string[]
  events: number
  gaps: number
}

describe('pub/sub lapping', () => {
  test('slow drop subscribers over a small ring: in order, byte-identical, delivered + dropped == published, drops counted exactly', async () => {
    const agent = new Agent('topic-agent')
    const controlId = makeSegment(CONTROL_BYTES)
    const controlBuf = shmat(controlId)
    const tally = { runs: 0, lapped: 0, dropped: 0, delivered: 0 }
    try {
      await fc.assert(
        fc.asyncProperty(fc.record({
          ringBytes: fc.constantFrom(4096, 8192),
          count: fc.integer({ min: 300, max: 6000 }),
          // Per mille of the largest frame that fits (the bus's maxMessageBytes: an eighth of the ring).
          sizes: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 6 }),
          mode: fc.constantFrom<'one' | 'try' | 'many'>('one', 'try', 'many'),
          chunk: fc.integer({ min: 2, max: 64 }),
          // 0: flat out; else a 1 ms pause every so many messages (subscribers catch up between laps).
          pauseEvery: fc.oneof(fc.constant(0), fc.integer({ min: 10, max: 300 })),
          subscribers: fc.array(fc.record({ slowEvery: fc.integer({ min: 1, max: 40 }), slowMicros: fc.integer({ min: 20, max: 3000 }) }), { minLength: 1, maxLength: 3 }),
        }), async (sc) => {
          tally.runs++
          new Int32Array(controlBuf).fill(0)
          const bus = trackBus(await Bus.create({ ringBytes: sc.ringBytes }))
          try {
            // msgpack's bin header is 2-3 bytes; a frame adds 12.
            const sizes = sc.sizes.map((pm) => Math.floor((pm * (sc.ringBytes / 8 - 16)) / 1000))
            const logs = new Map<number, Log>()
            const subs = sc.subscribers.map((s) => {
              const log: Log = { got: [], errors: [], events: 0, gaps: 0 }
              let n = 0
              const sub = bus.subscribe<Uint8Array>(TOPIC, (value) => {
                const frame = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
                const f = checkFrame(frame)
                if (f === null || f.s !== 0) { log.errors.push(`torn frame of ${frame.length} bytes`); return }
                const expected = makeFrame(0, f.i, sizes[f.i % sizes.length]!)
                if (!frame.equals(expected)) log.errors.push(`#${f.i}: ${frame.length} bytes, not the model's ${expected.length}`)
                const last = log.got.at(-1) ?? -1
                if (f.i <= last) log.errors.push(`#${f.i} after #${last}`)
                else log.gaps += f.i - last - 1
                log.got.push(f.i)
                if (++n % s.slowEvery === 0) spin(s.slowMicros)
              }, { policy: 'drop' })
              logs.set(sub.slot, log)
              return { sub, log }
            })
            const stray: DropEvent[] = []
            bus.on('drop', (e) => {
              const log = e.topic === TOPIC ? logs.get(e.slot) : undefined
              if (log === undefined || e.pid !== process.pid || !(e.dropped > 0)) { stray.push(e); return }
              log.events += e.dropped
              // A drain skips, then delivers, then reports: every gap delivered so far is counted by now.
              if (log.events < log.gaps) log.errors.push(`at a 'drop' event, ${log.events} counted but ${log.gaps} missing from what was delivered`)
            })
            await agent.call('attach', { address: bus.address, shm: controlId })
            const { results } = await agent.call<{ results: number[] }>('publish', {
              topic: TOPIC, publisher: 0, count: sc.count, sizes, mode: sc.mode, chunk: sc.chunk, pauseEvery: sc.pauseEvery, pauseMs: 1, frames: true,
            })
            // publish() counts the subscriptions the topic had: all of them, all along.
            for (const n of results) if (n !== -1) expect(n).toBe(subs.length)
            await vi.waitUntil(() => subs.every(({ log }) => log.got.at(-1) === sc.count - 1), { timeout: 20_000, interval: 5 }).catch(() => {})
            await sleep(10) // nothing more may come
            const stats = bus.stats().pubsub!
            let total = 0
            for (const { sub, log } of subs) {
              expect(log.errors.slice(0, 5)).toEqual([])
              expect(log.got.at(-1), 'the last message').toBe(sc.count - 1)
              expect(sub.dropped).toBe(log.events)
              expect(log.got.length + sub.dropped, `delivered ${log.got.length} + dropped ${sub.dropped}`).toBe(sc.count)
              expect(log.gaps, 'the gaps in what was delivered').toBe(sub.dropped)
              expect(stats.subscriptions.find((s) => s.slot === sub.slot)).toEqual({ topic: TOPIC, policy: 'drop', slot: sub.slot, dropped: sub.dropped })
              total += sub.dropped
              tally.delivered += log.got.length
              if (sub.dropped > 0) tally.lapped++
              sub.unsubscribe()
            }
            expect(stray).toEqual([])
            expect(stats.dropped).toBe(total)
            expect(stats.droppedByTopic).toEqual(total > 0 ? { [TOPIC]: total } : {})
            tally.dropped += total
          } finally {
            await agent.call('close')
            await bus.close()
          }
        }),
        { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true },
      )
    } finally {
      shmdt(controlBuf)
      console.log(`pubsub lapping: ${tally.runs} runs, ${tally.lapped} subscriptions lapped, ${tally.dropped} messages dropped and ${tally.delivered} delivered`)
    }
    expect(tally.lapped, 'no subscriber was ever lapped: the test does not test lapping').toBeGreaterThan(0)
  }, 300_000)
})
