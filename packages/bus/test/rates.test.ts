/**
 * Rates in bus.stats() (issue 15): per second over about the last second,
 * against the caller's earlier samples (src/rates.ts), on every channel
 * and lane.
 */
import { describe, expect, test } from 'vitest'
import { Bus } from '@ipc/bus'
import { RateMeter } from '../dist/rates.js'
import { trackBus } from '../../../test/support/buses.js'

describe('RateMeter', () => {
  test('null first, then the rate against the newest sample at least a second old', () => {
    const m = new RateMeter()
    expect(m.sample([0, 0], 0)).toBeNull()
    expect(m.sample([100, 10], 500)).toEqual([200, 20]) // only a half-second sample yet: against it
    expect(m.sample([300, 30], 1000)).toEqual([300, 30]) // against t=0
    expect(m.sample([1300, 30], 2000)).toEqual([1000, 0]) // against t=1000
    expect(m.sample([1300, 30], 2000)).toEqual([1000, 0]) // same instant: still against t=1000
    expect(m.sample([1400, 20], 3100)).toEqual([100 / 1.1, 0]) // a counter that went down reads 0, never negative
  })
})

describe('bus.stats() rates', () => {
  test('messages/s, bytes/s and parks/s per channel, messages/s and bytes/s per lane', async () => {
    const bus = trackBus(await Bus.create())
    const ch = bus.channel<number>('rated')
    let got = 0
    ch.on('message', () => { got++ })
    const first = ch.stats()
    expect(first.rates).toBeNull()
    expect(first.lanes.every((l) => l.rates === null)).toBe(true)
    const until = performance.now() + 300
    let sent = 0
    while (performance.now() < until) { await ch.send(sent++); if (sent % 100 === 0) await new Promise((r) => setTimeout(r, 5)) }
    await new Promise((r) => setTimeout(r, 50))
    const s = ch.stats()
    expect(got).toBe(sent)
    expect(s.rates!.messagesPerSecond).toBeGreaterThan(0)
    expect(s.rates!.bytesPerSecond).toBeGreaterThan(s.rates!.messagesPerSecond)
    expect(s.lanes[0]!.rates!.messagesPerSecond).toBeGreaterThan(0)
    expect(bus.stats().channels[0]!.rates).not.toBeNull()
    await bus.close()
  })
})
