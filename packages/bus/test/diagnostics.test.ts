/**
 * Diagnostics (issue 15): diagnostics_channel events with their documented
 * payloads, and NODE_DEBUG=ipc-bus lines (one per event, none when off).
 */
import { spawnSync } from 'node:child_process'
import diagnostics_channel from 'node:diagnostics_channel'
import { describe, expect, test } from 'vitest'
import { Bus } from '@ipc/bus'
import { fixturePath, track } from '../../../test/support/children.js'
import { trackBus } from '../../../test/support/buses.js'

type Event = { channel: string; payload: Record<string, unknown> }

function listen(names: string[]): { events: Event[]; stop: () => void } {
  const events: Event[] = []
  const subs = names.map((name) => {
    const fn = (payload: unknown): void => { events.push({ channel: name, payload: payload as Record<string, unknown> }) }
    diagnostics_channel.subscribe(name, fn)
    return () => diagnostics_channel.unsubscribe(name, fn)
  })
  return { events, stop: () => { for (const s of subs) s() } }
}

describe('diagnostics_channel', () => {
  test('join, claim, channel:full, peer-exit, drop and leave, with their payloads', async () => {
    const { events, stop } = listen(['ipc-bus:join', 'ipc-bus:leave', 'ipc-bus:claim', 'ipc-bus:channel:full', 'ipc-bus:peer-exit', 'ipc-bus:drop'])
    try {
      const bus = trackBus(await Bus.create({ ringBytes: 4096 }))
      expect(events).toContainEqual({ channel: 'ipc-bus:join', payload: { bus: null, pid: process.pid, slot: expect.any(Number) } })
      const ch = bus.channel<number>('jobs')
      ch.on('message', () => {})
      expect(events).toContainEqual({ channel: 'ipc-bus:claim', payload: { bus: null, channel: 'jobs', pid: process.pid, role: 'receiver' } })
      ch.pause()
      let sent = 0
      while (ch.trySend(sent)) sent++
      expect(events).toContainEqual({ channel: 'ipc-bus:claim', payload: { bus: null, channel: 'jobs', pid: process.pid, role: 'sender', lane: 0 } })
      const waiting = ch.send(-1)
      expect(events.filter((e) => e.channel === 'ipc-bus:channel:full')).toEqual([{ channel: 'ipc-bus:channel:full', payload: { bus: null, channel: 'jobs', lane: 0, bytes: expect.any(Number) } }])
      ch.resume()
      await waiting
      const child = track(bus.fork(fixturePath('bus', 'echo'), ['listen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
      bus.on('peer-exit', () => {})
      const exited = new Promise((r) => bus.once('peer-exit', r))
      await new Promise((r) => setTimeout(r, 200))
      child.kill('SIGKILL')
      await exited
      expect(events).toContainEqual({ channel: 'ipc-bus:peer-exit', payload: { bus: null, pid: child.pid, code: null, signal: 'SIGKILL', crashed: true } })
      // A lapped drop subscriber in this process.
      const sub = bus.subscribe<number>('fast', { policy: 'drop', ringBytes: 4096 })
      for (let i = 0; i < 2000; i++) bus.tryPublish('fast', i)
      for await (const v of sub) { if (v >= 0) break }
      expect(events.find((e) => e.channel === 'ipc-bus:drop')?.payload).toEqual({ bus: null, topic: 'fast', dropped: expect.any(Number), slot: sub.slot })
      await bus.close()
      expect(events).toContainEqual({ channel: 'ipc-bus:leave', payload: { bus: null, pid: process.pid, last: false } })
    } finally {
      stop()
    }
  })

  test('reclaim: a dead named bus taken over by Bus.create', async () => {
    const name = `diag-${process.pid}`
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { Bus } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)})
      await Bus.create(${JSON.stringify(name)})
      process.kill(process.pid, 'SIGKILL')
    `], { encoding: 'utf8', timeout: 20_000 })
    expect(out.signal).toBe('SIGKILL')
    const { events, stop } = listen(['ipc-bus:reclaim'])
    try {
      const bus = trackBus(await Bus.create(name))
      expect(events).toContainEqual({ channel: 'ipc-bus:reclaim', payload: { bus: name, what: 'bus', detail: expect.stringContaining('dead bus') } })
      await bus.close()
    } finally {
      stop()
    }
  })
})

describe('NODE_DEBUG=ipc-bus', () => {
  const script = `
    const { Bus } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)})
    const bus = await Bus.create()
    const ch = bus.channel('c')
    const got = new Promise((r) => ch.once('message', r))
    await new Promise((r) => setTimeout(r, 20))
    await ch.send(1)
    await got
    await bus.close()
  `
  test('one line per event, with the pid, and park/wake traces', () => {
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_DEBUG: 'ipc-bus' } })
    expect(out.status).toBe(0)
    const lines = out.stderr.split('\n').filter((l) => l.startsWith('IPC-BUS'))
    expect(lines.some((l) => /^IPC-BUS \d+: join bus=null pid=\d+ slot=\d+$/.test(l))).toBe(true)
    expect(lines.some((l) => / claim bus=null channel=c pid=\d+ role=receiver$/.test(l))).toBe(true)
    expect(lines.some((l) => / park channel=c$/.test(l))).toBe(true)
    expect(lines.some((l) => / wake channel=c$/.test(l))).toBe(true)
    expect(lines.some((l) => / leave bus=null pid=\d+ last=false$/.test(l))).toBe(true)
  })

  test('off by default: not a line', () => {
    const env = { ...process.env }
    delete env['NODE_DEBUG']
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000, env })
    expect(out.status).toBe(0)
    expect(out.stderr).not.toContain('IPC-BUS')
  })
})
