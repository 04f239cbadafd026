/**
 * Request/reply across real processes. The property: clients (long-lived
 * agents) send random concurrent requests with random deadlines and retries
 * to servers (fresh processes each run) that are SIGKILLed at random
 * moments. Every request settles exactly once, as a reply, RequestTimeout
 * or PeerGone (NoServer only once every server was killed), and no handler
 * ever runs twice for one request: servers count each execution in shared
 * memory before doing anything else. Reproduce with FC_SEED (and FC_PATH).
 */
import { once } from 'node:events'
import type { ChildProcess } from 'node:child_process'
import fc from 'fast-check'
import { createHook } from 'node:async_hooks'
import { describe, expect, test } from 'vitest'
import { Bus, NoServer, PeerGone, RemoteError, RequestTimeout, type Bus as BusType } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { Agent } from '../../../test/support/agents.js'
import { trackBus } from '../../../test/support/buses.js'
import { fixturePath, track } from '../../../test/support/children.js'
import { makeSegment } from '../../../test/support/segments.js'

const RUNS = Number(process.env['FC_RUNS'] ?? 20)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']

async function startServers(bus: BusType, shmid: number, n: number, concurrency: number, service = 'calc'): Promise<ChildProcess[]> {
  const servers = Array.from({ length: n }, () => track(bus.fork(fixturePath('bus', 'rpc-server'), [String(shmid), service, String(concurrency)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })))
  await Promise.all(servers.map((s) => once(s, 'message')))
  return servers
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGKILL')
  await once(child, 'exit')
}

const scenario = fc.record({
  servers: fc.integer({ min: 1, max: 2 }),
  concurrency: fc.integer({ min: 1, max: 4 }),
  clients: fc.array(fc.record({
    count: fc.integer({ min: 1, max: 15 }),
    timeout: fc.constantFrom(40, 150, 2000),
    retries: fc.integer({ min: 0, max: 2 }),
    delays: fc.array(fc.integer({ min: 0, max: 80 }), { minLength: 1, maxLength: 5 }),
    spacingMs: fc.integer({ min: 0, max: 8 }),
  }), { minLength: 1, maxLength: 3 }),
  kills: fc.array(fc.record({ server: fc.nat(), atMs: fc.integer({ min: 0, max: 150 }) }), { maxLength: 2 }),
})

type Outcome = [string, unknown]

describe('request/reply property', () => {
  test('servers killed at random moments: every request settles once, no handler runs twice', async () => {
    const agents = [0, 1, 2].map(() => new Agent('pattern-agent'))
    const tableId = makeSegment(3 * 1024 * 4)
    const tableBuf = shmat(tableId)
    const executions = new Int32Array(tableBuf)
    try {
      await fc.assert(
        fc.asyncProperty(scenario, async (sc) => {
          executions.fill(0)
          const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
          const servers = await startServers(bus, tableId, sc.servers, sc.concurrency)
          try {
            await Promise.all(sc.clients.map((_, c) => agents[c]!.call('attach', { address: bus.address })))
            const killed = new Set<number>()
            const killing = sc.kills.map(async (k) => {
              await new Promise((r) => setTimeout(r, k.atMs))
              const i = k.server % servers.length
              killed.add(i)
              await kill(servers[i]!)
            })
            const outcomes = await Promise.all(sc.clients.map((cl, c) => agents[c]!.call<Outcome[]>('requests', {
              service: 'calc', client: c, count: cl.count, timeout: cl.timeout, retries: cl.retries, delays: cl.delays, spacingMs: cl.spacingMs,
            }, 60_000)))
            await Promise.all(killing)
            const allKilled = killed.size === servers.length
            const errors: string[] = []
            outcomes.forEach((list, c) => {
              expect(list).toHaveLength(sc.clients[c]!.count)
              list.forEach(([kind, value], k) => {
                const runs = executions[c * 1024 + k]!
                if (runs > 1) errors.push(`client ${c} request ${k}: handler ran ${runs} times`)
                if (kind === 'reply') {
                  const v = value as { c: number; k: number }
                  if (v.c !== c || v.k !== k) errors.push(`client ${c} request ${k}: got the reply of ${v.c}/${v.k}`)
                  if (runs !== 1) errors.push(`client ${c} request ${k}: replied but ran ${runs} times`)
                } else if (kind === 'PeerGone') {
                  if (killed.size === 0) errors.push(`client ${c} request ${k}: PeerGone with no server killed`)
                } else if (kind === 'NoServer') {
                  if (!allKilled) errors.push(`client ${c} request ${k}: NoServer while a server lives`)
                } else if (kind !== 'RequestTimeout') {
                  errors.push(`client ${c} request ${k}: unexpected ${kind}: ${String(value)}`)
                }
              })
            })
            expect(errors.slice(0, 10)).toEqual([])
            // Nothing left pending in any client.
            for (let c = 0; c < sc.clients.length; c++) {
              const stats = await agents[c]!.call<{ rpc?: { pending: number } }>('stats')
              expect(stats.rpc?.pending).toBe(0)
            }
          } finally {
            await Promise.all(servers.map(kill))
            await Promise.all(sc.clients.map((_, c) => agents[c]!.call('close')))
            await bus.close()
          }
        }),
        { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true },
      )
    } finally {
      shmdt(tableBuf)
    }
  }, 300_000)
})

describe('request/reply', () => {
  test('spreads requests over live servers, round robin', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const table = makeSegment(4096 * 4)
    await startServers(bus, table, 2, 4)
    const replies = await Promise.all(Array.from({ length: 20 }, (_, k) => bus.request<{ pid: number }>('calc', { c: 0, k })))
    const perServer = new Map<number, number>()
    for (const r of replies) perServer.set(r.pid, (perServer.get(r.pid) ?? 0) + 1)
    expect([...perServer.values()]).toEqual([10, 10])
  })

  test('error paths: NoServer at once, MessageTooLarge and Unserializable before sending, RemoteError with the remote name, message, code and stack', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB', maxMessageBytes: 8192 }))
    const t0 = performance.now()
    await expect(bus.request('nobody', 1, { timeout: 5000 })).rejects.toBeInstanceOf(NoServer)
    expect(performance.now() - t0).toBeLessThan(100)
    const table = makeSegment(4096 * 4)
    const [server] = await startServers(bus, table, 1, 1)
    await expect(bus.request('calc', { c: 0, k: 0, pad: 'x'.repeat(9000) })).rejects.toMatchObject({ code: 'ERR_MESSAGE_TOO_LARGE' })
    await expect(bus.request('calc', { c: 0, k: 0, f: () => 1 })).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    expect(new Int32Array(shmat(table))[0]).toBe(0) // neither reached the handler
    const err = (await bus.request('calc', { c: 0, k: 1, fail: 'no such entry' }).catch((e: unknown) => e)) as RemoteError
    expect(err).toBeInstanceOf(RemoteError)
    expect(err.code).toBe('ERR_REMOTE')
    expect(err.remote).toMatchObject({ name: 'RangeError', message: 'no such entry', code: 'E_FAIL' })
    expect(err.remoteStack).toMatch(/RangeError: no such entry\n\s+at /)
    expect(err.serverPid).toBe(server!.pid)
    expect(() => bus.serve('x'.repeat(41), () => 1)).toThrow(RangeError)
    await expect(bus.request('calc', 1, { timeout: -1 })).rejects.toBeInstanceOf(RangeError)
  })

  test('a deadline rejects with RequestTimeout and the late reply is discarded', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const table = makeSegment(4096 * 4)
    await startServers(bus, table, 1, 1)
    await expect(bus.request('calc', { c: 0, k: 0, delay: 200 }, { timeout: 50 })).rejects.toBeInstanceOf(RequestTimeout)
    await new Promise((r) => setTimeout(r, 300))
    expect(bus.stats().rpc).toMatchObject({ timeouts: 1, lateReplies: 1, pending: 0 })
    // The next request is not confused by the late one.
    expect(await bus.request('calc', { c: 0, k: 1 })).toMatchObject({ c: 0, k: 1 })
  })

  test('retries after a timeout carry the same id: the handler runs once and the stored reply answers', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const table = makeSegment(4096 * 4)
    const executions = new Int32Array(shmat(table))
    await startServers(bus, table, 1, 4)
    // Runs 250 ms; attempts time out at 100 ms; the third attempt (or the
    // reply of the first) answers.
    const reply = await bus.request('calc', { c: 0, k: 7, delay: 250 }, { timeout: 100, retries: 4 })
    expect(reply).toMatchObject({ c: 0, k: 7 })
    expect(executions[7]).toBe(1)
    expect(bus.stats().rpc!.retries).toBeGreaterThanOrEqual(2)
    // A retry after the reply was stored also gets it without running again.
    await expect(bus.request('calc', { c: 0, k: 8, delay: 150 }, { timeout: 100, retries: 0 })).rejects.toBeInstanceOf(RequestTimeout)
    await new Promise((r) => setTimeout(r, 100))
    expect(executions[8]).toBe(1)
  })

  test('a server killed with requests pending rejects them with PeerGone within a few hundred ms', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    const table = makeSegment(4096 * 4)
    const [server] = await startServers(bus, table, 1, 4)
    const pending = Promise.allSettled([0, 1, 2].map((k) => bus.request('calc', { c: 0, k, delay: 10_000 }, { timeout: 20_000 })))
    await new Promise((r) => setTimeout(r, 50))
    const t0 = performance.now()
    await kill(server!)
    const settled = await pending
    expect(performance.now() - t0).toBeLessThan(600)
    for (const s of settled) {
      expect(s.status).toBe('rejected')
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(PeerGone)
      expect((s as PromiseRejectedResult).reason.pid).toBe(server!.pid)
    }
    expect(bus.channelNames('s:calc:')).toEqual([])
    await expect(bus.request('calc', 1)).rejects.toBeInstanceOf(NoServer)
  })

  test('a server in this process: serve, close, AbortSignal; an idle client keeps no timer', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    let running = 0
    let most = 0
    const server = bus.serve<number, number>('double', async (n) => {
      most = Math.max(most, ++running)
      await new Promise((r) => setTimeout(r, 5))
      running--
      return n * 2
    }, { concurrency: 2 })
    expect(await Promise.all([1, 2, 3, 4, 5].map((n) => bus.request<number>('double', n)))).toEqual([2, 4, 6, 8, 10])
    expect(most).toBe(2)
    expect(server.stats()).toMatchObject({ handled: 5, running: 0 })
    const ac = new AbortController()
    const aborted = bus.request('double', 1, { signal: ac.signal })
    ac.abort(new Error('changed my mind'))
    await expect(aborted).rejects.toThrow('changed my mind')
    await server.close()
    expect(bus.channelNames('s:')).toEqual([])
    await expect(bus.request('double', 1)).rejects.toBeInstanceOf(NoServer)
    const stopper = new AbortController()
    bus.serve('echo', (x) => x, { signal: stopper.signal })
    expect(await bus.request('echo', 'hi')).toBe('hi')
    stopper.abort()
    await new Promise((r) => setImmediate(r))
    expect(bus.channelNames('s:')).toEqual([])
    expect(bus.stats().rpc!.pending).toBe(0)
  })

  test('an idle client sleeps: once its last reply is in, no timer of its own is left (no look WATCH_MS later, no deadline in timeoutMs)', async () => {
    const bus = trackBus(await Bus.create({ ringBytes: '64 KiB' }))
    bus.serve('echo', (x) => x)
    const live = new Map<number, string>()
    const hook = createHook({
      init(id, type) { if (type === 'Timeout') live.set(id, new Error().stack ?? '') },
      destroy(id) { live.delete(id) },
    }).enable()
    try {
      const mine = (): string[] => [...live.values()].filter((stack) => /\/rpc\/client\.[jt]s:/.test(stack)) // (source-mapped to .ts under vitest)
      for (let i = 0; i < 50; i++) expect(await bus.request('echo', i)).toBe(i)
      const last = Promise.all([1, 2, 3].map((n) => bus.request('echo', n)))
      expect(mine().length).toBeGreaterThan(0) // its watch and deadline while requests are pending (else this test sees nothing)
      await last
      await new Promise((r) => setImmediate(r))
      expect(mine()).toEqual([])
    } finally {
      hook.disable()
    }
  })
})
