/**
 * What a relay between buses (@ipc/bridge-nats) needs from the bus:
 * bus.topicNames() to find the topics a wildcard matches, bus.servers() to
 * know whether a service has live servers here, the subscribe option
 * `noEcho` so that a relay never sends back out what it brought in, and
 * the serve option `relay` so that "no server behind the relay" reaches the
 * caller as NoServer.
 */
import { once } from 'node:events'
import { describe, expect, test, vi } from 'vitest'
import { Bus, NoServer, RemoteError } from '@ipc/bus'
import { privateBus, trackBus } from '../../../test/support/buses.js'
import { fixturePath, track } from '../../../test/support/children.js'
import { makeSegment } from '../../../test/support/segments.js'

const until = (what: () => boolean, timeout = 10_000): Promise<unknown> => vi.waitUntil(what, { timeout, interval: 5 })
const settle = () => new Promise((r) => setTimeout(r, 50))

describe('bus.topicNames', () => {
  test('lists every topic published or subscribed to, by prefix, but no channel', async () => {
    const bus = await privateBus()
    expect(bus.topicNames()).toEqual([])
    bus.subscribe('prices.ACME', () => {}).unsubscribe()
    await bus.publish('prices.INIT', 1)
    await bus.publish('orders', 2)
    bus.channel('prices.channel')
    expect(bus.topicNames().sort()).toEqual(['orders', 'prices.ACME', 'prices.INIT'])
    expect(bus.topicNames('prices.').sort()).toEqual(['prices.ACME', 'prices.INIT'])
    expect(bus.topicNames('nothing')).toEqual([])
  })

  test('sees topics another member created', async () => {
    const bus = await privateBus()
    const other = trackBus(await Bus.attach(bus.address))
    await other.publish('made.elsewhere', 1)
    expect(bus.topicNames('made.')).toEqual(['made.elsewhere'])
  })

  test('refuses a prefix that is not a string', async () => {
    const bus = await privateBus()
    expect(() => bus.topicNames(7 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })
})

describe('bus.servers', () => {
  test('lists the live servers of a service, with their channels and pids', async () => {
    const bus = await privateBus()
    expect(bus.servers('addressbook')).toEqual([])
    const one = bus.serve('addressbook', () => 1)
    const two = bus.serve('addressbook', () => 2)
    bus.serve('addressbook.other', () => 3)
    const listed = bus.servers('addressbook')
    expect(listed.map((s) => s.channel).sort()).toEqual([one.channelName, two.channelName].sort())
    expect(listed.every((s) => s.pid === process.pid)).toBe(true)
    await one.close()
    expect(bus.servers('addressbook').map((s) => s.channel)).toEqual([two.channelName])
  })

  test('leaves out a server whose process died, before anyone cleaned up its channel', async () => {
    const bus = await privateBus()
    const shmid = makeSegment(64 * 1024)
    const child = track(bus.fork(fixturePath('bus', 'rpc-server'), [String(shmid), 'echo', '1'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    await once(child, 'message')
    expect(bus.servers('echo')[0]!.pid).toBe(child.pid)
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(bus.servers('echo')).toEqual([])
    expect(bus.channelNames('s:echo:').length).toBe(1) // still listed: nobody met it yet
  })

  test('checks the service name', async () => {
    const bus = await privateBus()
    expect(() => bus.servers('')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    expect(() => bus.servers('x'.repeat(41))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }))
  })
})

describe('subscribe option noEcho', () => {
  test('a subscription never gets what its own bus instance published, and gets every other publisher', async () => {
    const bus = await privateBus()
    const other = trackBus(await Bus.attach(bus.address))
    const quiet: unknown[] = []
    const all: unknown[] = []
    bus.subscribe('t', (v) => quiet.push(v), { noEcho: true })
    bus.subscribe('t', (v) => all.push(v))
    await bus.publish('t', 'own 1')
    await other.publish('t', 'other 1')
    await bus.publish('t', 'own 2')
    await other.publish('t', 'other 2')
    await until(() => all.length === 4 && quiet.length === 2)
    await settle()
    expect(quiet).toEqual(['other 1', 'other 2'])
    expect(all).toEqual(expect.arrayContaining(['own 1', 'own 2', 'other 1', 'other 2']))
  })

  test('works for a subscription made before this instance ever published (its lane is claimed later)', async () => {
    const bus = await privateBus()
    const other = trackBus(await Bus.attach(bus.address))
    const got: unknown[] = []
    const sub = bus.subscribe('late', { noEcho: true })
    void (async () => { for await (const v of sub) got.push(v) })()
    await bus.publish('late', 'mine')
    await other.publish('late', 'theirs')
    await until(() => got.length === 1)
    await settle()
    expect(got).toEqual(['theirs'])
    sub.unsubscribe()
  })

  test('is checked like every option', async () => {
    const bus = await privateBus()
    expect(() => bus.subscribe('t', () => {}, { noEcho: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })
})

describe('serve option relay', () => {
  test("a relay's NoServer reaches the caller as NoServer; its other errors stay RemoteErrors", async () => {
    const bus = await privateBus()
    bus.serve('far', (req: string) => {
      if (req === 'nobody') throw new NoServer('far')
      throw Object.assign(new Error('broken'), { code: 'E_BROKEN' })
    }, { relay: true })
    await expect(bus.request('far', 'nobody', { timeout: 2000 })).rejects.toBeInstanceOf(NoServer)
    const err = await bus.request('far', 'other', { timeout: 2000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteError)
    expect(err).toMatchObject({ remoteCode: 'E_BROKEN' })
  })

  test("without it, a handler's NoServer is a RemoteError as before", async () => {
    const bus = await privateBus()
    bus.serve('plain', () => { throw new NoServer('elsewhere') })
    const err = await bus.request('plain', 1, { timeout: 2000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteError)
    expect(err).toMatchObject({ remoteCode: 'ERR_NO_SERVER' })
  })

  test('is checked like every option', async () => {
    const bus = await privateBus()
    expect(() => bus.serve('x', () => 1, { relay: 1 as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }))
  })
})
