/**
 * Issue 10, defect 5: object shapes beyond what the bus directory's shared-
 * structure store holds were refused as Unserializable, bus-wide and for
 * good. Two forked processes each send 20 distinct 100-key shapes (long key
 * names: the 16 KiB store holds about three), at the same time, so they also
 * race to add shapes; the parent must receive every message, equal, in each
 * sender's order, including shapes first sent after the store filled and
 * shapes shared before it did.
 */
import { describe, expect, test } from 'vitest'
import type { Bus } from '@ipc/bus'
import { fixturePath, finish, track } from '../../../test/support/children.js'
import { privateBus } from '../../../test/support/buses.js'
import { shapeMessages, type ShapeMessage } from './fixtures/shapes-sender.js'

const SHAPES = 20
const SENDERS = 2

/** n messages from 'shapes'; stop() removes the listener and timer (called by the test, pass or fail). */
function receive(bus: Bus, n: number, timeoutMs: number): { messages: Promise<ShapeMessage[]>; stop: () => void } {
  const channel = bus.channel<ShapeMessage>('shapes')
  const got: ShapeMessage[] = []
  let timer: NodeJS.Timeout | undefined
  let onMessage: ((message: ShapeMessage) => void) | undefined
  const stop = (): void => {
    clearTimeout(timer)
    if (onMessage !== undefined) channel.off('message', onMessage)
    onMessage = undefined
  }
  const messages = new Promise<ShapeMessage[]>((resolve, reject) => {
    timer = setTimeout(() => { stop(); reject(new Error(`received ${got.length} of ${n} messages within ${timeoutMs} ms`)) }, timeoutMs)
    onMessage = (message) => {
      got.push(message)
      if (got.length === n) { stop(); resolve(got) }
    }
    channel.on('message', onMessage)
  })
  return { messages, stop }
}

describe('shared structures over a real bus', () => {
  test('valid objects of any number of shapes are never refused: 20 distinct 100-key shapes from each of two processes arrive equal', async () => {
    const bus = await privateBus() // closed after the test, pass or fail (support/buses.ts)
    const expected = Array.from({ length: SENDERS }, (_, s) => shapeMessages(s, SHAPES))
    const receiving = receive(bus, SENDERS * expected[0]!.length, 30_000)
    try {
      // children are SIGKILLed and reaped after the test, pass or fail (support/children.ts)
      const children = Array.from({ length: SENDERS }, (_, s) => track(bus.fork(fixturePath('bus', 'shapes-sender'), [String(s), String(SHAPES)], {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      })))
      // a sender that fails (say, Unserializable) fails the test at once, with its stderr
      const exits = Promise.all(children.map(async (child, s) => {
        const exit = await finish(child, 30_000)
        if (exit.code !== 0) throw new Error(`sender ${s} exited with code ${exit.code}, signal ${exit.signal}:\n${exit.stderr}`)
        return exit
      }))
      exits.catch(() => {}) // awaited below; handled here should the race end on `messages`
      const got = await Promise.race([receiving.messages, exits.then(() => receiving.messages)])
      await exits
      for (let s = 0; s < SENDERS; s++) {
        const mine = got.filter((m) => m.from === s)
        expect(mine.map((m) => m.seq)).toEqual(expected[s]!.map((m) => m.seq)) // every one, in order
        expect(mine).toEqual(expected[s]) // each equal, deeply
      }
    } finally {
      receiving.stop()
    }
  }, 60_000)
})
