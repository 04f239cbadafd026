/**
 * The parking protocol's one hole, closed by exit watches instead of a
 * polling timer (docs/design.md, "The parking protocol"): a sender that
 * committed and won the right to ring a parked receiver, then died before
 * ringing. The backstop stays off here (vitest.config.ts), so only the
 * receiver's watch on its lane owners can deliver the message. The sender
 * claims its lane while the receiver is parked, so its hello ring is what
 * makes the receiver watch it: without the hello, or without the watch,
 * the message stays in the ring and these tests time out.
 */
import { once } from 'node:events'
import { describe, expect, onTestFinished, test } from 'vitest'
import type { Bus } from '@ipc/bus'
import { fixturePath, track } from '../../../test/support/children.js'
import { privateBus } from '../../../test/support/buses.js'
import { useBackstop } from '../dist/channel/idle.js'

/** Forks the unrung sender (test/fixtures/unrung-sender.ts) and waits for `got` to resolve, then checks that it died owing the ring. */
async function strandedBy(bus: Bus, kind: 'channel' | 'topic', name: string, got: Promise<string>): Promise<void> {
  const child = track(bus.fork(fixturePath('bus', 'unrung-sender'), [kind, name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const value = await Promise.race([got, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${kind} '${name}': the message of the sender that died before ringing was not delivered within 5 s`)), 5000))])
  expect(value).toBe('unrung')
  const [code, signal] = await exited
  expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' }) // it won the CAS and died there (exit 3: receiver never parked again; 4: never owed a ring)
}

describe('a sender killed between winning the ring and ringing (backstop off)', () => {
  test('channel: the parked receiver hears of its exit and drains', async () => {
    const bus = await privateBus()
    const ch = bus.channel<string>('stranded')
    const got = new Promise<string>((resolve) => ch.on('message', resolve))
    const segment = (ch as unknown as { segment: { receiverParked(): boolean } }).segment
    for (let i = 0; i < 200 && !segment.receiverParked(); i++) await new Promise((r) => setTimeout(r, 5))
    expect(segment.receiverParked()).toBe(true) // parked before the sender claims: only its hello makes us watch it
    await strandedBy(bus, 'channel', 'stranded', got)
  })

  test('topic: the parked subscriber hears of its exit and drains', async () => {
    const bus = await privateBus()
    const got = new Promise<string>((resolve) => bus.subscribe<string>('stranded', resolve))
    await new Promise((r) => setTimeout(r, 100)) // the subscriber finds nothing and parks
    await strandedBy(bus, 'topic', 'stranded', got)
  })
})

test('with its senders watched, a parked receiver looks for lost rings every 30 s only (no look 250 ms after parking)', async () => {
  useBackstop(true) // off for every other test (IPC_BUS_BACKSTOP=off in vitest.config.ts)
  onTestFinished(() => { useBackstop(false) })
  const bus = await privateBus()
  const ch = bus.channel<string>('quiet')
  ch.on('message', () => {})
  const internals = ch as unknown as { segment: { receiverParked(): boolean }; reader: { backstop: { interval: number } } }
  for (let i = 0; i < 200 && !internals.segment.receiverParked(); i++) await new Promise((r) => setTimeout(r, 5))
  expect(internals.segment.receiverParked()).toBe(true)
  expect(internals.reader.backstop.interval).toBe(30_000)
})
