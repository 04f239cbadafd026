/**
 * Pub/sub across real processes: completeness and per-publisher order for
 * everything published after subscribe() returned ('block'), exact drop
 * accounting ('drop'), dead and departed subscribers, and the API's edges.
 *
 * The property uses three long-lived agents (fixtures/pattern-agent.ts)
 * that publish and subscribe; "published after subscribe() returned" is
 * decided with shared-memory counters: a publisher stores i + 1 before it
 * starts publish #i, and a subscriber reads the counters right after
 * subscribe() returns. Reproduce a failure with FC_SEED (and FC_PATH) as printed.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { Bus, Closed, type DropEvent } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { Agent } from '../../../test/support/agents.js'
import { trackBus } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 40)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']

const scenario = fc.record({
  publishers: fc.array(fc.record({ count: fc.integer({ min: 0, max: 160 }), pauseEvery: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 3 }),
  subscribers: fc.array(fc.record({
    agent: fc.integer({ min: 0, max: 2 }),
    policy: fc.constantFrom<'block' | 'drop'>('block', 'drop'),
    delayMs: fc.integer({ min: 0, max: 60 }),
    slowEvery: fc.integer({ min: 0, max: 30 }),
    ringBytes: fc.constantFrom(4096, 65536),
  }), { minLength: 1, maxLength: 4 }),
})

interface Collected { snapshot: number[]; received: Array<[number, number]> }

describe('pub/sub property', () => {
  test('subscribers joining at random times get every later message in per-publisher order; drops are exact', async () => {
    const agents = [0, 1, 2].map(() => new Agent('pattern-agent'))
    const startedId = makeSegment(4096)
    const startedBuf = shmat(startedId)
    const started = new Int32Array(startedBuf)
    try {
      await fc.assert(
        fc.asyncProperty(scenario, async (sc) => {
          started.fill(0)
          const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
          try {
            await Promise.all(agents.map((a) => a.call('attach', { address: bus.address, shm: startedId })))
            const publishing = sc.publishers.map((p, i) => agents[i]!.call<{ drops: Array<[string, number]> }>('publish', {
              topic: 'ticks', publisher: i, count: p.count, pauseEvery: p.pauseEvery, pauseMs: 1,
            }))
            const subscribing = sc.subscribers.map(async (s) => {
              await new Promise((r) => setTimeout(r, s.delayMs))
              return agents[s.agent]!.call<{ key: number; channel: string }>('subscribe', {
                topic: 'ticks', policy: s.policy, ringBytes: s.ringBytes, slowEvery: s.slowEvery, slowMs: 2,
              })
            })
            const subs = await Promise.all(subscribing)
            const published = await Promise.all(publishing)
            // Each subscriber waits until everything that must reach it has
            // (up to 20 s, then what is missing is reported below), then 50 ms
            // more for anything extra: no fixed quiet window decides "lost".
            const counts = sc.publishers.map((p) => p.count)
            const collected = await Promise.all(subs.map((s, j) => agents[sc.subscribers[j]!.agent]!.call<Collected>('collect', {
              key: s.key, quietMs: 50, counts,
              dropped: published.map((pub) => pub.drops.filter(([name]) => name === s.channel).map(([, i]) => i)),
            })))
            const errors: string[] = []
            collected.forEach((c, j) => {
              const sub = sc.subscribers[j]!
              const name = subs[j]!.channel
              sc.publishers.forEach((pub, p) => {
                const got = c.received.filter(([q]) => q === p).map(([, i]) => i)
                for (let n = 1; n < got.length; n++) if (got[n]! <= got[n - 1]!) errors.push(`${name}: publisher ${p} out of order: ${got[n - 1]} then ${got[n]}`)
                const dropped = new Set(published[p]!.drops.filter(([s]) => s === name).map(([, i]) => i))
                const gotSet = new Set(got)
                for (const i of got) {
                  if (i >= pub.count) errors.push(`${name}: publisher ${p} message ${i} was never published`)
                  if (dropped.has(i)) errors.push(`${name}: publisher ${p} message ${i} both dropped and received`)
                }
                if (sub.policy === 'block' && dropped.size > 0) errors.push(`${name}: a block subscriber had drops`)
                for (let i = c.snapshot[p]!; i < pub.count; i++) {
                  if (!gotSet.has(i) && !dropped.has(i)) errors.push(`${name}: publisher ${p} message ${i} (published after subscribe; snapshot ${c.snapshot[p]}) lost`)
                }
              })
            })
            expect(errors.slice(0, 10)).toEqual([])
            // Every subscription removed its channel.
            expect(bus.channelNames('t:')).toEqual([])
          } finally {
            await Promise.all(agents.map((a) => a.call('close')))
            await bus.close()
          }
        }),
        { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true },
      )
    } finally {
      shmdt(startedBuf)
    }
  }, 300_000)
})

describe('pub/sub', () => {
  test('a drop subscriber never slows the publisher; every drop is counted in stats and emitted', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const got: number[] = []
    let stall = true
    bus.subscribe<number>('fast', (v) => {
      got.push(v)
      if (stall) { stall = false; const until = performance.now() + 300; while (performance.now() < until) { /* a stall: the ring fills */ } }
    }, { policy: 'drop', ringBytes: 4096 })
    const events: DropEvent[] = []
    bus.on('drop', (e) => events.push(e))
    const N = 5000
    // The receiver runs in this process: publish in one synchronous burst after it stalls.
    await bus.publish('fast', -1)
    await new Promise((r) => setImmediate(r))
    let delivered = 0
    for (let i = 0; i < N; i++) delivered += await Promise.race([bus.publish('fast', i), new Promise<number>((_, rej) => setTimeout(() => rej(new Error('publish waited')), 1000))])
    await new Promise((r) => setTimeout(r, 400))
    const dropped = bus.stats().pubsub!.dropped
    expect(dropped).toBeGreaterThan(0)
    expect(events.length).toBe(dropped)
    expect(events[0]).toMatchObject({ topic: 'fast', pid: process.pid })
    expect(bus.stats().pubsub!.droppedByTopic).toEqual({ fast: dropped })
    expect(delivered + dropped).toBe(N)
    expect(got.filter((v) => v >= 0)).toHaveLength(delivered)
    // Order is kept across the gaps.
    expect(got).toEqual([...got].sort((a, b) => a - b))
  })

  test('a block subscriber gets everything in order while its publisher waits for room', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const agent = new Agent('pattern-agent')
    const got: number[] = []
    let n = 0
    bus.subscribe<{ i: number }>('slow', (m) => {
      got.push(m.i)
      if (++n % 100 === 0) { const until = performance.now() + 20; while (performance.now() < until) { /* slow */ } }
    }, { ringBytes: 4096 })
    await agent.call('attach', { address: bus.address, shm: makeSegment(4096) })
    await agent.call('publish', { topic: 'slow', publisher: 0, count: 2000, pauseEvery: 0 })
    await new Promise((r) => setTimeout(r, 200))
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  test('a subscriber killed while its publisher is blocked on it: the publish finishes and its channel is removed', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const segment = makeSegment(4096)
    const sub = new Agent('pattern-agent')
    await sub.call('attach', { address: bus.address, shm: segment })
    const { channel } = await sub.call<{ channel: string }>('subscribe', { topic: 'doom', policy: 'block', ringBytes: 4096, slowEvery: 1, slowMs: 1000 })
    const other: number[] = []
    bus.subscribe<number>('doom', (v) => other.push(v))
    expect(bus.channelNames('t:doom:')).toContain(channel)
    const publishing = (async () => { for (let i = 0; i < 2000; i++) await bus.publish('doom', i) })()
    await new Promise((r) => setTimeout(r, 100)) // the killed one's ring is full by now
    const killedAt = performance.now()
    sub.child.kill('SIGKILL')
    await publishing
    expect(performance.now() - killedAt).toBeLessThan(1500)
    expect(bus.channelNames('t:doom:')).not.toContain(channel)
    expect(bus.stats().pubsub!.removed).toBe(1)
    await new Promise((r) => setTimeout(r, 50))
    expect(other).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  test('for await, unsubscribe, AbortSignal and dispose end a subscription and remove its channel', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const iterated = bus.subscribe<number>('it')
    expect(await bus.publish('it', 1)).toBe(1)
    await bus.publish('it', 2)
    await bus.publish('it', 3)
    const seen: number[] = []
    for await (const v of iterated) { seen.push(v); if (v === 3) break }
    expect(seen).toEqual([1, 2, 3])
    expect(iterated.active).toBe(false)

    const ac = new AbortController()
    const aborted = bus.subscribe<number>('it', { signal: ac.signal })
    const loop = (async () => { const got: number[] = []; for await (const v of aborted) got.push(v); return got })()
    await bus.publish('it', 4)
    await new Promise((r) => setTimeout(r, 20))
    ac.abort()
    expect(await loop).toEqual([4])

    {
      using disposed = bus.subscribe('it', () => {})
      expect(bus.channelNames('t:it:')).toEqual([disposed.channelName])
    }
    expect(bus.channelNames('t:')).toEqual([])
    expect(await bus.publish('it', 5)).toBe(0)
    expect(() => bus.subscribe('it', () => {}, { policy: 'later' as never })).toThrow(TypeError)
    expect(() => bus.subscribe('x'.repeat(41), () => {})).toThrow(RangeError)
    await expect(bus.publish('it', () => 1)).resolves.toBe(0) // nobody subscribed: nothing is encoded
    bus.subscribe('it', () => {})
    await expect(bus.publish('it', () => 1)).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    await expect(bus.publish('it', 'x'.repeat(20_000))).rejects.toMatchObject({ code: 'ERR_MESSAGE_TOO_LARGE' })
    await bus.close()
    await expect(bus.publish('it', 1)).rejects.toBeInstanceOf(Closed)
  })
})
