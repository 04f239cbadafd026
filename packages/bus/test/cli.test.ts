/**
 * `ipc-bus` seeing buses: the built CLI (dist/cli/main.js) run as a
 * subprocess against buses made by fixture processes (fixtures/cli-peer.ts).
 * Every child is killed and every named bus cleared after each test
 * (test/support/children.ts, buses.ts). The cleaning commands (gc, rm) and
 * the unreadable and corrupt cases are in cli-clean.test.ts.
 */
import { describe, expect, test } from 'vitest'
import { uniqueName } from '../../../test/support/buses.js'
import { cli, json, peer } from './cli-run.js'


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('ipc-bus usage', () => {
  test('--help lists the commands; each command has --help; misuse exits 2 with a message', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    for (const command of ['ls', 'inspect', 'top', 'gc', 'rm']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
    const each = await Promise.all(['ls', 'inspect', 'top', 'gc', 'rm'].map((c) => cli([c, '--help'])))
    for (const r of each) {
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^Usage: ipc-bus \w+/)
      expect(r.stdout).toContain('--json')
    }
    const misuse = await Promise.all([cli([]), cli(['nope']), cli(['inspect']), cli(['ls', '--bogus']), cli(['top', 'x', '--count', 'many'])])
    for (const r of misuse) {
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/^ipc-bus: /)
    }
    const missing = await cli(['inspect', uniqueName('cli-none')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^ipc-bus: no bus named/)
  })
})

describe('ipc-bus ls', () => {
  test('finds a named bus and a private one without being told their names', async () => {
    const name = uniqueName('cli-ls')
    const named = await peer(name, { receive: ['in'], backlog: { channel: 'out', count: 2, bytes: 8 } })
    const priv = await peer('-', { receive: ['in'] })
    const buses: any[] = await json(['ls'])
    const a = buses.find((b) => b.name === name)
    expect(a).toMatchObject({ private: false, state: 'live', dead: false, readable: true, creatorPid: named.pid, members: { alive: 1, dead: 0 }, channels: 2, mode: '0600' })
    expect(a.key).toMatch(/^0x5[0-9a-f]{7}$/)
    const b = buses.find((x) => x.private === true && x.creatorPid === priv.pid)
    expect(b).toMatchObject({ state: 'live', members: { alive: 1, dead: 0 }, channels: 1, key: '0x0' })
    expect(b.name).toBe(`private:${priv.pid}:1`)

    const text = await cli(['ls'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^NAME +ID +KEY +MODE +OWNER +ALIVE +DEAD +CHANNELS +TOPICS +SERVICES +CREATED +STATE/)
    expect(text.stdout).toMatch(new RegExp(`^${name} +${a.id} +${a.key} +0600 +root +1 +0 +2 +0 +0 .* live$`, 'm'))
    // A private bus is inspected by its directory segment id, or by the name ls shows.
    const byId = await json(['inspect', '--id', String(b.id)])
    expect(byId.members.map((m: any) => m.pid)).toEqual([priv.pid])
    const byName = await json(['inspect', b.name])
    expect(byName.bus.id).toBe(b.id)
  })
})

describe('ipc-bus inspect', () => {
  test('members with roles, a channel with a known backlog and no receiver, a topic with its subscribers, a service', async () => {
    const name = uniqueName('cli-inspect')
    const first = await peer(name, {
      backlog: { channel: 'jobs', count: 7, bytes: 100 }, subscribe: [{ topic: 'prices', policy: 'drop' }], serve: ['math'],
    })
    const second = await peer(name, { open: true, subscribe: [{ topic: 'prices' }], publish: { topic: 'prices', count: 4 }, request: { service: 'math', count: 2 } })
    const d = await json(['inspect', name])
    expect(d.bus).toMatchObject({ name, state: 'live', members: { alive: 2, dead: 0 }, channels: 1, topics: 1, services: 1 })

    expect(d.members.map((m: any) => [m.pid, m.alive, m.doorbell])).toEqual([[first.pid, true, 'signal SIGRTMIN+4'], [second.pid, true, 'signal SIGRTMIN+4']])
    const [m1, m2] = d.members
    expect(m1.roles).toEqual(expect.arrayContaining(['sender(jobs)', 'server(math)', 'subscriber(prices)']))
    expect(m2.roles).toEqual(expect.arrayContaining(['publisher(prices)', 'subscriber(prices)', 'client']))

    const jobs = d.channels.find((c: any) => c.name === 'jobs')
    // 7 records of an 8-byte header + 100 bytes, each padded to 112.
    expect(jobs).toMatchObject({
      role: 'channel', receiver: null, receiverParked: null, lanesInUse: 1, laneCount: 8, capacity: 65536,
      backlogMessages: 7, backlogBytes: 7 * 112, messagesWritten: 7, bytesWritten: 700, messagesRead: 0, fullEvents: 0, error: null,
    })
    expect(jobs.lanes).toEqual([expect.objectContaining({ lane: 0, owner: expect.objectContaining({ pid: first.pid, alive: true }), backlogMessages: 7, backlogBytes: 784 })])

    const prices = d.topics.find((t: any) => t.name === 'prices')
    expect(prices).toMatchObject({ messagesWritten: 4, lanesInUse: 1, error: null })
    expect(prices.lanes[0].owner).toMatchObject({ pid: second.pid, alive: true })
    const subs = prices.subscribers.map((s: any) => [s.owner.pid, s.policy, s.state]).sort()
    expect(subs).toEqual([[first.pid, 'drop', 'active'], [second.pid, 'block', 'active']].sort())

    expect(d.services).toEqual([{ service: 'math', servers: [expect.objectContaining({ pid: first.pid, alive: true, queued: 0, taken: 2, inFlight: 0 })] }])
    const server = d.channels.find((c: any) => c.role === 'server')
    expect(server).toMatchObject({ service: 'math', receiver: { pid: first.pid, alive: true } })

    const text = await cli(['inspect', name])
    expect(text.code).toBe(0)
    for (const heading of ['MEMBERS', 'CHANNELS', 'CHANNEL LANES', 'TOPICS', 'TOPIC LANES', 'SUBSCRIBERS', 'SERVICES']) {
      expect(text.stdout).toMatch(new RegExp(`^${heading}$`, 'm'))
    }
    expect(text.stdout).toMatch(/^jobs +\d+ +- +1\/8 +64 KiB +7 +784 B +7 +0 /m)
  })
})

describe('ipc-bus top', () => {
  test('prints the refreshes it was asked for, with non-zero rates under traffic', async () => {
    const name = uniqueName('cli-top')
    await peer(name, { receive: ['ticks'], subscribe: [{ topic: 'prices' }] })
    await peer(name, { open: true, traffic: { channel: 'ticks', topic: 'prices', every: 5, burst: 10 } })
    await sleep(100)
    const r = await cli(['top', name, '--interval', '0.3', '--count', '2', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const samples = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
    expect(samples).toHaveLength(2)
    for (const s of samples) {
      expect(s.seconds).toBeGreaterThan(0.2)
      const ticks = s.channels.find((c: any) => c.name === 'ticks')
      expect(ticks.messagesPerSec).toBeGreaterThan(0)
      expect(ticks.bytesPerSec).toBeGreaterThan(0)
      expect(ticks.readPerSec).toBeGreaterThan(0)
      expect(ticks.lanes[0].messagesPerSec).toBeGreaterThan(0)
      const prices = s.topics.find((t: any) => t.name === 'prices')
      expect(prices.messagesPerSec).toBeGreaterThan(0)
      expect(prices.lanes[0].messagesPerSec).toBeGreaterThan(0)
      expect(prices.subscribers[0].readPerSec).toBeGreaterThan(0)
    }

    const text = await cli(['top', name, '--interval', '0.2', '--count', '2'])
    expect(text.code).toBe(0)
    expect(text.stdout).not.toContain('\x1b') // piped: no screen clearing
    expect(text.stdout.match(/^ipc-bus top /gm)).toHaveLength(2)
    expect(text.stdout).toContain('refresh 2 of 2')
    expect(text.stdout).toMatch(/^ticks +\* +\d+ +[\d.]+k? +/m)
  })
})
