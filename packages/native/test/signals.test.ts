import { once } from 'node:events'
import { readdirSync, readFileSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { describe, expect, test } from 'vitest'
import {
  block, getpgid, gettid, kill, killpg, onSignal, setpgid, sigpending, signalName, signalNumber,
  signalOverflowCount, sigprocmask, sigqueue, SIGRTMAX, SIGRTMIN, tgkill, tgsigqueue, unblock, type SignalInfo,
} from '@ipc/native'
import { runFixture, startFixture, finish } from '../../../test/support/children.js'

/** Collects deliveries of sig until `count` arrived (or rejects after timeoutMs). */
function collect(sig: Parameters<typeof onSignal>[0], count: number, timeoutMs = 10_000) {
  const got: SignalInfo[] = []
  let done!: () => void
  let fail!: (e: Error) => void
  const finished = new Promise<void>((resolve, reject) => { done = resolve; fail = reject })
  const off = onSignal(sig, (info) => {
    got.push(info)
    if (got.length === count) done()
  })
  const timer = setTimeout(() => fail(new Error(`only ${got.length} of ${count} signals arrived`)), timeoutMs)
  return {
    got,
    finished: finished.finally(() => clearTimeout(timer)),
    off: () => { clearTimeout(timer); off() },
  }
}

const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms))

describe('signal names', () => {
  test('names and numbers map both ways; SIGRTMIN/SIGRTMAX come from the C library', () => {
    expect(SIGRTMIN).toBeGreaterThanOrEqual(32)
    expect(SIGRTMAX).toBe(64)
    expect(signalNumber('SIGUSR2')).toBe(12)
    expect(signalNumber('SIGRTMIN+3')).toBe(SIGRTMIN + 3)
    expect(signalNumber('SIGRTMAX-1')).toBe(SIGRTMAX - 1)
    expect(signalName(SIGRTMIN + 3)).toBe('SIGRTMIN+3')
    expect(signalName(2)).toBe('SIGINT')
    expect(() => signalNumber('SIGNOPE' as never)).toThrow(TypeError)
    expect(() => signalNumber('SIGRTMIN+99' as never)).toThrow(RangeError)
    expect(() => signalNumber(65)).toThrow(RangeError)
  })
})

describe('catching signals', () => {
  test('sigqueue from a child reaches the handler with the child pid, uid and value', async () => {
    const c = collect('SIGRTMIN+2', 1)
    try {
      const child = startFixture('native', 'signal-sender', ['sigqueue', String(process.pid), 'SIGRTMIN+2', '1'])
      const out = await finish(child)
      await c.finished
      expect(out.stdout).toContain('"sent":1')
      expect(c.got[0]).toMatchObject({
        signo: SIGRTMIN + 2, signal: 'SIGRTMIN+2', pid: child.pid, uid: process.getuid!(), value: 0, codeName: 'SI_QUEUE',
      })
    } finally {
      c.off()
    }
  })

  test('1,000 real-time signals aimed at the main thread arrive 1,000 times, in order, with their values', async () => {
    const c = collect('SIGRTMIN+3', 1000)
    try {
      await runFixture('native', 'signal-sender', ['tgsigqueue', String(process.pid), 'SIGRTMIN+3', '1000'])
      await c.finished
      expect(c.got.map((i) => i.value)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
      expect(new Set(c.got.map((i) => i.tid))).toEqual(new Set([process.pid])) // all handled on the main thread
    } finally {
      c.off()
    }
  })

  test('1,000 process-directed real-time signals all arrive (order across threads is not promised)', async () => {
    const c = collect('SIGRTMIN+4', 1000)
    try {
      await runFixture('native', 'signal-sender', ['sigqueue', String(process.pid), 'SIGRTMIN+4', '1000'])
      await c.finished
      expect(c.got.map((i) => i.value).sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    } finally {
      c.off()
    }
  })

  test('a standard signal sent 1,000 times at the blocked main thread is pending, then delivered once (they coalesce)', async () => {
    const c = collect('SIGUSR2', 1)
    try {
      block(['SIGUSR2'])
      for (let i = 0; i < 1000; i++) tgkill(process.pid, process.pid, 'SIGUSR2')
      expect(sigpending()).toContain('SIGUSR2')
      await settle()
      expect(c.got.length).toBe(0)
      unblock(['SIGUSR2'])
      await c.finished
      await settle(100)
      expect(c.got.length).toBe(1)
      expect(c.got[0]).toMatchObject({ codeName: 'SI_TKILL', tid: process.pid, pid: process.pid })
      expect(sigpending()).not.toContain('SIGUSR2')
    } finally {
      unblock(['SIGUSR2'])
      c.off()
    }
  })

  test('a real-time signal sent 1,000 times at the blocked main thread is delivered 1,000 times (they queue)', async () => {
    const c = collect('SIGRTMIN+5', 1000)
    try {
      block(['SIGRTMIN+5'])
      for (let i = 0; i < 1000; i++) tgsigqueue(process.pid, process.pid, 'SIGRTMIN+5', i)
      expect(sigpending()).toContain('SIGRTMIN+5')
      unblock(['SIGRTMIN+5'])
      await c.finished
      await settle(100)
      expect(c.got.map((i) => i.value)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    } finally {
      unblock(['SIGRTMIN+5'])
      c.off()
    }
  })

  test('a storm of 100,000 signals neither crashes nor leaks, and handlers still work after it', async () => {
    let usr2 = 0
    let rt = 0
    const offUsr2 = onSignal('SIGUSR2', () => { usr2++ })
    const offRt = onSignal('SIGRTMIN+6', () => { rt++ })
    try {
      const fdsBefore = readdirSync('/proc/self/fd').length
      const overflowBefore = signalOverflowCount()
      const rssBefore = process.memoryUsage().rss
      const out = await runFixture('native', 'signal-sender', ['storm', String(process.pid), 'SIGRTMIN+6', '100000'], {}, { timeoutMs: 60_000 })
      expect(out.code).toBe(0)
      const { sent, eagain } = JSON.parse(out.stdout) as { sent: number; eagain: number }
      expect(sent + eagain).toBe(100_000)
      await settle(300)
      const overflow = signalOverflowCount() - overflowBefore
      // Real-time signals queue, so each one that was sent was either delivered
      // to JS or counted as an overflow of the self-pipe: none vanish silently.
      expect(rt + overflow).toBeGreaterThanOrEqual(sent - 50_000)
      expect(rt).toBeLessThanOrEqual(50_000)
      expect(usr2).toBeGreaterThan(0)
      expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore)
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 1024 * 1024)
      // still alive and still catching
      const c = collect('SIGRTMIN+7', 1)
      tgsigqueue(process.pid, process.pid, 'SIGRTMIN+7', 42)
      await c.finished
      c.off()
      expect(c.got[0]?.value).toBe(42)
    } finally {
      offUsr2()
      offRt()
    }
  })

  test("tgsigqueue's uid argument is what the receiver reads as si_uid (a claim, passed on unchecked); without it, getuid()", async () => {
    const c = collect('SIGRTMIN+7', 3)
    try {
      tgsigqueue(process.pid, process.pid, 'SIGRTMIN+7', 1)
      tgsigqueue(process.pid, process.pid, 'SIGRTMIN+7', 2, 4242)
      tgsigqueue(process.pid, process.pid, 'SIGRTMIN+7', 3, 0xffff_fffe)
      await c.finished
    } finally {
      c.off()
    }
    expect(c.got.map((i) => [i.value, i.uid])).toEqual([[1, process.getuid!()], [2, 4242], [3, 0xffff_fffe]])
    for (const bad of [-1, 0xffff_ffff, 1.5, Number.NaN]) {
      expect(() => tgsigqueue(process.pid, process.pid, 'SIGRTMIN+7', 0, bad)).toThrow(/^uid must be/)
    }
  })

  test('a handler that throws is reported, and later signals are still delivered to every handler', async () => {
    const errors: unknown[] = []
    const seen: number[] = []
    const offBad = onSignal('SIGRTMIN+8', () => { throw new Error('boom') }, { onError: (e) => errors.push(e) })
    const c = collect('SIGRTMIN+8', 3)
    try {
      for (const v of [1, 2, 3]) tgsigqueue(process.pid, process.pid, 'SIGRTMIN+8', v)
      await c.finished
      seen.push(...c.got.map((i) => i.value))
      expect(seen).toEqual([1, 2, 3])
      expect(errors).toHaveLength(3)
      expect((errors[0] as Error).message).toBe('boom')
    } finally {
      offBad()
      c.off()
    }
  })

  test('without onError a throwing handler becomes a process warning, not a crash', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    const off = onSignal('SIGRTMIN+9', () => { throw new Error('kaboom') })
    try {
      tgsigqueue(process.pid, process.pid, 'SIGRTMIN+9', 0)
      for (let i = 0; i < 50 && warnings.length === 0; i++) await settle(20)
      expect(warnings.some((w) => /SIGRTMIN\+9 handler threw.*kaboom/s.test(w.message))).toBe(true)
    } finally {
      off()
      process.off('warning', onWarning)
    }
  })

  test('removing the last handler restores the previous disposition (here: Node’s own listener)', async () => {
    let nodeSaw = 0
    const nodeListener = () => { nodeSaw++ }
    process.on('SIGUSR2', nodeListener)
    try {
      const c = collect('SIGUSR2', 1)
      kill(process.pid, 'SIGUSR2')
      await c.finished
      await settle()
      expect(nodeSaw).toBe(0) // we took it over
      c.off()
      kill(process.pid, 'SIGUSR2')
      for (let i = 0; i < 50 && nodeSaw === 0; i++) await settle(20)
      expect(nodeSaw).toBe(1)
    } finally {
      process.off('SIGUSR2', nodeListener)
    }
  })

  test('refuses signals that cannot or must not be caught, each with a code', () => {
    for (const sig of ['SIGKILL', 'SIGSTOP', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGUSR1'] as const) {
      expect(() => onSignal(sig, () => {}), sig).toThrow(expect.objectContaining({ code: 'ERR_SIGNAL_NOT_ALLOWED', name: 'SignalNotAllowed' }))
    }
    const off = onSignal('SIGUSR1', () => {}, { force: true })
    off()
    expect(() => onSignal('SIGUSR2', 'nope' as never)).toThrow(TypeError)
    expect(() => onSignal(0, () => {})).toThrow(RangeError)
  })

  test('onSignal in a worker thread throws NotMainThread', async () => {
    const url = new URL('../dist/index.js', import.meta.url).href
    const worker = new Worker(
      `import(${JSON.stringify(url)}).then((n) => { try { n.onSignal('SIGUSR2', () => {}); require('worker_threads').parentPort.postMessage('installed') } catch (e) { require('worker_threads').parentPort.postMessage(e.code) } })`,
      { eval: true },
    )
    const [msg] = await once(worker, 'message')
    await worker.terminate()
    expect(msg).toBe('ERR_NOT_MAIN_THREAD')
  })
})

describe('real-time signals through the signalfd', () => {
  const sigBlk = (): bigint => BigInt('0x' + /SigBlk:\s*(\w+)/.exec(readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8'))![1]!)

  test('a real-time signal aimed at the main thread is read from the signalfd with its value, sender and code; disposing unblocks it', async () => {
    const sig = 'SIGRTMIN+7'
    const bit = 1n << BigInt(signalNumber(sig) - 1)
    const got: SignalInfo[] = []
    const off = onSignal(sig, (info) => got.push(info))
    try {
      expect(sigBlk() & bit).toBe(bit) // blocked on the main thread: it waits in the signalfd
      for (let v = 1; v <= 50; v++) tgsigqueue(process.pid, process.pid, sig, v)
      sigqueue(process.pid, sig, 51) // process-directed: a thread that does not block it, or the signalfd
      for (let i = 0; i < 100 && got.length < 51; i++) await new Promise((r) => setTimeout(r, 10))
      expect(got.map((g) => g.value).sort((a, b) => a - b)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1))
      expect(got.slice(0, 50).map((g) => g.value)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1)) // queue order
      expect(got[0]).toMatchObject({ signal: sig, pid: process.pid, codeName: 'SI_QUEUE' })
    } finally {
      off()
    }
    expect(sigBlk() & bit).toBe(0n)
  })
})

describe('sending, groups and masks', () => {
  test('kill to a missing pid: ESRCH; to a process we may not signal: EPERM (as uid 65534)', async () => {
    expect(() => kill(0x3ffffff0, 0)).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'kill', errno: -3 }))
    expect(() => sigqueue(0x3ffffff0, 'SIGRTMIN', 1)).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'sigqueue' }))
    expect(() => tgkill(process.pid, 0x3ffffff0, 'SIGUSR2')).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'tgkill' }))
    expect(() => tgsigqueue(process.pid, 0x3ffffff0, 'SIGRTMIN', 1)).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'rt_tgsigqueueinfo' }))
    const r = await runFixture('native', 'probe', ['kill', String(process.pid), '0'], { uid: 65534, gid: 65534 })
    expect(JSON.parse(r.stdout)).toMatchObject({ error: 'EPERM' })
  })

  test('a child in its own process group is reached by killpg; getpgid/setpgid report and move groups', async () => {
    expect(getpgid()).toBe(getpgid(process.pid))
    const child = startFixture('native', 'probe', ['ids'], { detached: true }) // detached: setsid, a new group
    const out = JSON.parse((await finish(child)).stdout) as { ok: { pgid: number; pid: number } }
    expect(out.ok.pgid).toBe(out.ok.pid)

    const moved = JSON.parse((await runFixture('native', 'probe', ['setpgid'])).stdout) as { ok: { pgid: number; pid: number } }
    expect(moved.ok.pgid).toBe(moved.ok.pid) // setpgid(0, 0) in the child: a group of its own

    const sleeper = startFixture('native', 'doorbell-peer', ['idle', `/tmp/ipc-pg-${process.pid}-${Date.now()}`, '20000'], { detached: true })
    await once(sleeper.stdout!, 'data')
    expect(getpgid(sleeper.pid!)).toBe(sleeper.pid)
    // detached means setsid(): it leads a session of its own, and no process
    // may be moved across sessions (or a session leader moved at all).
    expect(() => setpgid(sleeper.pid!, 0)).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'setpgid' }))
    killpg(sleeper.pid!, 'SIGTERM')
    const [, signal] = await once(sleeper, 'exit')
    expect(signal).toBe('SIGTERM')
    expect(() => killpg(0x3ffffff0, 'SIGTERM')).toThrow(expect.objectContaining({ code: 'ESRCH', syscall: 'killpg' }))
    expect(() => setpgid(0x3ffffff0, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
  })

  test('sigprocmask works on the calling thread and returns the previous mask by name', () => {
    expect(gettid()).toBe(process.pid)
    const before = sigprocmask('SIG_BLOCK', ['SIGRTMIN+10', 'SIGUSR2'])
    try {
      const during = sigprocmask('SIG_BLOCK', [])
      expect(during).toEqual(expect.arrayContaining(['SIGUSR2', 'SIGRTMIN+10']))
      expect(before).not.toContain('SIGRTMIN+10')
    } finally {
      sigprocmask('SIG_SETMASK', before as never)
    }
    expect(sigprocmask('SIG_BLOCK', [])).not.toContain('SIGRTMIN+10')
    expect(() => sigprocmask('SIG_NOPE' as never, [])).toThrow(RangeError)
    expect(() => sigprocmask('SIG_BLOCK', [0])).toThrow(RangeError)
    expect(() => sigprocmask('SIG_BLOCK', 'SIGUSR2' as never)).toThrow(TypeError)
  })

  test('bad arguments throw TypeError or RangeError before any system call', () => {
    expect(() => kill(1.5, 'SIGTERM')).toThrow(TypeError)
    expect(() => kill(1, 'SIGFOO' as never)).toThrow(TypeError)
    expect(() => sigqueue(1, 'SIGRTMIN', 2 ** 31)).toThrow(RangeError)
    expect(() => tgkill(0, 1, 'SIGTERM')).toThrow(RangeError)
    expect(() => killpg(-1, 'SIGTERM')).toThrow(RangeError)
  })
})
