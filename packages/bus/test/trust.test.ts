/**
 * Regression tests for the trust issue: each test is named after what it
 * guards, and each failed on the build before the fix. Cross-process cases
 * run their other side through fixtures/script.ts. The parked
 * receiver's backstop is off (vitest.config.ts), so a lost wakeup stalls
 * here instead of hiding as a 250 ms delay.
 */
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { describe, expect, test } from 'vitest'
import { Bus, busKey, type Channel } from '@ipc/bus'
import { IPC_CREAT, shmctl, shmget } from '@ipc/native'
import { finish, startFixture, waitForLine, type Finished } from '../../../test/support/children.js'
import { namedBus, privateBus, trackBus, uniqueName } from '../../../test/support/buses.js'

/** Starts a script in a child (see fixtures/script.ts); `done` collects its output. */
function script(body: string, args: unknown[] = [], env: NodeJS.ProcessEnv = {}): { child: ReturnType<typeof startFixture>; done: Promise<Finished> } {
  const child = startFixture('bus', 'script', [body, JSON.stringify(args)], { env: { ...process.env, ...env } })
  return { child, done: finish(child, 30_000) }
}

function lines(out: string): any[] {
  return out.split('\n').filter((l) => l.startsWith('{') || l.startsWith('[') || l.startsWith('"')).map((l) => JSON.parse(l))
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Collects `n` values from a channel's 'message' events. */
function collect<T>(ch: Channel<T>, n: number, timeoutMs = 10_000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = []
    const timer = setTimeout(() => { ch.off('message', on); reject(new Error(`got ${got.length} of ${n} on '${ch.name}': ${JSON.stringify(got.slice(-5))}`)) }, timeoutMs)
    const on = (v: T): void => {
      got.push(v)
      if (got.length === n) { clearTimeout(timer); ch.off('message', on); resolve(got) }
    }
    ch.on('message', on)
  })
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

describe('1. the doorbell of the receiving instance', () => {
  test('a process on the bus twice (signal and pipe) receiving on the pipe instance is woken, never killed by the signal', async () => {
    const name = uniqueName('two-bells')
    const bus = await namedBus(name)
    const { child, done } = script(`
      const a = await Bus.open(args[0])
      const b = await Bus.open(args[0], { doorbell: 'pipe' })
      const got = []
      const all = new Promise((resolve) => b.channel('c').on('message', (v) => { got.push(v); if (got.length === 3) resolve() }))
      setTimeout(() => out('ready'), 100) // the receiver has parked by then
      await all
      await a.close()
      await b.close()
      return got
    `, [name])
    await waitForLine(child, /"ready"/)
    const ch = bus.channel<number>('c')
    for (const i of [1, 2, 3]) {
      expect(ch.trySend(i)).toBe(true)
      await sleep(150) // it parks again between messages: each one needs a ring
    }
    const r = await done
    // Node reports death by a real-time signal as code 0, signal null: the
    // script's own last line is what proves it finished.
    expect(r.signal).toBeNull()
    expect(r.code).toBe(0)
    expect(lines(r.stdout).at(-1)).toEqual({ result: [1, 2, 3] })
  })

  test('a worker thread receiving with the pipe doorbell while its main thread holds a default bus is woken by the worker\'s own FIFO', async () => {
    const name = uniqueName('worker-bell')
    const bus = await namedBus(name)
    const { child, done } = script(`
      const main = await Bus.open(args[0])
      const { Worker } = imports.workerThreads
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads')
        import(workerData.url).then(async ({ Bus }) => {
          const b = await Bus.open(workerData.name, { doorbell: 'pipe' })
          const got = []
          b.channel('w').on('message', (v) => { got.push(v); if (got.length === 3) { parentPort.postMessage(got); b.close() } })
          setTimeout(() => parentPort.postMessage('ready'), 100)
        })\`, { eval: true, workerData: { url: imports.busUrl, name: args[0] } })
      const got = await new Promise((resolve) => w.on('message', (m) => { if (m === 'ready') out(m); else resolve(m) }))
      await w.terminate()
      await main.close()
      return got
    `, [name])
    await waitForLine(child, /"ready"/)
    const ch = bus.channel<number>('w')
    for (const i of [1, 2, 3]) {
      expect(ch.trySend(i)).toBe(true)
      await sleep(150)
    }
    const r = await done
    expect(r.signal).toBeNull()
    expect(lines(r.stdout).at(-1)).toEqual({ result: [1, 2, 3] })
  })

  test('two bus instances in one process cannot both receive on a channel (ChannelBusy), and the second takes over after the first stops', async () => {
    const a = await privateBus()
    const b = trackBus(await Bus.attach(a.address))
    const ca = a.channel<number>('one')
    const cb = b.channel<number>('one')
    const f = (): void => {}
    ca.on('message', f)
    expect(() => cb.on('message', () => {})).toThrow(expect.objectContaining({ code: 'ERR_CHANNEL_BUSY' }))
    expect(cb.listenerCount('message')).toBe(0) // the failed claim added nothing
    ca.off('message', f)
    ca.trySend(7)
    expect(await collect(cb, 1)).toEqual([7])
  })
})

describe('2. stopping listening loses nothing', () => {
  async function sendRange(ch: Channel<number>, from: number, to: number): Promise<void> {
    for (const i of range(from, to)) await ch.send(i)
  }

  test('break out of for await: the next receiver (a later listener here) gets every remaining message in order', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('brk')
    await sendRange(ch, 0, 100)
    const first: number[] = []
    for await (const m of ch) {
      first.push(m)
      if (first.length === 10) break
    }
    expect(first).toEqual(range(0, 10))
    expect(ch.isReceiving).toBe(false) // the claim was given back
    await sendRange(ch, 100, 200)
    expect(await collect(ch, 190)).toEqual(range(10, 200))
  })

  test('break out of for await: another process then receives the rest', async () => {
    const name = uniqueName('brk-proc')
    const bus = await namedBus(name)
    const ch = bus.channel<number>('jobs')
    await sendRange(ch, 0, 100)
    let n = 0
    for await (const _ of ch) if (++n === 10) break
    await sendRange(ch, 100, 200)
    const r = await finish(startFixture('bus', 'script', [`
      const bus = await Bus.open(args[0])
      const got = []
      await new Promise((resolve) => bus.channel('jobs').on('message', (v) => { got.push(v); if (got.length === 190) resolve() }))
      await bus.close()
      return got
    `, JSON.stringify([name])]), 20_000)
    expect(r.stderr).toBe('')
    expect(lines(r.stdout).at(-1).result).toEqual(range(10, 200))
  })

  test('await events.once(ch, "message") takes exactly one message; the rest stay for the next listener', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('once-ev')
    await sendRange(ch, 0, 50)
    const [v] = await once(ch, 'message')
    expect(v).toBe(0)
    await sleep(20)
    expect(ch.isReceiving).toBe(false)
    expect(await collect(ch, 49)).toEqual(range(1, 50))
  })

  test('off() of the last listener from inside a listener stops at that message', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('off')
    await sendRange(ch, 0, 100)
    const got: number[] = []
    const f = (v: number): void => { got.push(v); if (got.length === 5) ch.off('message', f) }
    ch.on('message', f)
    await sleep(50)
    expect(got).toEqual(range(0, 5))
    expect(await collect(ch, 95)).toEqual(range(5, 100))
  })

  test('pause() from a listener stops at that message; resume() goes on in order', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('pz')
    await sendRange(ch, 0, 20)
    const got: number[] = []
    ch.on('message', (v) => { got.push(v); if (v === 4) ch.pause() })
    await sleep(50)
    expect(got).toEqual(range(0, 5))
    ch.resume()
    await sleep(50)
    expect(got).toEqual(range(0, 20))
  })
})

describe('3. EventEmitter semantics', () => {
  test('once() calls its listener once; prependListener runs first; removeAllListeners stops receiving and keeps the channel usable', async () => {
    const bus = await privateBus()
    const ch = bus.channel<number>('ee')
    const order: string[] = []
    const onceGot: number[] = []
    ch.once('message', (v) => { onceGot.push(v); order.push(`once ${v}`) })
    ch.on('message', (v) => order.push(`on ${v}`))
    ch.prependListener('message', (v) => order.push(`first ${v}`))
    for (const i of [1, 2, 3]) ch.trySend(i)
    await sleep(50)
    expect(onceGot).toEqual([1])
    expect(order.slice(0, 3)).toEqual(['first 1', 'once 1', 'on 1'])
    expect(order.filter((o) => o.startsWith('on '))).toEqual(['on 1', 'on 2', 'on 3'])
    ch.removeAllListeners('message')
    expect(ch.isReceiving).toBe(false)
    ch.trySend(4)
    ch.removeAllListeners() // every event, our own hooks included
    expect(await collect(ch, 1)).toEqual([4]) // a listener added afterwards still starts receiving
  })
})

describe('4. dead members are reclaimed', () => {
  // A SIGKILL in the same synchronous burst as trySend may lose that burst
  // (it is published at the burst's end: see README, "What is promised"),
  // so the killed members die one event-loop turn after sending.
  test('members that exit without close() or are SIGKILLed free their slots: a maxMembers 4 bus takes restart after restart; a truly full one is BusFull', async () => {
    const name = uniqueName('restarts')
    const bus = await namedBus(name, { maxMembers: 4 })
    for (let i = 0; i < 6; i++) {
      const r = await finish(startFixture('bus', 'script', [`const b = await Bus.open(args[0]); b.channel('x').trySend(${i}); ${i % 2 === 0 ? 'process.exit(0)' : 'setImmediate(() => process.kill(process.pid, "SIGKILL"))'}`, JSON.stringify([name])]))
      expect(r.stderr).toBe('')
    }
    const got = await collect(bus.channel<number>('x'), 6)
    expect(got.sort()).toEqual(range(0, 6))
    const extra = [await Bus.open(name), await Bus.open(name), await Bus.open(name)].map(trackBus)
    await expect(Bus.open(name)).rejects.toMatchObject({ code: 'ERR_BUS_FULL', name: 'BusFull' })
    await Promise.all(extra.map((b) => b.close()))
  })

  test('a member that calls process.exit(0) is reported as peer-exit with died: false; a killed one with died: true', async () => {
    const name = uniqueName('exits')
    const bus = await namedBus(name)
    const exits: Array<{ pid: number; died: boolean }> = []
    bus.on('peer-exit', (e) => exits.push({ pid: e.pid, died: e.died }))
    const clean = startFixture('bus', 'script', ['await Bus.open(args[0]); out("in"); setTimeout(() => process.exit(0), 400)', JSON.stringify([name])])
    const killed = startFixture('bus', 'script', ['await Bus.open(args[0]); out("in"); setTimeout(() => process.kill(process.pid, "SIGKILL"), 400)', JSON.stringify([name])])
    await Promise.all([finish(clean), finish(killed)])
    await sleep(600) // two sweeps
    expect(exits).toContainEqual({ pid: clean.pid, died: false })
    expect(exits).toContainEqual({ pid: killed.pid, died: true })
  })
})

describe('a receiver killed mid-batch', () => {
  test('the next receiver gets exactly what the dead one had not taken: nothing it delivered comes again', async () => {
    const name = uniqueName('mid-batch')
    const bus = await namedBus(name)
    const ch = bus.channel<number>('jobs')
    await ch.sendMany(range(0, 50)) // one batch waiting for the first receiver
    const r = await finish(startFixture('bus', 'script', [`
      const bus = await Bus.open(args[0])
      bus.channel('jobs').on('message', (v) => {
        out({ got: v })
        if (v === 2) process.kill(process.pid, 'SIGKILL') // in the listener, mid-batch
      })
    `, JSON.stringify([name])]))
    expect(r.signal).toBe('SIGKILL')
    expect(lines(r.stdout).filter((l) => 'got' in l).map((l) => l.got)).toEqual([0, 1, 2])
    // 2 was taken off the ring before its listener ran, and went with the process.
    expect(await collect(ch, 47)).toEqual(range(3, 50))
  })
})

describe('6. accepted messages outlive their writers', () => {
  test('a client trySends on a named bus and closes before anyone receives: the server, listening later, gets the message', async () => {
    const name = uniqueName('outlive')
    const bus = await namedBus(name)
    const r = await finish(startFixture('bus', 'script', ['const b = await Bus.open(args[0]); const ok = b.channel("jobs0").trySend(42); await b.close(); return ok', JSON.stringify([name])]))
    expect(lines(r.stdout).at(-1).result).toBe(true)
    await sleep(50)
    expect(bus.channelNames()).toContain('jobs0')
    expect(await collect(bus.channel<number>('jobs0'), 1)).toEqual([42])
  })

  test('the last member\'s close removes the named bus and its channel segments', async () => {
    const name = uniqueName('last')
    const before = countSegments()
    const bus = trackBus(await Bus.create(name))
    bus.channel('a').trySend(1)
    bus.channel('b').trySend(2)
    expect(countSegments()).toBe(before + 3) // the directory and two channels, which outlive their writers
    await bus.close()
    expect(() => shmget(busKey(name), 0, 0)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(countSegments()).toBe(before)
  })
})

describe('7. a failed claim is rolled back', () => {
  test('on("message") with a pipe doorbell in a missing runtimeDir throws and leaves the channel free for another receiver', async () => {
    const a = await privateBus({ doorbell: 'pipe', runtimeDir: '/nonexistent/ipc-bus' })
    const b = trackBus(await Bus.attach(a.address, { runtimeDir: '/tmp' }))
    const ch = a.channel<number>('rb')
    expect(() => ch.on('message', () => {})).toThrow(expect.objectContaining({ code: 'ENOENT' }))
    expect(ch.isReceiving).toBe(false)
    expect(ch.receiverPid).toBeNull() // no claim left behind for other processes to trip on
    ch.trySend(5)
    expect(await collect(b.channel<number>('rb'), 1)).toEqual([5])
  })

  test('receiving with the signal doorbell in a worker thread fails at on() with NotMainThread, naming the pipe doorbell', async () => {
    const r = await finish(startFixture('bus', 'script', [`
      const { Worker } = imports.workerThreads
      const w = new Worker(\`
        const { parentPort, workerData } = require('node:worker_threads')
        import(workerData.url).then(async ({ Bus }) => {
          const b = await Bus.create()
          try { b.channel('c').on('message', () => {}); parentPort.postMessage('no error') }
          catch (e) { parentPort.postMessage({ code: e.code, message: e.message, receiving: b.channel('c').isReceiving, receiverPid: b.channel('c').receiverPid }) }
          await b.close()
        })\`, { eval: true, workerData: { url: imports.busUrl } })
      const [m] = await imports.events.once(w, 'message')
      await w.terminate()
      return m
    `]))
    const res = lines(r.stdout).at(-1).result
    expect(res.code).toBe('ERR_NOT_MAIN_THREAD')
    expect(res.message).toContain("doorbell: 'pipe'")
    expect(res.receiving).toBe(false)
    expect(res.receiverPid).toBeNull()
  })
})

describe('8. a worker-thread sender waits for room and settles', () => {
  test('send() on a full lane from a worker with the default doorbell resolves once the receiver drains', async () => {
    const bus = await privateBus({ ringBytes: 4096, maxMessageBytes: 256 })
    const ch = bus.channel<number>('wq')
    const w = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads')
      import(workerData.url).then(async ({ Bus }) => {
        const b = await Bus.attach(workerData.address)
        const c = b.channel('wq')
        let n = 0
        while (c.trySend(n)) n++
        parentPort.postMessage({ full: n })
        await c.send(n) // blocks: the lane is full
        parentPort.postMessage({ sent: n + 1 })
        await b.close()
      }).catch((e) => parentPort.postMessage({ error: String(e) }))`, { eval: true, workerData: { url: import.meta.resolve('@ipc/bus'), address: bus.address } })
    try {
      const [full] = await once(w, 'message') as [{ full: number }]
      expect(full.full).toBeGreaterThan(10)
      const got = collect(ch, full.full + 1)
      const [sent] = await once(w, 'message') as [{ sent: number }]
      expect(sent).toEqual({ sent: full.full + 1 })
      expect(await got).toEqual(range(0, full.full + 1))
    } finally {
      await w.terminate()
    }
  })
})

describe('9/10. channel slots are reclaimed; a failed channel() leaves nothing', () => {
  test('clients that each used channels and closed free the slots for new channels; a table of live channels is TooManyChannels, and failing creates no segment', async () => {
    const name = uniqueName('slots')
    const bus = await namedBus(name, { maxChannels: 8, ringBytes: 4096 })
    for (let c = 0; c < 3; c++) {
      const r = await finish(startFixture('bus', 'script', [`const b = await Bus.open(args[0]); for (let i = 0; i < 3; i++) { const ch = b.channel('c${c}-' + i); ch.on('message', () => {}); } await b.close()`, JSON.stringify([name])]))
      expect(r.stderr).toBe('')
    }
    for (let i = 0; i < 8; i++) bus.channel(`fresh${i}`) // every slot is ours now
    const before = countSegments()
    for (let i = 0; i < 50; i++) expect(() => bus.channel(`more${i}`)).toThrow(expect.objectContaining({ code: 'ERR_TOO_MANY_CHANNELS' }))
    expect(countSegments()).toBe(before)
  })
})

describe('11. a terminated worker thread does not keep a named bus alive', () => {
  test('Bus.open in a worker, worker.terminate(), then the main thread\'s close() removes the bus', async () => {
    const name = uniqueName('wt-term')
    const bus = trackBus(await Bus.create(name))
    const w = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads')
      import(workerData.url).then(async ({ Bus }) => {
        const b = await Bus.open(workerData.name, { doorbell: 'pipe' })
        b.channel('wt').on('message', () => {})
        parentPort.postMessage('in')
        setInterval(() => {}, 1000)
      })`, { eval: true, workerData: { url: import.meta.resolve('@ipc/bus'), name } })
    await once(w, 'message')
    expect(bus.stats().members.length).toBe(2)
    await w.terminate()
    expect(bus.stats().members.length).toBe(1)
    expect(bus.channel('wt').receiverPid).toBeNull() // its receiver claim went with it
    await bus.close()
    expect(() => shmget(busKey(name), 0, 0)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
  })
})

describe('12. errors have codes and options are checked on every call', () => {
  test('a stale address is NoSuchBus; "null" is NotABus; send options are checked with room in the lane; highWaterMark holds', async () => {
    const a = await Bus.create()
    const address = a.address
    await a.close()
    await expect(Bus.attach(address)).rejects.toMatchObject({ code: 'ERR_NO_SUCH_BUS' })
    await expect(Bus.attach('null')).rejects.toMatchObject({ code: 'ERR_NOT_A_BUS' })
    const bus = await privateBus()
    const ch = bus.channel<number>('opts', { highWaterMark: 100 })
    await expect(ch.send(1, { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' })
    await expect(ch.send(1, { timout: 5 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('timeout') })
    expect(() => bus.channel('opts', { highWatermark: 5 } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }))
    // An iterator beside a listener keeps copies of what the listener got, up to highWaterMark, then holds the ring.
    for (let i = 0; i < 500; i++) ch.trySend(i)
    const heard: number[] = []
    const it = ch[Symbol.asyncIterator]()
    ch.on('message', (v) => heard.push(v))
    await sleep(100)
    expect(heard.length).toBe(100)
    for (let i = 0; i < 50; i++) expect((await it.next()).value).toBe(i)
    await sleep(50)
    expect(heard.length).toBe(150)
    await it.return!()
    await sleep(50)
    expect(heard.length).toBe(500)
  })
})

describe('Bus.create takes an AbortSignal where it waits', () => {
  test('aborted before: rejects at once; aborted while a bus of that name is being built: rejects with an AbortError', async () => {
    const name = uniqueName('abort')
    await expect(Bus.create(name, { signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow('stop')
    // A zero-filled segment at the name's key whose creator (we) lives looks like a bus being built.
    const id = shmget(busKey(name), 4096, IPC_CREAT | 0o600)
    try {
      const started = performance.now()
      await expect(Bus.create(name, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'AbortError' })
      expect(performance.now() - started).toBeLessThan(1500) // not the 2 s the wait would take
    } finally {
      shmctl(id, 'IPC_RMID')
    }
  })
})

/** Segments this test process created that still exist. */
function countSegments(): number {
  return listOwn().length
}

function listOwn(): string[] {
  return readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1).filter((l) => l.trim().split(/\s+/)[4] === String(process.pid))
}
