/**
 * Property: whatever the scenario (1-4 sending processes, random msgpack
 * values and sizes up to the max, rings from 4 KiB to 1 MiB so backpressure
 * happens, signal or pipe doorbell, spin 0 or 50 µs, random pauses in the
 * receiver), every message arrives exactly once, in per-sender order,
 * byte-identical. Senders are real processes (long-lived agents, reused
 * across runs); the receiver is this process.
 *
 * Reproduce a failure with FC_SEED=<seed> (and FC_PATH) as printed.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Bus, type BusOptions } from '@ipc/bus'
import { Agent } from '../../../test/support/agents.js'
import { trackBus } from '../../../test/support/buses.js'
import { checkFrame, checkMessage, type Message } from './fixtures/payloads.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 150)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']

let agents: Agent[] = []
beforeAll(() => { agents = [0, 1, 2, 3].map(() => new Agent()) })
afterAll(() => { for (const a of agents) a.child.kill('SIGKILL') })

const scenario = fc.record({
  senders: fc.integer({ min: 1, max: 4 }),
  ringBytes: fc.constantFrom(4096, 16384, 65536, 1 << 20),
  doorbell: fc.constantFrom<'signal' | 'pipe'>('signal', 'pipe'),
  spinMicros: fc.constantFrom(0, 50),
  bytes: fc.boolean(),
  counts: fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 4, maxLength: 4 }),
  sizes: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
  pauseEvery: fc.integer({ min: 0, max: 50 }),
  receiverPauses: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 5 }),
})

describe('bus property: order, exactly once, byte-identical', () => {
  test('random scenarios across real processes', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const options: BusOptions = { ringBytes: sc.ringBytes, doorbell: sc.doorbell, spinMicros: sc.spinMicros }
        const bus = trackBus(await Bus.create(options))
        try {
          // Sizes up to the max message, leaving room for the envelope.
          const room = Math.floor(sc.ringBytes / 8) - 40
          const sizes = sc.sizes.map((s) => s % Math.max(1, room))
          const expected = sc.counts.slice(0, sc.senders)
          const total = expected.reduce((a, b) => a + b, 0)
          const seen = expected.map(() => 0)
          let received = 0
          let pauseIndex = 0
          const errors: string[] = []
          const done = new Promise<void>((resolve) => {
            const ch = bus.channel<Message | Buffer>('stream')
            if (total === 0) resolve()
            ch.on('message', (m) => {
              let s: number
              let i: number
              if (Buffer.isBuffer(m)) {
                const f = checkFrame(m)
                if (f === null) { errors.push('torn frame'); return }
                ;({ s, i } = f)
              } else {
                if (!checkMessage(m)) { errors.push(`bad message ${JSON.stringify(m).slice(0, 80)}`); return }
                ;({ s, i } = m)
              }
              if (seen[s] !== i) errors.push(`sender ${s}: got #${i}, expected #${seen[s]}`)
              seen[s] = i + 1
              received++
              // Random receiver pauses: block this event loop a moment.
              const pause = sc.receiverPauses[pauseIndex++ % Math.max(1, sc.receiverPauses.length)] ?? 0
              if (pause > 0 && received % 97 === 0) {
                const until = performance.now() + pause
                while (performance.now() < until) { /* busy: the ring fills */ }
              }
              if (received === total) resolve()
            })
          })
          await Promise.all(agents.slice(0, sc.senders).map((a) => a.call('attach', { address: bus.address, options: {} })))
          await Promise.all(agents.slice(0, sc.senders).map((a, s) => a.call('send', {
            channel: 'stream', sender: s, count: expected[s], sizes, pauseEvery: sc.pauseEvery, pauseMs: 1, bytes: sc.bytes,
          })))
          await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`stalled at ${received}/${total}`)), 20_000))])
          await new Promise((r) => setTimeout(r, 5)) // nothing extra may arrive
          expect(errors).toEqual([])
          expect(received).toBe(total)
          expect(seen).toEqual(expected)
        } finally {
          await Promise.all(agents.slice(0, sc.senders).map((a) => a.call('close')))
          await bus.close()
        }
      }),
      { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true },
    )
  }, 600_000)
})
