/**
 * The NATS server going away (issue 17): killed mid-stream, the bridges
 * report it ('status' events; NODE_DEBUG=ipc-bus-bridge), local traffic
 * never stops, requests to other hosts fail with NoServer meanwhile, and
 * once a server is back on the same address the bridges resume. Host A is
 * a process of its own.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { NoServer } from '@ipc/bus'
import type { BridgeStatus } from '@ipc/bridge-nats'
import { startNats, stopAllNats, type RunningNats } from '../../../test/support/nats.js'
import { localHost, remoteHost, sleep, until } from './hosts.js'

let nats: RunningNats
beforeAll(async () => { nats = await startNats() })
afterAll(stopAllNats)

describe('nats-server killed and restarted mid-stream', () => {
  test('local traffic never stops; the bridges report the outage and resume', async () => {
    const topics = ['feed']
    const services = ['addressbook']
    const a = await remoteHost({ servers: nats.url, topics, services, serve: 'addressbook' }, { NODE_DEBUG: 'ipc-bus-bridge' })
    const b = await localHost({ servers: nats.url, topics, services })
    const statuses: BridgeStatus[] = []
    b.bridge.on('status', (s) => statuses.push(s))
    const onA: number[] = []
    const onB: number[] = []
    a.bus.subscribe('feed', (v: number) => onA.push(v))
    b.bus.subscribe('feed', (v: number) => onB.push(v))
    const localOnB: number[] = []
    b.bus.subscribe('feed', (v: number) => { if (v < 0) localOnB.push(v) })

    // A publishes a value every 2 ms for the whole test; B publishes its own, negative ones, locally.
    let i = 0
    let stop = false
    const publishing = (async () => {
      while (!stop) {
        await a.bus.publish('feed', i++)
        await b.bus.publish('feed', -i)
        await sleep(2)
      }
    })()
    try {
      await until(() => onB.filter((v) => v >= 0).length >= 100)
      await nats.kill()
      await until(() => statuses.some((s) => s.state === 'disconnected'))
      expect(b.bridge.connected).toBe(false)

      // Meanwhile: both hosts' local traffic goes on.
      const aBefore = onA.length
      const localBefore = localOnB.length
      await sleep(300)
      expect(onA.length).toBeGreaterThan(aBefore + 20)
      expect(localOnB.length).toBeGreaterThan(localBefore + 20)
      // A request to the other host cannot get there: NoServer, at once.
      await expect(b.bus.request('addressbook', { op: 'echo', v: 1 }, { timeout: 2000 })).rejects.toBeInstanceOf(NoServer)

      nats = await startNats({ port: nats.port })
      await until(() => statuses.some((s) => s.state === 'reconnected'), 15_000)
      const resumedFrom = i
      await until(() => onB.some((v) => v > resumedFrom + 50), 15_000)
      // Order held across the outage: what arrived is increasing (values in between may be lost: NATS core is at-most-once).
      const fromA = onB.filter((v) => v >= 0)
      expect(fromA).toEqual([...fromA].sort((x, y) => x - y))
      expect(new Set(fromA).size).toBe(fromA.length)
      expect(b.bridge.stats()).toMatchObject({ connected: true, disconnects: 1 })
      // Requests find the far server again (its bridge resubscribed).
      let reply: unknown
      for (let k = 0; k < 200; k++) {
        reply = await b.bus.request('addressbook', { op: 'echo', v: 2 }, { timeout: 2000 }).catch((e: unknown) => e)
        if (!(reply instanceof NoServer)) break
        await sleep(20)
      }
      expect(reply).toEqual({ v: 2, pid: a.pid })
      expect(a.lines.some((l) => l.includes('"disconnected"'))).toBe(true)
      // NODE_DEBUG=ipc-bus-bridge tells the story too.
      expect(a.stderr()).toMatch(/IPC-BUS-BRIDGE \d+: NATS disconnected/)
      expect(a.stderr()).toMatch(/IPC-BUS-BRIDGE \d+: NATS reconnected/)
    } finally {
      stop = true
      await publishing
    }
  })
})
