/**
 * Sizes and encoding across the bridge: values keep their types (msgpack,
 * self-describing on the wire), a value larger than the server's
 * max_payload is refused with a typed error while local subscribers still
 * get it, and a request too large fails with that error's code.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { RemoteError } from '@ipc/bus'
import { BridgeMessageTooLarge } from '@ipc/bridge-nats'
import { startNats, stopAllNats, type RunningNats } from '../../../test/support/nats.js'
import { localHost, sleep, until } from './hosts.js'

const MAX_PAYLOAD = 8 * 1024
let nats: RunningNats
beforeAll(async () => { nats = await startNats({ maxPayload: MAX_PAYLOAD }) })
afterAll(stopAllNats)

describe('values on the wire', () => {
  test('keep their shapes and types, including shapes the bus shares as records', async () => {
    const a = await localHost({ servers: nats.url, topics: ['v'] })
    const b = await localHost({ servers: nats.url, topics: ['v'] })
    const got: unknown[] = []
    b.bus.subscribe('v', (v) => got.push(v))
    const values = [
      { sym: 'ACME', px: 101.25, qty: 3 }, // the same shape twice: a shared record on the bus
      { sym: 'INIT', px: 7.5, qty: 1 },
      [1, 'two', null, true, { nested: [3.5] }],
      new Map([['k', 1]]),
      new Uint8Array([1, 2, 3]),
      'plain',
      2 ** 53 - 1,
    ]
    for (const v of values) await a.bus.publish('v', v)
    await until(() => got.length >= values.length)
    expect(got.slice(0, 3)).toEqual(values.slice(0, 3))
    expect(got[3]).toEqual({ k: 1 }) // plain msgpack has one map type: a Map arrives as an object (README)
    expect(Buffer.from(got[4] as Uint8Array)).toEqual(Buffer.from([1, 2, 3]))
    expect(got.slice(5)).toEqual(values.slice(5))
  })
})

describe('max_payload', () => {
  test('a value larger than max_payload is refused with ERR_BRIDGE_MESSAGE_TOO_LARGE; local subscribers still get it; later ones go on', async () => {
    const a = await localHost({ servers: nats.url, topics: ['big'] })
    const b = await localHost({ servers: nats.url, topics: ['big'] })
    const errors: unknown[] = []
    a.bridge.on('error', (e) => errors.push(e))
    const local: unknown[] = []
    const remote: unknown[] = []
    a.bus.subscribe('big', (v) => local.push(v))
    b.bus.subscribe('big', (v) => remote.push(v))
    await a.bus.publish('big', 'x'.repeat(MAX_PAYLOAD))
    await a.bus.publish('big', 'small')
    await until(() => remote.length >= 1 && local.length >= 2)
    await sleep(100)
    expect(remote).toEqual(['small'])
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(BridgeMessageTooLarge)
    expect(errors[0]).toMatchObject({ code: 'ERR_BRIDGE_MESSAGE_TOO_LARGE', maxPayload: MAX_PAYLOAD, subject: 'ipc.t.big' })
    expect(a.bridge.stats().tooLarge).toBe(1)
  })

  test('a request larger than max_payload fails with a RemoteError carrying that code', async () => {
    const a = await localHost({ servers: nats.url, services: ['store'] })
    a.bus.serve('store', (v: string) => v.length)
    const b = await localHost({ servers: nats.url, services: ['store'] })
    await until(() => a.bridge.stats().services.store === 'local')
    expect(await b.bus.request('store', 'fits', { timeout: 2000 })).toBe(4)
    const err = await b.bus.request('store', 'x'.repeat(MAX_PAYLOAD), { timeout: 2000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteError)
    expect(err).toMatchObject({ remoteCode: 'ERR_BRIDGE_MESSAGE_TOO_LARGE', remoteName: 'BridgeMessageTooLarge' })
  })
})
