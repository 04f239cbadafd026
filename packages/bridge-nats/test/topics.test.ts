/**
 * Topics across "hosts" (issue 17): buses on this machine, each with its
 * own bridge, against a real nats-server started for this file. Host A runs
 * in its own process (fixtures/host.ts); B and C are buses of this process.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { NatsBridge } from '@ipc/bridge-nats'
import { connect, headers } from '@nats-io/transport-node'
import { pack } from 'msgpackr'
import { startNats, stopAllNats, type RunningNats } from '../../../test/support/nats.js'
import { localHost, remoteHost, sleep, until } from './hosts.js'

let nats: RunningNats
beforeAll(async () => { nats = await startNats() })
afterAll(stopAllNats)

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

/** Fails the test on any error a bridge reports. */
function noErrors(...bridges: NatsBridge[]): unknown[] {
  const errors: unknown[] = []
  for (const b of bridges) b.on('error', (e) => errors.push(e))
  return errors
}

describe('topics', () => {
  test('a publish on A reaches subscribers on B and on A exactly once, in order', async () => {
    const topics = ['prices.ACME']
    const a = await remoteHost({ servers: nats.url, topics })
    const b = await localHost({ servers: nats.url, topics })
    const errors = noErrors(b.bridge)
    const onA: unknown[] = []
    const onB: unknown[] = []
    a.bus.subscribe('prices.ACME', (v) => onA.push(v))
    b.bus.subscribe('prices.ACME', (v) => onB.push(v))
    const n = 2000
    for (const i of range(n)) await a.bus.publish('prices.ACME', { i, px: 100 + i / 100 })
    await until(() => onB.length >= n && onA.length >= n)
    await sleep(200) // a duplicate would come now
    const expected = range(n).map((i) => ({ i, px: 100 + i / 100 }))
    expect(onA).toEqual(expected)
    expect(onB).toEqual(expected)
    expect(b.bridge.stats()).toMatchObject({ imported: n, exported: 0 })
    expect(errors).toEqual([])
  })

  test('both ways at once, each publisher in its own order, nothing echoed back', async () => {
    const topics = ['chat']
    const a = await remoteHost({ servers: nats.url, topics })
    const b = await localHost({ servers: nats.url, topics })
    const onA: Array<{ from: string; i: number }> = []
    const onB: Array<{ from: string; i: number }> = []
    a.bus.subscribe('chat', (v: { from: string; i: number }) => onA.push(v))
    b.bus.subscribe('chat', (v: { from: string; i: number }) => onB.push(v))
    const n = 500
    await Promise.all([
      (async () => { for (const i of range(n)) await a.bus.publish('chat', { from: 'a', i }) })(),
      (async () => { for (const i of range(n)) await b.bus.publish('chat', { from: 'b', i }) })(),
    ])
    await until(() => onA.length >= 2 * n && onB.length >= 2 * n)
    await sleep(200)
    for (const got of [onA, onB]) {
      expect(got.length).toBe(2 * n)
      expect(got.filter((v) => v.from === 'a').map((v) => v.i)).toEqual(range(n))
      expect(got.filter((v) => v.from === 'b').map((v) => v.i)).toEqual(range(n))
    }
  })

  test('three bridges: every value reaches every host once, whoever published it', async () => {
    const topics = ['orders.>']
    const a = await remoteHost({ servers: nats.url, topics })
    const b = await localHost({ servers: nats.url, topics })
    const c = await localHost({ servers: nats.url, topics })
    const got = { a: [] as string[], b: [] as string[], c: [] as string[] }
    a.bus.subscribe('orders.eu.new', (v: string) => got.a.push(v))
    b.bus.subscribe('orders.eu.new', (v: string) => got.b.push(v))
    c.bus.subscribe('orders.eu.new', (v: string) => got.c.push(v))
    await sleep(150) // the bridges find the new topic (pollInterval 50 ms)
    const n = 200
    for (const i of range(n)) {
      await a.bus.publish('orders.eu.new', `a${i}`)
      await b.bus.publish('orders.eu.new', `b${i}`)
      await c.bus.publish('orders.eu.new', `c${i}`)
    }
    await until(() => got.a.length >= 3 * n && got.b.length >= 3 * n && got.c.length >= 3 * n)
    await sleep(300)
    const all = ['a', 'b', 'c'].flatMap((h) => range(n).map((i) => `${h}${i}`)).sort()
    for (const host of ['a', 'b', 'c'] as const) {
      expect([...got[host]].sort()).toEqual(all)
      for (const from of ['a', 'b', 'c']) expect(got[host].filter((v) => v.startsWith(from))).toEqual(range(n).map((i) => `${from}${i}`))
    }
  })

  test('wildcards: a topic that appears after the bridge started is found, and its first values still go out', async () => {
    const a = await localHost({ servers: nats.url, topics: ['prices.*'] })
    const b = await localHost({ servers: nats.url, topics: ['prices.*'] })
    const onB: Record<string, number[]> = {}
    for (const sym of ['NEW', 'LATE']) b.bus.subscribe(`prices.${sym}`, (v: number) => (onB[sym] ??= []).push(v))
    // Published at once: the topic is created by this publish, before any bridge looked.
    for (const i of range(10)) await a.bus.publish('prices.NEW', i)
    await a.bus.publish('prices.deeper.no', 1) // '*' is one token: not bridged
    await until(() => (onB.NEW?.length ?? 0) >= 10)
    await sleep(100)
    for (const i of range(10)) await a.bus.publish('prices.LATE', i)
    await until(() => (onB.LATE?.length ?? 0) >= 10)
    await sleep(200)
    expect(onB).toEqual({ NEW: range(10), LATE: range(10) })
    expect(a.bridge.stats().topics.sort()).toEqual(['prices.LATE', 'prices.NEW'])
    expect(b.bus.topicNames('prices.deeper')).toEqual([])
  })

  test('overlapping patterns deliver a value once', async () => {
    const topics = ['ticks.*', 'ticks.ACME', 'ticks.>']
    const a = await localHost({ servers: nats.url, topics })
    const b = await localHost({ servers: nats.url, topics })
    const onB: number[] = []
    b.bus.subscribe('ticks.ACME', (v: number) => onB.push(v))
    for (const i of range(50)) await a.bus.publish('ticks.ACME', i)
    await until(() => onB.length >= 50)
    await sleep(200)
    expect(onB).toEqual(range(50))
  })

  test('a NATS message carrying the bridge\'s own origin is dropped; any other NATS client\'s plain msgpack is published', async () => {
    const b = await localHost({ servers: nats.url, topics: ['ext.*'] })
    const got: unknown[] = []
    b.bus.subscribe('ext.in', (v) => got.push(v))
    const nc = await connect({ servers: nats.url })
    try {
      const mine = headers()
      mine.set('Ipc-Origin', b.bridge.id)
      const other = headers()
      other.set('Ipc-Origin', 'someone-else')
      nc.publish('ipc.t.ext.in', pack('echo'), { headers: mine })
      nc.publish('ipc.t.ext.in', pack('tagged'), { headers: other })
      nc.publish('ipc.t.ext.in', pack({ plain: true }))
      await nc.flush()
    } finally {
      await nc.close()
    }
    await until(() => got.length >= 2)
    await sleep(100)
    expect(got).toEqual(['tagged', { plain: true }])
  })

  test('topics not listed stay local, and other subject prefixes are other systems', async () => {
    const a = await localHost({ servers: nats.url, topics: ['shared'], subjectPrefix: 'one' })
    const b = await localHost({ servers: nats.url, topics: ['shared'], subjectPrefix: 'two' })
    const c = await localHost({ servers: nats.url, topics: ['shared'], subjectPrefix: 'one' })
    const onB: number[] = []
    const onC: number[] = []
    const privateOnC: number[] = []
    b.bus.subscribe('shared', (v: number) => onB.push(v))
    c.bus.subscribe('shared', (v: number) => onC.push(v))
    c.bus.subscribe('private', (v: number) => privateOnC.push(v))
    await a.bus.publish('private', 1)
    await a.bus.publish('shared', 2)
    await until(() => onC.length >= 1)
    await sleep(200)
    expect(onC).toEqual([2])
    expect(onB).toEqual([])
    expect(privateOnC).toEqual([])
  })
})
