/**
 * Request/reply across "hosts" (issue 17): bus.request on a host without a
 * server reaches one on another host through NATS, with the bus's own
 * semantics: RemoteError, deadlines (RequestTimeout), NoServer, local
 * servers preferred, several remote servers sharing the load (queue
 * groups), at-most-once with retries. Host A runs in its own process.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { NoServer, RemoteError, RequestTimeout, type Bus } from '@ipc/bus'
import { startNats, stopAllNats, type RunningNats } from '../../../test/support/nats.js'
import { localHost, remoteHost, sleep, until } from './hosts.js'

let nats: RunningNats
beforeAll(async () => { nats = await startNats() })
afterAll(stopAllNats)

const services = ['addressbook']

describe('services', () => {
  test('a request from B reaches the server on A and comes back; a throw there is a RemoteError here', async () => {
    const a = await remoteHost({ servers: nats.url, services, serve: 'addressbook' })
    const b = await localHost({ servers: nats.url, services })
    await until(() => b.bridge.stats().services.addressbook === 'remote')
    await waitForRemote(b.bus) // A's bridge answers NATS once its poll saw its server
    expect(await b.bus.request('addressbook', { op: 'echo', v: 'hi' }, { timeout: 2000 })).toEqual({ v: 'hi', pid: a.pid })
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => b.bus.request('addressbook', { op: 'echo', v: i }, { timeout: 5000 })))
    expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => ({ v: i, pid: a.pid })))

    const err = await b.bus.request('addressbook', { op: 'fail' }, { timeout: 2000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteError)
    expect(err).toMatchObject({ code: 'ERR_REMOTE', remoteName: 'RangeError', remoteCode: 'E_NOT_FOUND', remote: { message: 'no such entry' } })
    expect((err as RemoteError).remoteStack).toContain('no such entry')
  })

  test('the deadline holds end to end: a slow remote handler is a RequestTimeout at the caller, on time', async () => {
    await remoteHost({ servers: nats.url, services, serve: 'addressbook' })
    const b = await localHost({ servers: nats.url, services })
    await until(() => b.bridge.stats().services.addressbook === 'remote')
    await waitForRemote(b.bus)
    const started = Date.now()
    const err = await b.bus.request('addressbook', { op: 'slow', ms: 2000 }, { timeout: 300 }).catch((e: unknown) => e)
    const took = Date.now() - started
    expect(err).toBeInstanceOf(RequestTimeout)
    expect(took).toBeGreaterThanOrEqual(290)
    expect(took).toBeLessThan(1000)
    // The same call with time enough succeeds.
    expect(await b.bus.request('addressbook', { op: 'slow', ms: 100 }, { timeout: 3000 })).toMatchObject({ pid: expect.any(Number) })
  })

  test('NoServer when nobody serves the service on any host, at once', async () => {
    const a = await localHost({ servers: nats.url, services: ['nobody'] })
    await localHost({ servers: nats.url, services: ['nobody'] })
    const started = Date.now()
    await expect(a.bus.request('nobody', 1, { timeout: 5000 })).rejects.toBeInstanceOf(NoServer)
    expect(Date.now() - started).toBeLessThan(1000)
    await expect(a.bus.request('not-bridged', 1, { timeout: 5000 })).rejects.toBeInstanceOf(NoServer)
  })

  test('a local server is preferred: with one here, no request leaves the host', async () => {
    const a = await remoteHost({ servers: nats.url, services, serve: 'addressbook' })
    const b = await localHost({ servers: nats.url, services })
    await until(() => b.bridge.stats().services.addressbook === 'remote')
    await waitForRemote(b.bus)
    b.bus.serve('addressbook', () => ({ pid: 'local' }))
    await until(() => b.bridge.stats().services.addressbook === 'local')
    const before = b.bridge.stats().requestsOut
    const replies = await Promise.all(Array.from({ length: 50 }, () => b.bus.request('addressbook', { op: 'echo', v: 0 }, { timeout: 2000 })))
    expect(replies.every((r) => (r as { pid: unknown }).pid === 'local')).toBe(true)
    expect(b.bridge.stats().requestsOut).toBe(before)
    expect(a.pid).toBeGreaterThan(0)
  })

  test('several hosts with servers share the requests of a host without one (queue group)', async () => {
    const a = await remoteHost({ servers: nats.url, services, serve: 'addressbook' })
    const b = await localHost({ servers: nats.url, services })
    b.bus.serve('addressbook', () => ({ pid: process.pid }))
    const c = await localHost({ servers: nats.url, services })
    await until(() => b.bridge.stats().services.addressbook === 'local' && c.bridge.stats().services.addressbook === 'remote')
    const seen = new Set<unknown>()
    const deadline = Date.now() + 10_000
    while (seen.size < 2 && Date.now() < deadline) {
      const r = await c.bus.request<{ pid: number }>('addressbook', { op: 'echo', v: 1 }, { timeout: 2000 }).catch(() => null)
      if (r !== null) seen.add(r.pid)
    }
    expect(seen).toEqual(new Set([a.pid, process.pid]))
  })

  test('at-most-once: retries of a timed-out request run the far handler once', async () => {
    await remoteHost({ servers: nats.url, services, serve: 'addressbook' })
    const b = await localHost({ servers: nats.url, services })
    await until(() => b.bridge.stats().services.addressbook === 'remote')
    await waitForRemote(b.bus)
    // Each attempt times out after 150 ms; the handler takes 500: the retries reach the relay, which runs the request once.
    const reply = await b.bus.request<{ runs: number }>('addressbook', { op: 'once', key: 'k1', ms: 500 }, { timeout: 150, retries: 5 })
    expect(reply.runs).toBe(1)
    const again = await b.bus.request<{ runs: number }>('addressbook', { op: 'once', key: 'k1', ms: 0 }, { timeout: 2000 })
    expect(again.runs).toBe(2) // a new request (a new id) does run again
  })
})

/** Requests until the far host's bridge answers (its poll found its server), as a caller expecting a server to come up would. */
async function waitForRemote(bus: Bus): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await bus.request('addressbook', { op: 'echo', v: 'probe' }, { timeout: 2000 }).catch((e: unknown) => e)
    if (!(r instanceof NoServer)) return
    await sleep(20)
  }
  throw new Error('the remote server never answered')
}
