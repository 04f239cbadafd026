/**
 * 1-4 sending threads, each on its own lane of one channel segment in a
 * SharedArrayBuffer, and one receiver (this thread): random sizes, random
 * write forms (tryWrite, claim/commit, batches), random pauses, positions
 * starting just below 2^32. Checks per-sender order, exactly-once delivery,
 * byte-identical payloads with canaries inside every payload and guard bytes
 * around the segment. The workers stay alive across all fast-check runs.
 *
 * Fails fast: at the first problem (a broken canary, a sequence gap, a
 * sender's error, 20 s without progress) the receiver sets STOP, every
 * sender gives up at once, and the run fails with that first problem (no
 * shrinking: the interleaving is not reproducible anyway). Knobs:
 * CORE_THREAD_RUNS (default 1500 runs), FC_SEED.
 */
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChannelSegment, channelBytes, initializeChannel, maxMessageLimit } from '@ipc/core'
import { CANARY_HEAD, CANARY_TAIL, backoff, message } from './fixtures/prng.js'
import { DONE_BASE, STOP } from './fixtures/lane-control.js'
import { fixturePath } from '../../../test/support/children.js'
import { params } from './support/fc.js'

const GUARD = 0xcc
const CHANNEL_AT = 128
let workers: Worker[] = []

beforeAll(() => {
  workers = Array.from({ length: 4 }, () => new Worker(fixturePath('core', 'lane-sender')))
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

type Reply = { ok: boolean; stopped?: boolean; error?: string }
/** The senders' replies; a sender that does not answer within `ms` (it ignored STOP) is reported as failed. */
async function settle(replies: Array<Promise<unknown[]>>, ms: number): Promise<Reply[]> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<Reply[]>((resolve) => {
    timer = setTimeout(() => resolve([{ ok: false, error: `a sender did not stop within ${ms} ms of STOP` }]), ms)
  })
  try {
    return await Promise.race([Promise.all(replies).then((all) => all.map(([r]) => r as Reply)), late])
  } finally {
    clearTimeout(timer)
  }
}

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
        lanes, laneCapacity: capacity, maxRecordBytes: run.largeMax ? maxMessageLimit(capacity) : undefined,
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
      const problem = (text: string): void => {
        if (problems.length === 0) Atomics.store(control, STOP, 1) // senders give up at once
        problems.push(text) // only the first is reported: later ones are usually its echoes
      }
      const check = (data: Buffer, start: number, end: number, type: number): void => {
        if (problems.length > 0) return
        const sender = data[start + 1]!
        const seq = data.readUInt32LE(start + 2)
        if (data[start] !== CANARY_HEAD || data[end - 1] !== CANARY_TAIL) problem(`payload integrity: canary broken in ${data.subarray(start, Math.min(end, start + 48)).toString('hex')}${end - start > 48 ? '...' : ''} (${end - start} bytes of type ${type}; read before it was written, or overwritten while read)`)
        else if (sender !== type || sender >= run.senders) problem(`record integrity: record of type ${type} claims sender ${sender}`)
        else if (seq !== next[sender]) problem(`exactly once, in per-sender order: sender ${sender}: got seq ${seq}, expected ${next[sender]}`)
        else if (!data.subarray(start, end).equals(message(run.seed, sender, seq, max))) problem(`payload integrity: sender ${sender} seq ${seq}: payload differs from what was sent`)
        else next[sender]++
      }
      let receiverError: unknown
      try {
        let progressAt = Date.now()
        for (let idle = 0; ; idle++) {
          if (segment.drain(check, run.perLane) > 0) {
            if (problems.length > 0) break
            idle = 0
            progressAt = Date.now()
            continue
          }
          let finished = true
          for (let s = 0; s < run.senders; s++) {
            const state = Atomics.load(control, DONE_BASE + s)
            if (state === 0) finished = false
            if (state === 2) problem(`sender ${s} failed (its error follows)`)
          }
          if (problems.length > 0) break
          if (finished && !segment.hasData()) break
          backoff(idle)
          if ((idle & 255) === 255 && Date.now() - progressAt > 20_000) {
            problem(`progress: nothing received for 20 s; received ${next.join(',')} of ${run.count} per sender`)
            break
          }
        }
      } catch (error) {
        Atomics.store(control, STOP, 1)
        receiverError = error
      }
      const results = await settle(replies, 10_000)
      if (receiverError !== undefined) throw receiverError
      const failed = results.find((r) => !r.ok)
      if (problems.length > 0 || failed !== undefined) {
        const first = problems[0] ?? 'a sender failed'
        expect.fail(`${first}${failed !== undefined ? `\n${failed.error}` : ''}\nrun: ${JSON.stringify(run)}`)
      }
      expect(next, 'every message delivered exactly once').toEqual(new Array(run.senders).fill(run.count))
      expect(all.subarray(64, CHANNEL_AT).every((b) => b === GUARD) && all.subarray(CHANNEL_AT + size).every((b) => b === GUARD), 'guard bytes around the segment untouched').toBe(true)
      delivered += run.count * run.senders
    }), params(Number(process.env.CORE_THREAD_RUNS ?? 1500), { endOnFailure: true }))
    console.log(`lanes under concurrency: ${delivered} messages delivered and checked`)
  }, 110_000)
})
