/**
 * 1-4 sending threads, each on its own lane of one channel segment in a
 * SharedArrayBuffer, and one receiver (this thread): random sizes, random
 * write forms (tryWrite, claim/commit, batches), random pauses, positions
 * starting just below 2^32. Checks per-sender order, exactly-once delivery,
 * byte-identical payloads with canaries inside every payload and guard bytes
 * around the segment. The workers stay alive across all fast-check runs.
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChannelSegment, channelBytes, initializeChannel, maxMessageLimit } from '@ipc/core'
import { CANARY_HEAD, CANARY_TAIL, backoff, message } from '../fixtures/core/prng.js'
import { params } from '../../packages/core/test/support/fc.js'

const GUARD = 0xcc
const CHANNEL_AT = 128
let workers: Worker[] = []

beforeAll(() => {
  workers = Array.from({ length: 4 }, () => new Worker(new URL('../dist/fixtures/core/lane-sender.js', import.meta.url)))
})
afterAll(async () => {
  await Promise.all(workers.map((w) => w.terminate()))
})

const runShape = fc.record({
  senders: fc.integer({ min: 1, max: 4 }),
  spareLanes: fc.integer({ min: 0, max: 2 }),
  log2: fc.integer({ min: 6, max: 13 }),
  largeMax: fc.boolean(),
  count: fc.integer({ min: 1, max: 400 }),
  pause: fc.constantFrom(0, 0.01, 0.2),
  backoff: fc.integer({ min: 0, max: 2000 }),
  perLane: fc.integer({ min: 1, max: 64 }),
  seed: fc.integer(),
})

let delivered = 0

describe('lanes under concurrent senders (worker_threads)', () => {
  it('delivers every message once, in per-sender order, byte for byte', async () => {
    await fc.assert(fc.asyncProperty(runShape, async (run) => {
      const lanes = run.senders + run.spareLanes
      const capacity = 2 ** run.log2
      const size = channelBytes(lanes, capacity)
      const buffer = new SharedArrayBuffer(CHANNEL_AT + size + 64)
      const all = new Uint8Array(buffer)
      all.fill(GUARD, 64, CHANNEL_AT)
      all.fill(GUARD, CHANNEL_AT + size)
      initializeChannel(buffer, CHANNEL_AT, {
        lanes, laneCapacity: capacity, maxMessageBytes: run.largeMax ? maxMessageLimit(capacity) : undefined,
        initialPosition: (2 ** 32 - run.backoff * 8) >>> 0,
      })
      const segment = new ChannelSegment(buffer, CHANNEL_AT)
      const max = Math.max(7, segment.maxMessageBytes)
      const control = new Int32Array(buffer, 0, 16)
      const replies = workers.slice(0, run.senders).map((w) => once(w, 'message'))
      for (let s = 0; s < run.senders; s++) {
        workers[s]!.postMessage({ buffer, channelOffset: CHANNEL_AT, sender: s, seed: run.seed, count: run.count, max, pause: run.pause })
      }
      const next = new Array<number>(run.senders).fill(0)
      const problems: string[] = []
      const check = (data: Buffer, start: number, end: number, type: number): void => {
        const sender = data[start + 1]!
        const seq = data.readUInt32LE(start + 2)
        if (data[start] !== CANARY_HEAD || data[end - 1] !== CANARY_TAIL) problems.push(`canary broken in ${data.subarray(start, end).toString('hex')}`)
        else if (sender !== type || sender >= run.senders) problems.push(`record of type ${type} claims sender ${sender}`)
        else if (seq !== next[sender]) problems.push(`sender ${sender}: got seq ${seq}, expected ${next[sender]}`)
        else if (!data.subarray(start, end).equals(message(run.seed, sender, seq, max))) problems.push(`sender ${sender} seq ${seq}: payload differs`)
        else next[sender]++
      }
      const deadline = Date.now() + 20_000
      for (let idle = 0; ; idle++) {
        if (segment.drain(check, run.perLane) > 0) {
          idle = 0
          continue
        }
        backoff(idle)
        if (problems.length > 0) break
        let finished = true
        for (let s = 0; s < run.senders; s++) if (Atomics.load(control, 1 + s) === 0) finished = false
        if (finished && !segment.hasData()) break
        if (Date.now() > deadline) throw new Error(`no progress for 20 s: received ${next.join(',')} of ${run.count}`)
      }
      const results = await Promise.all(replies)
      for (const [r] of results) expect(r, r.error).toMatchObject({ ok: true })
      expect(problems).toEqual([])
      expect(next).toEqual(new Array(run.senders).fill(run.count))
      expect(all.subarray(64, CHANNEL_AT).every((b) => b === GUARD) && all.subarray(CHANNEL_AT + size).every((b) => b === GUARD)).toBe(true)
      delivered += run.count * run.senders
    }), params(Number(process.env.CORE_THREAD_RUNS ?? 1500)))
    console.log(`lanes under concurrency: ${delivered} messages delivered and checked`)
  }, 110_000)
})
