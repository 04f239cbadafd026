import { once } from 'node:events'
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { Bus, busKey, type Channel } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { fixturePath, finish, startFixture, track, waitForLine } from '../../../test/support/children.js'
import { namedBus, privateBus, trackBus, uniqueName } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'
import { useExitWatches } from '../dist/alive-cache.js'
import { useBackstop } from '../dist/channel/idle.js'

/** Resolves with the next `n` values received on channel. */
function take<T>(channel: Channel<T>, n: number, timeoutMs = 10_000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = []
    const timer = setTimeout(() => reject(new Error(`received ${got.length} of ${n}`)), timeoutMs)
    const onMessage = (v: T) => {
      got.push(v)
      if (got.length === n) {
        clearTimeout(timer)
        channel.off('message', onMessage)
        resolve(got)
      }
    }
    channel.on('message', onMessage)
  })
}

const VALUES: unknown[] = [
  'hello', 42, -1.5, 2n ** 60n, true, null, [1, [2, [3]]], { a: { b: { c: 'deep' } } },
  new Date('2026-11-21T00:00:00Z'), Buffer.from([0, 1, 2, 255]), new Float64Array([1.5, -2]), 'ü'.repeat(1000),
  { id: 1, ts: 1732147200000, kind: 'limit', px: 101.25, qty: 300 },
]

describe('a private bus with forked children', () => {
  for (const [mode, doorbell] of [['listen', 'signal'], ['iterate', 'pipe']] as const) {
    test(`values make the round trip byte-identical (child ${mode}s, ${doorbell} doorbell)`, async () => {
      const bus = await privateBus({ doorbell, ringBytes: '64 KiB' })
      const child = track(bus.fork(fixturePath('bus', 'echo'), [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
      const back = bus.channel('to-parent')
      const received = take(back, VALUES.length)
      const out = bus.channel('to-child')
      for (const v of VALUES) await out.send(v)
      expect(await received).toEqual(VALUES)
      await out.send('bye')
      const [code] = await once(child, 'exit')
      expect(code).toBe(0)
    })
  }

  test('messages sent before the receiver starts wait in the ring', async () => {
    const bus = await privateBus()
    const out = bus.channel('to-child')
    for (let i = 0; i < 100; i++) expect(out.trySend(i)).toBe(true)
    const back = bus.channel('to-parent')
    const received = take(back, 100)
    const child = track(bus.fork(fixturePath('bus', 'echo'), ['listen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    expect(await received).toEqual(Array.from({ length: 100 }, (_, i) => i))
    await out.send('bye')
    await once(child, 'exit')
  })

  test('a child’s exit is reported as peer-exit, with whether it died', async () => {
    const bus = await privateBus()
    const child = track(bus.fork(fixturePath('bus', 'echo'), ['listen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    const exit = once(bus, 'peer-exit')
    await new Promise((r) => setTimeout(r, 300))
    child.kill('SIGKILL')
    const [info] = await exit
    expect(info).toMatchObject({ pid: child.pid, died: true, signal: 'SIGKILL' })
  })

  test('Bus.attach rejects an address that is not a string, or not an address, saying which it was', async () => {
    await expect(Bus.attach({ spinMicros: 5 } as unknown as string)).rejects.toThrow(TypeError)
    await expect(Bus.attach('not json')).rejects.toMatchObject({ code: 'ERR_NOT_A_BUS', message: expect.stringContaining('the address is not valid JSON') })
  })

  test('Bus.attach outside a forked child rejects with NotForked', async () => {
    await expect(Bus.attach()).rejects.toMatchObject({ code: 'ERR_NOT_FORKED' })
  })
})

describe('one process: channels, errors and backpressure', () => {
  test('a channel delivers to its receiver in this same process', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('self')
    const got = take(ch, 1000)
    for (let i = 0; i < 1000; i++) await ch.send(i)
    expect(await got).toEqual(Array.from({ length: 1000 }, (_, i) => i))
  })

  test('bad input writes nothing: MessageTooLarge and Unserializable', async () => {
    const bus = await privateBus({ ringBytes: '64 KiB', maxMessageBytes: 8192 })
    const ch = bus.channel('strict')
    expect(() => ch.trySend('x'.repeat(9000) as never)).toThrow(expect.objectContaining({ code: 'ERR_MESSAGE_TOO_LARGE', name: 'MessageTooLarge' }))
    await expect(ch.send((() => 1) as never)).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    await expect(ch.send(Symbol('s') as never)).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    const cyclic: Record<string, unknown> = {}
    cyclic['self'] = cyclic
    await expect(ch.send(cyclic as never)).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    await expect(ch.sendMany([1, 2, (() => 3) as never])).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    expect(() => ch.trySendBytes(Buffer.alloc(9000))).toThrow(expect.objectContaining({ code: 'ERR_MESSAGE_TOO_LARGE' }))
    const written = ch.stats().lanes.reduce((n, l) => n + l.messagesWritten, 0)
    expect(written).toBe(0)
  })

  test('a sendMany that rejects takes back nothing that trySend and send accepted before it in the same burst', async () => {
    const bus = await privateBus({ ringBytes: '64 KiB' })
    const ch = bus.channel<number>('burst')
    const got: number[] = []
    ch.on('message', (v) => got.push(v))
    expect(ch.trySend(1)).toBe(true)
    await ch.send(2) // resolved: accepted, published with the burst
    await expect(ch.sendMany([3, (() => 4) as never])).rejects.toMatchObject({ code: 'ERR_UNSERIALIZABLE' })
    await ch.send(5)
    await vi.waitUntil(() => got.length >= 3, { timeout: 2000 })
    await new Promise((r) => setTimeout(r, 20))
    expect(got).toEqual([1, 2, 5])
  })

  test('a full ring gives backpressure: trySend false, send waits, timeout rejects with ChannelFull, order holds', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const ch = bus.channel<number>('narrow')
    let n = 0
    while (ch.trySend(n)) n++
    expect(n).toBeGreaterThan(100)
    await expect(ch.send(-1, { timeout: 50 })).rejects.toMatchObject({ code: 'ERR_CHANNEL_FULL' })
    const waiting = [ch.send(n), ch.send(n + 1)]
    expect(ch.trySend(999)).toBe(false) // queued sends keep their place
    const got = take(ch, n + 2)
    await Promise.all(waiting)
    expect(await got).toEqual(Array.from({ length: n + 2 }, (_, i) => i))
  })

  test('an aborted send rejects with the abort reason and writes nothing', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const ch = bus.channel<number>('abortable')
    while (ch.trySend(0)) { /* fill */ }
    const ac = new AbortController()
    const pending = ch.send(1, { signal: ac.signal })
    ac.abort(new Error('changed my mind'))
    await expect(pending).rejects.toThrow('changed my mind')
  })

  test('an already-aborted signal rejects with its reason and writes nothing, room or not (send, sendBytes, sendMany, publish, publishMany)', async () => {
    const bus = await privateBus({ ringBytes: '64 KiB' })
    const ch = bus.channel<number>('early')
    const got: unknown[] = []
    ch.on('message', (v) => got.push(v))
    const topic: unknown[] = []
    bus.subscribe('early-topic', (v) => topic.push(v))
    const signal = AbortSignal.abort(new Error('not now'))
    await expect(ch.send(1, { signal })).rejects.toThrow('not now')
    await expect(ch.sendBytes(Buffer.from('x'), { signal })).rejects.toThrow('not now')
    await expect(ch.sendMany([1, 2], { signal })).rejects.toThrow('not now')
    await expect(bus.publish('early-topic', 1, { signal })).rejects.toThrow('not now')
    await expect(bus.publishMany('early-topic', [1, 2], { signal })).rejects.toThrow('not now')
    await ch.send(9)
    await bus.publish('early-topic', 9)
    await vi.waitUntil(() => got.length > 0 && topic.length > 0, { timeout: 2000 })
    await new Promise((r) => setTimeout(r, 20))
    expect([got, topic]).toEqual([[9], [9]])
  })

  test('a second receiver in the same bus gets the same channel object; a closed bus refuses', async () => {
    const bus = await privateBus()
    expect(bus.channel('a')).toBe(bus.channel('a'))
    await bus.close()
    expect(() => bus.channel('b')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }))
  })

  test('bad options and names throw TypeError or RangeError before anything is created', async () => {
    await expect(Bus.create({ ringBytes: 1000 })).rejects.toThrow(RangeError)
    await expect(Bus.create({ ringBytes: 'lots' as never })).rejects.toThrow(TypeError)
    await expect(Bus.create({ doorbell: 'smoke' as never })).rejects.toThrow(TypeError)
    await expect(Bus.create({ signal: 'SIGUSR2' })).rejects.toThrow(RangeError)
    await expect(Bus.create('x'.repeat(65))).rejects.toThrow(RangeError)
    const bus = await privateBus()
    expect(() => bus.channel('')).toThrow(TypeError)
  })
})

describe('named buses between unrelated processes', () => {
  test('a server started first, clients started separately, each gets its own replies', async () => {
    const name = uniqueName('addr')
    const server = startFixture('bus', 'named-peer', ['server', name, '30'])
    await waitForLine(server, /^ready$/)
    const serverDone = finish(server) // collect the rest of its output from now on
    const clients = [0, 1, 2].map(() => startFixture('bus', 'named-peer', ['client', name, '10']))
    const results = await Promise.all(clients.map((c) => finish(c)))
    for (const r of results) expect(JSON.parse(r.stdout)).toEqual({ replies: Array.from({ length: 10 }, (_, i) => i) })
    const s = await serverDone
    expect(JSON.parse(s.stdout.trim().split('\n').pop()!)).toEqual({ served: 30 })
  })

  test('create twice: BusExists; open a missing one: NoSuchBus', async () => {
    const name = uniqueName()
    await namedBus(name)
    await expect(Bus.create(name)).rejects.toMatchObject({ code: 'ERR_BUS_EXISTS' })
    await expect(Bus.open(uniqueName())).rejects.toMatchObject({ code: 'ERR_NO_SUCH_BUS' })
  })

  test('a foreign segment at the name’s key is NotABus, never used', async () => {
    const name = uniqueName()
    const id = makeSegment(65536, 0o600, busKey(name))
    const buf = shmat(id)
    new Uint8Array(buf).fill(0x5a)
    shmdt(buf)
    await expect(Bus.open(name)).rejects.toMatchObject({ code: 'ERR_NOT_A_BUS' })
    await expect(Bus.create(name)).rejects.toMatchObject({ code: 'ERR_NOT_A_BUS' })
  })

  test('the last member to close removes the bus', async () => {
    const name = uniqueName()
    const a = await namedBus(name)
    const b = trackBus(await Bus.open(name))
    await a.close()
    const c = trackBus(await Bus.open(name)) // still there: b is a member
    await b.close()
    await c.close()
    await expect(Bus.open(name)).rejects.toMatchObject({ code: 'ERR_NO_SUCH_BUS' })
  })

  test('a bus whose members were all killed is reclaimed by the next open, then create', async () => {
    const name = uniqueName()
    const server = startFixture('bus', 'named-peer', ['server', name, '1000'])
    await waitForLine(server, /^ready$/)
    server.kill('SIGKILL')
    await once(server, 'exit')
    await expect(Bus.open(name)).rejects.toMatchObject({ code: 'ERR_NO_SUCH_BUS', message: expect.stringContaining('reclaimed') })
    const again = await namedBus(name) // and the name is free again
    expect(again.name).toBe(name)
  })

  test('a user without access cannot open a 0600 bus: PermissionDenied', async () => {
    const name = uniqueName()
    await namedBus(name, { mode: 0o600 })
    const r = await finish(startFixture('bus', 'named-peer', ['open', name], { uid: 65534, gid: 65534 }))
    expect(JSON.parse(r.stdout)).toMatchObject({ error: 'ERR_PERMISSION_DENIED' })
  })
})

describe('receivers', () => {
  test('a second live receiver is refused with ChannelBusy; after the receiver dies sends reject with PeerGone and a new receiver takes over what is unread', async () => {
    const name = uniqueName()
    const bus = await namedBus(name)
    const first = startFixture('bus', 'named-peer', ['receive', name, 'jobs'])
    await waitForLine(first, /^ready$/)
    const jobs = bus.channel<number>('jobs')
    expect(() => jobs.on('message', () => {})).toThrow(expect.objectContaining({ code: 'ERR_CHANNEL_BUSY' }))
    jobs.removeAllListeners('message')
    first.kill('SIGSTOP') // alive but not reading
    for (let i = 0; i < 5; i++) await jobs.send(i)
    first.kill('SIGKILL')
    await once(first, 'exit')
    // Sends notice the death within a second (liveness is re-checked every
    // 200 ms); those that went through before are kept for the next receiver.
    const t0 = Date.now()
    let i = 5
    let failure: unknown
    for (; Date.now() - t0 < 2000; i++) {
      try {
        await jobs.send(i)
      } catch (err) {
        failure = err
        break
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(failure).toMatchObject({ code: 'ERR_PEER_GONE' })
    expect(Date.now() - t0).toBeLessThan(1000)
    const got = take(jobs, i) // we take over as receiver: nothing unread is lost
    expect(await got).toEqual(Array.from({ length: i }, (_, k) => k))
    await jobs.send(-1) // and sending works again
    expect(await take(jobs, 1)).toEqual([-1])
  })

  test('a parked receiver uses no CPU (under 1% over 2 s, measured in the child)', async () => {
    const bus = await privateBus()
    const child = track(bus.fork(fixturePath('bus', 'idle-receiver'), ['2000'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }))
    const out = await finish(child)
    const { cpuMicros, wallMs } = JSON.parse(out.stdout) as { cpuMicros: number; wallMs: number }
    expect(wallMs).toBeGreaterThanOrEqual(1990)
    expect(cpuMicros / (wallMs * 1000)).toBeLessThan(0.01)
  })
})

describe('parking backstop', () => {
  // With pidfds the receiver learns of a sender's exit instead (exit-rescue.test.ts);
  // the backstop's fast schedule is for systems without them.
  test('without exit watches, a sender killed between winning the doorbell and ringing it does not strand the parked receiver', async () => {
    useBackstop(true) // off for every other test (IPC_BUS_BACKSTOP=off in vitest.config.ts)
    useExitWatches(false)
    onTestFinished(() => {
      useBackstop(false)
      useExitWatches(true)
    })
    const bus = await privateBus()
    const ch = bus.channel<string>('stranded')
    const got: string[] = []
    const arrived = new Promise<number>((resolve) => ch.on('message', (v) => { got.push(v); resolve(performance.now()) }))
    await new Promise((r) => setTimeout(r, 50)) // the receiver finds nothing and parks
    // Play the dying sender with the channel's own segment: claim a lane,
    // publish, win the parked word's CAS ... and never ring.
    const segment = (ch as unknown as { segment: import('@ipc/core').ChannelSegment }).segment
    const lane = segment.claimLane({ pid: 1, startTime: 1 })!
    expect(lane.trySend('hello', 0)).toBe(true)
    const wonAt = performance.now()
    expect(lane.shouldRing()).toBe(true) // the receiver was parked: this "sender" owed the ring
    const at = await Promise.race([arrived, new Promise<number>((_, reject) => setTimeout(() => reject(new Error("channel 'stranded': the parked receiver's backstop did not rescue the lost ring within 3 s")), 3000))])
    expect(got).toEqual(['hello'])
    expect(at - wonAt).toBeLessThan(1000) // the backstop first looks 250 ms after parking
    expect(ch.stats().backstopRescues).toBe(1) // and it counted the rescue
  })
})

describe('pause and resume', () => {
  test('a paused receiver leaves messages in the ring (senders feel backpressure) until resume', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const ch = bus.channel<number>('pausable')
    const got: number[] = []
    ch.on('message', (v) => {
      got.push(v)
      if (v === 4) ch.pause()
    })
    for (let i = 0; i < 5; i++) await ch.send(i)
    await new Promise((r) => setTimeout(r, 50))
    expect(got).toEqual([0, 1, 2, 3, 4])
    expect(ch.isPaused).toBe(true)
    let n = 5
    while (ch.trySend(n)) n++ // fills: nobody drains while paused
    await new Promise((r) => setTimeout(r, 50))
    expect(got.length).toBe(5)
    ch.resume()
    await new Promise((r) => setTimeout(r, 100))
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i))
  })
})

describe('peer-exit on a named bus', () => {
  test('members that are not our children are reported when they leave or die', async () => {
    const name = uniqueName()
    const bus = await namedBus(name)
    const exits: Array<{ pid: number; died: boolean }> = []
    bus.on('peer-exit', (e) => exits.push({ pid: e.pid, died: e.died }))
    const polite = startFixture('bus', 'named-peer', ['linger', name, '600']) // longer than a sweep (250 ms)
    const rude = startFixture('bus', 'named-peer', ['receive', name, 'x'])
    await waitForLine(rude, /^ready$/)
    await finish(polite)
    rude.kill('SIGKILL')
    await once(rude, 'exit')
    for (let i = 0; i < 40 && exits.length < 2; i++) await new Promise((r) => setTimeout(r, 50))
    expect(exits).toContainEqual({ pid: rude.pid, died: true })
    expect(exits).toContainEqual({ pid: polite.pid, died: false })
  })
})

describe('a private bus leaves nothing behind', () => {
  test('killing every process of the tree with SIGKILL frees every segment it used', async () => {
    const root = startFixture('bus', 'private-tree', [], { stdio: ['ignore', 'pipe', 'inherit'] })
    const [line] = await waitForLine(root, /^\{.*\}$/, 15_000)
    const { pids, segments } = JSON.parse(line) as { pids: number[]; segments: number[] }
    const killAll = (): void => {
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
      }
    }
    try {
      expect(pids).toHaveLength(3)
      expect(segments.length).toBeGreaterThanOrEqual(4) // directory + three channels
      killAll()
      await once(root, 'exit')
      for (let i = 0; i < 50; i++) {
        const alive = pids.filter((pid) => { try { process.kill(pid, 0); return true } catch { return false } })
        if (alive.length === 0) break
        await new Promise((r) => setTimeout(r, 20))
      }
      const { readFileSync } = await import('node:fs')
      const left = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[1]))
      expect(left.filter((id) => segments.includes(id))).toEqual([])
    } finally {
      killAll() // grandchildren are not tracked: never leave them behind
    }
  })
})

describe('batched publishing', () => {
  test('a burst of trySend followed at once by process.exit() is still delivered in full', async () => {
    const bus = await privateBus()
    const got = take(bus.channel<number>('burst'), 51)
    const child = track(bus.fork(fixturePath('bus', 'exit-burst'), ['50'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
    expect(await got).toEqual([-1, ...Array.from({ length: 50 }, (_, i) => i)])
  })
})

describe('raw bytes', () => {
  test('zeroCopy hands listeners views of the ring with the exact bytes; without it they get copies that stay valid', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const views: Buffer[] = []
    const seen: string[] = []
    const zc = bus.channel<Buffer>('zc', { zeroCopy: true })
    zc.on('message', (b) => { views.push(b); seen.push(b.toString('hex')) })
    const copies: Buffer[] = []
    const plain = bus.channel<Buffer>('plain')
    plain.on('message', (b) => copies.push(b))
    const frames = Array.from({ length: 300 }, (_, i) => Buffer.from([i & 0xff, (i * 7) & 0xff, 0xa5, i >> 8]))
    for (const f of frames) {
      await zc.sendBytes(f)
      await plain.sendBytes(f)
    }
    for (let i = 0; i < 100 && copies.length < frames.length; i++) await new Promise((r) => setTimeout(r, 10))
    expect(seen).toEqual(frames.map((f) => f.toString('hex'))) // right bytes while the listener ran
    expect(copies.map((b) => b.toString('hex'))).toEqual(frames.map((f) => f.toString('hex'))) // copies keep them
    expect(views.every((v) => v.buffer !== copies[0]!.buffer)).toBe(true)
    // 300 records of 16 bytes went round a 4 KiB ring: old views now show newer records.
    expect(views.some((v, i) => v.toString('hex') !== seen[i])).toBe(true)
  })

  test('channelNames lists channels by prefix; dropChannel removes only abandoned ones', async () => {
    const bus = await privateBus()
    bus.channel('a:1')
    bus.channel('a:2')
    bus.channel('b:1')
    expect(bus.channelNames('a:').sort()).toEqual(['a:1', 'a:2'])
    const live = bus.channel('live')
    live.on('message', () => {})
    expect(bus.dropChannel('live')).toBe(false) // its receiver is alive
    expect(bus.dropChannel('b:1')).toBe(false) // nobody ever received: needs force
    expect(bus.dropChannel('b:1', { force: true })).toBe(true)
    expect(bus.channelNames('b:')).toEqual([])
  })
})

describe('a sender blocked on a full lane', () => {
  test('sleeps (under 2% CPU, measured in the child) and is woken when the receiver frees room', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const stalled = bus.channel<number>('stalled')
    let got = 0
    stalled.on('message', () => { got++ })
    stalled.pause()
    const child = track(bus.fork(fixturePath('bus', 'blocked-sender'), ['1000'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] }))
    const out = await finish(child)
    const { cpuMicros, wallMs } = JSON.parse(out.stdout) as { cpuMicros: number; wallMs: number }
    expect(cpuMicros / (wallMs * 1000)).toBeLessThan(0.02)
    stalled.resume()
    for (let i = 0; i < 100 && got === 0; i++) await new Promise((r) => setTimeout(r, 10))
    expect(got).toBeGreaterThan(0)
  })

  test('in one process: a send waiting for room resolves as soon as the receiver drains', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const ch = bus.channel<number>('self-full')
    const got: number[] = []
    ch.on('message', (v) => got.push(v))
    ch.pause()
    let n = 0
    while (ch.trySend(n)) n++
    const waiting = ch.send(n)
    await new Promise((r) => setTimeout(r, 300)) // asleep on the room doorbell by now
    const t0 = performance.now()
    ch.resume()
    await waiting
    expect(performance.now() - t0).toBeLessThan(150) // woken by the drain, not by its 200 ms re-check
    await new Promise((r) => setTimeout(r, 20))
    expect(got).toEqual(Array.from({ length: n + 1 }, (_, i) => i))
  })
})
