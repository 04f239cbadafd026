/**
 * Tests that pin down what only a timing window used to show (issue 18's
 * surviving mutants): identity includes the start time, the room doorbell
 * (not the re-check timer) wakes a blocked sender. Each fails fast, naming
 * the broken invariant. (The backstop's own test is in bus.test.ts.) And a
 * publisher's rings left to the end of its event-loop turn, or skipped in
 * the middle of a burst that ends there, are made.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { Bus, type Channel } from '@ipc/bus'
import type { ChannelSegment } from '@ipc/core'
import { finish, startFixture, track, waitForLine } from '../../../test/support/children.js'
import { privateBus, trackBus } from '../../../test/support/buses.js'
import { processStartTime } from '../dist/liveness.js'

function segmentOf(ch: Channel<unknown>): ChannelSegment {
  return (ch as unknown as { segment: ChannelSegment }).segment
}

/** Resolves with the first value, or rejects naming `what` after ms. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms))])
}

describe('liveness is pid + start time', () => {
  test('a receiver word naming a live pid with the wrong start time is dead: senders get PeerGone, and a new receiver takes the channel over', async () => {
    const sleeper = track(spawn('sleep', ['30']))
    const pid = sleeper.pid!
    const bus = await privateBus()
    const other = trackBus(await Bus.attach(bus.address))
    const ch = bus.channel<number>('impostor')
    // Fabricate a receiver: a live process, but not the one that started at this time.
    segmentOf(ch).setReceiver({ pid, startTime: processStartTime(pid) + 1 })
    expect(() => ch.trySend(1)).toThrow(expect.objectContaining({ code: 'ERR_PEER_GONE' }))
    const got: number[] = []
    const theirs = other.channel<number>('impostor')
    theirs.on('message', (v) => got.push(v)) // must not be ChannelBusy: the "receiver" is dead
    expect(theirs.receiverPid).toBe(process.pid)
    sleeper.kill('SIGKILL')
  })
})

describe('the room doorbell wakes a blocked sender', () => {
  test('a sender asleep on a full lane resumes when the receiver frees room, long before its 30 s re-check', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const ch = bus.channel<number>('room')
    ch.pause()
    ch.on('message', () => {})
    const child = startFixture('bus', 'script', [`
      const bus = await Bus.attach(args[0])
      const ch = bus.channel('room')
      let n = 0
      while (ch.trySend(n)) n++
      const p = ch.send(n).then(() => out('sent'))
      await new Promise((r) => setTimeout(r, 300)) // past the polling turns: asleep on the room doorbell
      out('asleep')
      await p
      await bus.close()
    `, JSON.stringify([bus.address])], { env: { ...process.env, IPC_BUS_ROOM_RECHECK_MS: '30000' } })
    const done = finish(child, 20_000)
    await waitForLine(child, /"asleep"/)
    const t0 = performance.now()
    ch.resume()
    await within(waitForLine(child, /"sent"/, 20_000), 3000, 'the receiver ringing the blocked sender for room')
    expect(performance.now() - t0).toBeLessThan(3000)
    expect((await done).code).toBe(0)
  })
})

describe('the sender that wins the parked word rings', () => {
  test('a receiver parked in another process gets each message within 2 s (the backstop is off: only the ring can wake it)', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('ring')
    const child = startFixture('bus', 'script', [`
      const bus = await Bus.attach(args[0])
      const got = []
      const all = new Promise((resolve) => bus.channel('ring').on('message', (v) => { got.push(v); out({ got: v }); if (got.length === 3) resolve() }))
      setTimeout(() => out('ready'), 100)
      await all
      await bus.close()
    `, JSON.stringify([bus.address])])
    const done = finish(child, 20_000)
    await waitForLine(child, /"ready"/)
    for (const i of [1, 2, 3]) {
      await new Promise((r) => setTimeout(r, 100)) // parked again
      expect(ch.trySend(i)).toBe(true)
      await within(waitForLine(child, new RegExp(`"got":${i}`), 20_000), 2000, `channel 'ring': the sender's ring waking the parked receiver for message ${i}`)
    }
    expect((await done).code).toBe(0)
  })
})


describe('pipe doorbells: a sender rings each receiver at its own FIFO', () => {
  test('one sender alternating between two parked receivers in two processes wakes the one it sent to, every time (the ringer it reuses follows the target)', async () => {
    const bus = await privateBus()
    const child = (name: string) => startFixture('bus', 'script', [`
      const bus = await Bus.attach(args[0], { doorbell: 'pipe' })
      let n = 0
      const all = new Promise((resolve) => bus.channel(args[1]).on('message', (v) => { out({ got: v }); if (++n === 3) resolve() }))
      setTimeout(() => out('ready'), 100)
      await all
      await bus.close()
    `, JSON.stringify([bus.address, name])])
    const kids = { a: child('a'), b: child('b') }
    const done = Object.values(kids).map((c) => finish(c, 20_000))
    await Promise.all(Object.values(kids).map((c) => waitForLine(c, /"ready"/)))
    for (const i of [1, 2, 3]) {
      for (const name of ['a', 'b'] as const) {
        await new Promise((r) => setTimeout(r, 100)) // both parked again
        const value = `${name}${i}`
        expect(bus.channel<string>(name).trySend(value)).toBe(true)
        await within(waitForLine(kids[name], new RegExp(`"got":"${value}"`), 20_000), 2000, `channel '${name}': the ring at its receiver's FIFO for ${value}`)
      }
    }
    for (const d of done) expect((await d).code).toBe(0)
  })
})

describe('a publisher rings what it published before its event-loop turn ends', () => {
  // The child publishes -1 (its turn's first burst: rung at once), waits,
  // still in the same turn, until this process took it and parked again,
  // then publishes five more bursts (`await publishMany`): those leave their
  // ring to the turn's end. It then ends the turn (the sweep rings) or calls
  // process.exit() (the exit hook rings). The backstop is off: a ring never
  // made leaves this subscriber asleep and the test times out.
  test.each(['sweep', 'exit'])('bursts after the first in one turn are rung at the turn\'s end (%s)', async (end) => {
    const bus = await privateBus()
    const flag = join(mkdtempSync(join(tmpdir(), 'ipc-bus-turns-')), 'took')
    const got: number[] = []
    let resolveAll: () => void = () => {}
    const all = new Promise<void>((resolve) => { resolveAll = resolve })
    bus.subscribe<number>('turns', (v) => {
      got.push(v)
      if (v === -1) writeFileSync(flag, '')
      if (got.length === 11) resolveAll()
    })
    const child = startFixture('bus', 'script', [`
      const fs = process.getBuiltinModule('node:fs')
      const b = await Bus.attach(args[0])
      b.tryPublish('turns', -1)
      await null // the burst's end: published and rung
      while (!fs.existsSync(args[1])) {} // same turn: no setImmediate ran
      const until = Date.now() + 300
      while (Date.now() < until) {} // the subscriber parks again
      for (let k = 0; k < 5; k++) await b.publishMany('turns', [2 * k, 2 * k + 1])
      out('published')
      if (args[2] === 'exit') process.exit(0)
      await new Promise((r) => setTimeout(r, 20_000)) // alive: only the sweep can ring (killed below)
    `, JSON.stringify([bus.address, flag, end])])
    const done = finish(child, 30_000)
    try {
      await within(all, 5000, `delivery of all 11 values (got ${JSON.stringify(got)})`)
      expect(got).toEqual([-1, ...Array.from({ length: 10 }, (_, i) => i)])
      if (end === 'exit') {
        const r = await done
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' })
      }
    } finally {
      child.kill('SIGKILL')
      await done
      rmSync(dirname(flag), { recursive: true, force: true })
    }
  })
})

describe('a burst that ends on a mid-burst publishing store', () => {
  // A topic publisher publishes every 256 staged values inside a long
  // synchronous burst, and only every 16th such store rings. A burst of
  // exactly 256 x k values ends on one that skipped its ring, and its
  // microtask finds nothing left to publish: the turn's sweep must ring.
  test.each([256, 512])('a synchronous burst of exactly %i tryPublish calls reaches a parked subscriber', async (n) => {
    const bus = await privateBus()
    const got: number[] = []
    let resolveAll: () => void = () => {}
    const all = new Promise<void>((resolve) => { resolveAll = resolve })
    bus.subscribe<number>('exact', (v) => { got.push(v); if (got.length === n) resolveAll() })
    const child = startFixture('bus', 'script', [`
      const b = await Bus.attach(args[0])
      for (let i = 0; i < args[1]; i++) if (!b.tryPublish('exact', i)) throw new Error('full at ' + i)
      out('published')
      await new Promise((r) => setTimeout(r, 20_000)) // alive: its exit hook must not be what rings
    `, JSON.stringify([bus.address, n])])
    const done = finish(child, 30_000)
    try {
      await within(all, 5000, `delivery of all ${n} values (got ${got.length})`)
      expect(got).toEqual(Array.from({ length: n }, (_, i) => i))
    } finally {
      child.kill('SIGKILL')
      await done
    }
  })
})
