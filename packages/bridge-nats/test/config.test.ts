/**
 * Bad configuration (issue 17) is a clear, typed error with a stable code,
 * before anything is left behind: an unreachable server
 * (BridgeConnectFailed), a prefix, topic or service NATS cannot carry, a
 * wrong option. And a two-node NATS cluster (routes) carries topics and
 * requests between hosts connected to different nodes.
 */
import { afterAll, describe, expect, test } from 'vitest'
import { bridgeNats, BridgeConnectFailed } from '@ipc/bridge-nats'
import { privateBus } from '../../../test/support/buses.js'
import { freePort, startNats, stopAllNats } from '../../../test/support/nats.js'
import { localHost, remoteHost, sleep, trackBridge, until } from './hosts.js'

afterAll(stopAllNats)

describe('bad configuration', () => {
  test('an unreachable server: BridgeConnectFailed (ERR_BRIDGE_CONNECT) after connectTimeout, and the bus is as before', async () => {
    const bus = await privateBus()
    const port = await freePort() // nobody listens there
    const started = Date.now()
    const err = await bridgeNats(bus, { servers: `nats://127.0.0.1:${port}`, connectTimeout: 300, topics: ['t'] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BridgeConnectFailed)
    expect(err).toMatchObject({ code: 'ERR_BRIDGE_CONNECT', name: 'BridgeConnectFailed', servers: [`nats://127.0.0.1:${port}`] })
    expect((err as Error).message).toContain(`127.0.0.1:${port}`)
    expect(Date.now() - started).toBeLessThan(3000)
    expect(bus.stats().members).toHaveLength(1) // the bridge's member never joined, or left
    expect(bus.topicNames()).toEqual([])
  })

  test.each([
    [{ subjectPrefix: 'a..b' }, 'ERR_INVALID_ARG_VALUE', /options.subjectPrefix.*empty token/],
    [{ subjectPrefix: 'ipc.*' }, 'ERR_INVALID_ARG_VALUE', /options.subjectPrefix.*wildcard/],
    [{ subjectPrefix: 'has space' }, 'ERR_INVALID_ARG_VALUE', /white space/],
    [{ topics: ['prices.>.x'] }, 'ERR_INVALID_ARG_VALUE', /options.topics\[0\].*'>' before its last token/],
    [{ topics: ['ok', 'pri*ces'] }, 'ERR_INVALID_ARG_VALUE', /options.topics\[1\]/],
    [{ services: ['svc.*'] }, 'ERR_INVALID_ARG_VALUE', /options.services\[0\].*wildcard/],
    [{ services: [7] }, 'ERR_INVALID_ARG_TYPE', /options.services\[0\]/],
    [{ servers: [] }, 'ERR_INVALID_ARG_VALUE', /options.servers/],
    [{ servers: undefined }, 'ERR_INVALID_ARG_TYPE', /options.servers/],
    [{ connectTimeout: 0 }, 'ERR_OUT_OF_RANGE', /options.connectTimeout/],
    [{ exportPolicy: 'lossy' }, 'ERR_INVALID_ARG_VALUE', /options.exportPolicy/],
    [{ topic: ['t'] }, 'ERR_INVALID_ARG_VALUE', /options.topic' is not a bridgeNats option/],
  ])('%o is refused with %s before anything connects', async (bad, code, message) => {
    const bus = await privateBus()
    const err = await bridgeNats(bus, { servers: 'nats://127.0.0.1:1', ...bad } as never).catch((e: unknown) => e)
    expect(err).toMatchObject({ code })
    expect((err as Error).message).toMatch(message)
    expect(bus.stats().members).toHaveLength(1)
  })
})

describe('a two-node NATS cluster', () => {
  test('hosts on different nodes exchange topics and requests through the route', async () => {
    const [c1, c2, m1] = [await freePort(), await freePort(), await freePort()]
    const n1 = await startNats({ cluster: { name: 'test', port: c1, routes: [c2] }, monitorPort: m1 })
    const n2 = await startNats({ cluster: { name: 'test', port: c2, routes: [c1] } })
    await until(() => routes(m1) > 0, 15_000)
    const a = await remoteHost({ servers: n1.url, topics: ['prices.*'], services: ['addressbook'], serve: 'addressbook' })
    const b = await localHost({ servers: n2.url, topics: ['prices.*'], services: ['addressbook'] })
    trackBridge(b.bridge)
    const onB: number[] = []
    b.bus.subscribe('prices.ACME', (v: number) => onB.push(v))
    // Interest crosses the route asynchronously: publish until the first value arrives, then check the rest in order.
    let i = 0
    while (onB.length === 0) {
      await a.bus.publish('prices.ACME', i++)
      await sleep(20)
      if (i > 500) throw new Error('nothing crossed the route')
    }
    const from = i
    for (let k = 0; k < 100; k++) await a.bus.publish('prices.ACME', from + k)
    await until(() => onB.includes(from + 99))
    expect(onB.slice(onB.indexOf(from))).toEqual(Array.from({ length: 100 }, (_, k) => from + k))
    let reply: unknown = null
    for (let k = 0; k < 200 && (reply === null || reply instanceof Error); k++) {
      reply = await b.bus.request('addressbook', { op: 'echo', v: 'x' }, { timeout: 2000 }).catch((e: unknown) => e)
      if (reply instanceof Error) await sleep(20)
    }
    expect(reply).toEqual({ v: 'x', pid: a.pid })
  })
})

let lastRoutes = 0
/** The route count of the node with monitoring port `port` (polled; 0 until it answers). */
function routes(port: number): number {
  void fetch(`http://127.0.0.1:${port}/routez`).then((r) => r.json() as Promise<{ num_routes?: number }>).then((j) => { lastRoutes = j.num_routes ?? 0 }, () => {})
  return lastRoutes
}
