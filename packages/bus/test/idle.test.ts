/**
 * The receiver's idle strategy (packages/bus/src/channel/idle.ts) on its
 * own: the backstop's schedule and rescue, the hot-run budget of a spinning
 * receiver, and the spin's deadline.
 */
import { afterEach, describe, expect, test, vi } from 'vitest'
import { readFileSync } from 'node:fs'
import { PerformanceObserver } from 'node:perf_hooks'
import { SAMPLE_MS, cpuToSpare, runnableFrom, spareWith } from '../dist/channel/cpus.js'
import { clockMs } from '../dist/channel/clock.js'
import { ADAPTIVE_SPIN_MICROS, ADAPTIVE_WINDOW_MS, Backstop, Continuation, EMPTY_TURNS, HOT_RUNS, IdleStrategy, LONE_GAP_MS, PARKED_CHECK_MAX_MS, PARKED_CHECK_MS, WATCHED_CHECK_MS, spinFor } from '../dist/channel/idle.js'

afterEach(() => { vi.useRealTimers() })

describe('Backstop', () => {
  test('looks 250 ms after parking, then every 2 s, and rescues once data is there', () => {
    vi.useFakeTimers()
    let data = false
    let rescues = 0
    const b = new Backstop({ hasData: () => data }, () => { rescues++ })
    b.arm()
    expect(b.interval).toBe(PARKED_CHECK_MS)
    const seen: number[] = []
    for (let i = 0; i < 6; i++) {
      vi.advanceTimersByTime(b.interval)
      seen.push(b.interval)
    }
    expect(seen).toEqual([2000, 2000, 2000, 2000, 2000, 2000])
    expect(PARKED_CHECK_MAX_MS).toBe(2000)
    expect(rescues).toBe(0)
    data = true
    vi.advanceTimersByTime(PARKED_CHECK_MAX_MS)
    expect(rescues).toBe(1)
    expect(b.interval).toBe(0) // a rescue ends the watch until the next park
  })

  test('with every lane owner watched for its exit, looks every 30 s only; unwatched again, at 250 ms', () => {
    vi.useFakeTimers()
    let data = false
    let rescues = 0
    const b = new Backstop({ hasData: () => data }, () => { rescues++ })
    b.arm(true)
    expect(b.interval).toBe(WATCHED_CHECK_MS)
    expect(WATCHED_CHECK_MS).toBe(30_000)
    vi.advanceTimersByTime(WATCHED_CHECK_MS)
    expect(b.interval).toBe(WATCHED_CHECK_MS)
    b.arm(false) // an owner that cannot be watched joined
    expect(b.interval).toBe(PARKED_CHECK_MS)
    vi.advanceTimersByTime(PARKED_CHECK_MS)
    expect(b.interval).toBe(PARKED_CHECK_MAX_MS)
    b.arm(true)
    data = true
    vi.advanceTimersByTime(WATCHED_CHECK_MS - 1)
    expect(rescues).toBe(0)
    vi.advanceTimersByTime(1)
    expect(rescues).toBe(1)
  })

  test('parking again restarts at 250 ms; disarm stops it', () => {
    vi.useFakeTimers()
    let rescues = 0
    const b = new Backstop({ hasData: () => true }, () => { rescues++ })
    b.arm()
    vi.advanceTimersByTime(200)
    b.arm() // parked again: the first look is 250 ms after this park
    vi.advanceTimersByTime(200)
    expect(rescues).toBe(0)
    vi.advanceTimersByTime(50)
    expect(rescues).toBe(1)
    b.arm()
    b.disarm()
    vi.advanceTimersByTime(5000)
    expect(rescues).toBe(1)
  })
})

describe('Continuation', () => {
  test('a receiver that does not spin always yields the event-loop turn', async () => {
    const c = new Continuation(0)
    let ran = false
    c.next(1, () => { ran = true })
    await Promise.resolve()
    expect(ran).toBe(false) // not a microtask
    await new Promise((r) => setImmediate(r))
    expect(ran).toBe(true)
  })

  test('a spinning receiver continues as microtasks for at most HOT_RUNS runs, then one full turn', async () => {
    const c = new Continuation(10)
    let microtasks = 0
    for (let i = 0; i < HOT_RUNS; i++) {
      let ran = false
      c.next(1, () => { ran = true })
      await Promise.resolve()
      if (ran) microtasks++
    }
    expect(microtasks).toBe(HOT_RUNS - 1)
  })
})

describe('spinFor', () => {
  test('returns true as soon as data shows, false after the deadline, and at once for 0 µs', () => {
    let polls = 0
    expect(spinFor({ hasData: () => ++polls > 100 }, 1_000_000)).toBe(true)
    expect(polls).toBe(101)
    const t0 = performance.now()
    expect(spinFor({ hasData: () => false }, 2000)).toBe(false)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2)
    polls = 0
    expect(spinFor({ hasData: () => { polls++; return true } }, 0)).toBe(false)
    expect(polls).toBe(0)
  })

  test('allocates nothing while it polls: a second of spinning sets off no collection', async () => {
    // With performance.now() as its clock (Node 20 boxes each reading) a
    // second of spinning made ~57 MB of garbage: several scavenges. Only
    // collections that start inside the spin count: the test runner's own
    // work in this thread may collect around it (CI saw two, after the spin).
    const never = { hasData: () => false }
    spinFor(never, 50_000) // optimized before the measured spin
    await new Promise((resolve) => setTimeout(resolve, 20))
    const collections: { name: string, startTime: number }[] = []
    const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) collections.push({ name: e.name, startTime: e.startTime }) })
    observer.observe({ entryTypes: ['gc'] })
    let t0 = 0
    let t1 = 0
    try {
      t0 = performance.now()
      expect(spinFor(never, 1_000_000)).toBe(false)
      t1 = performance.now()
      await new Promise((resolve) => setTimeout(resolve, 50)) // gc entries arrive asynchronously
    } finally {
      observer.disconnect()
    }
    expect(t1 - t0).toBeGreaterThanOrEqual(1000)
    expect(collections.filter((c) => c.startTime >= t0 && c.startTime <= t1)).toEqual([])
  })
})

describe('IdleStrategy', () => {
  test('a fixed spinMicros spins every time; 0 never spins', () => {
    let polls = 0
    const source = { hasData: () => { polls++; return false } }
    expect(new IdleStrategy(0).spin(source)).toBe(false)
    expect(polls).toBe(0)
    const fixed = new IdleStrategy(200)
    for (let i = 0; i < 3; i++) {
      const before = polls
      expect(fixed.spin(source)).toBe(false)
      expect(polls).toBeGreaterThan(before)
    }
    expect(fixed.fixedMicros).toBe(200)
  })

  test("'adaptive' spins only right after data, up to ADAPTIVE_SPIN_MICROS, and not again after a miss until data comes", async () => {
    let polls = 0
    let data = false
    const source = { hasData: () => { polls++; return data } }
    const idle = new IdleStrategy('adaptive', () => true) // a CPU to spare (the suite's load must not decide this test)
    expect(idle.fixedMicros).toBe(0) // continues on the next turn, never hot
    expect(idle.spin(source)).toBe(false) // no data seen yet: park at once
    expect(polls).toBe(0)
    idle.sawData()
    const start = performance.now()
    expect(idle.spin(source)).toBe(false) // a miss: spun up to the budget
    expect(polls).toBeGreaterThan(0)
    expect(performance.now() - start).toBeGreaterThanOrEqual(ADAPTIVE_SPIN_MICROS / 1000)
    const after = polls
    expect(idle.spin(source)).toBe(false) // after a miss: park at once
    expect(polls).toBe(after)
    idle.sawData()
    data = true
    expect(idle.spin(source)).toBe(true) // data during the spin
    data = false
    idle.sawData()
    await new Promise((r) => setTimeout(r, ADAPTIVE_WINDOW_MS + 5))
    const stale = polls
    expect(idle.spin(source)).toBe(false) // the last data is too old: park at once
    expect(polls).toBe(stale)
  })

  test("'adaptive' parks at once while no CPU is spare, and spins again once one is", () => {
    let polls = 0
    let spare = false
    const source = { hasData: () => { polls++; return true } }
    const idle = new IdleStrategy('adaptive', () => spare)
    idle.sawData()
    expect(idle.spin(source)).toBe(false) // oversubscribed: no spin, even with data waiting (the park looks again)
    expect(polls).toBe(0)
    spare = true
    expect(idle.spin(source)).toBe(true) // still in the window: the skipped spin did not count as a miss
    expect(polls).toBe(1)
    let asked = 0
    const fixed = new IdleStrategy(50, () => { asked++; return false })
    expect(fixed.spin(source)).toBe(true) // a fixed spinMicros is the user's choice: not second-guessed
    expect(asked).toBe(0)
  })
})

describe('IdleStrategy.parkAfter', () => {
  test('parks at once after a lone message (a quiet gap before it), keeps the next turn inside a stream, and only with spinMicros 0', () => {
    const idle = new IdleStrategy(0)
    expect(idle.parkAfter(1, 1000)).toBe(true) // the first data ever: lone
    expect(idle.parkAfter(1, 1000 + LONE_GAP_MS / 2)).toBe(false) // close behind: a stream, look again next turn
    expect(idle.parkAfter(3, 1000 + LONE_GAP_MS)).toBe(false) // still close behind the last run
    expect(idle.parkAfter(1, 1000 + 4 * LONE_GAP_MS)).toBe(true) // a quiet gap again: lone
    expect(idle.parkAfter(0, 1000 + 10 * LONE_GAP_MS)).toBe(false) // nothing delivered: the spin/park path decides
    const spinning = new IdleStrategy(50)
    expect(spinning.parkAfter(1, 1000)).toBe(false) // a spinning receiver continues hot
    const adaptive = new IdleStrategy('adaptive', () => true)
    expect(adaptive.parkAfter(1, 1000)).toBe(false) // 'adaptive' spins after data instead
  })

  test("'adaptive' with no CPU to spare parks as spinMicros 0 does (its next turn would not spin), and takes the turn again once a CPU is spare", () => {
    let spare = false
    const idle = new IdleStrategy('adaptive', () => spare)
    expect(idle.parkAfter(1, 1000)).toBe(true) // lone, and no spin would follow: park now
    expect(idle.parkAfter(1, 1000 + LONE_GAP_MS / 2)).toBe(false) // a stream keeps its turn, as with 0
    spare = true
    expect(idle.parkAfter(1, 1000 + 4 * LONE_GAP_MS)).toBe(false) // lone, but a CPU is spare: the next turn spins
    spare = false
    expect(idle.parkAfter(1, 1000 + 8 * LONE_GAP_MS)).toBe(true)
  })

  test("afterDelivery is sawData and parkAfter on one clock reading, the one 'adaptive' asks about a spare CPU", () => {
    const readings: number[] = []
    const before = clockMs()
    const idle = new IdleStrategy('adaptive', (now) => { readings.push(now); return false })
    expect(idle.afterDelivery(1)).toBe(true) // lone, and no CPU to spare: parks as spinMicros 0 does
    expect(readings).toHaveLength(1) // one reading, handed over: no clock read of the sampler's own
    expect(readings[0]!).toBeGreaterThanOrEqual(before) // the strategy's clock (clockMs), read after `before`
    let asked = 0
    const zero = new IdleStrategy(0, () => { asked++; return true })
    expect(zero.afterDelivery(1)).toBe(true)
    expect(asked).toBe(0) // spinMicros 0 never asks
  })

  test('back-to-back single messages whose next turns find nothing (request/reply) park at once; a turn that finds one, or a batch, is a stream again', () => {
    const idle = new IdleStrategy(0)
    let t = 1000
    const step = LONE_GAP_MS / 10 // close together: never lone
    idle.ran(1)
    expect(idle.parkAfter(1, t)).toBe(true) // lone (first ever)
    // Each message alone, each turn after it empty:
    for (let k = 0; k < EMPTY_TURNS; k++) {
      idle.ran(1)
      expect(idle.parkAfter(1, (t += step))).toBe(false) // takes the turn...
      idle.ran(0) // ...which finds nothing
    }
    idle.ran(1)
    expect(idle.parkAfter(1, (t += step))).toBe(true) // now single messages park at once
    idle.ran(1)
    expect(idle.parkAfter(1, (t += step))).toBe(true)
    // A run of several records is a stream: the turn is taken again, and it found something.
    idle.ran(4)
    expect(idle.parkAfter(4, (t += step))).toBe(false)
    idle.ran(2)
    expect(idle.parkAfter(1, (t += step))).toBe(false) // the empty count was reset
    idle.ran(0)
    // One empty turn is not enough to park at once.
    idle.ran(1)
    expect(idle.parkAfter(1, (t += step))).toBe(EMPTY_TURNS <= 1)
    // A turn that finds a record resets the count.
    const b = new IdleStrategy(0)
    b.parkAfter(1, 0)
    for (let k = 0; k < 10; k++) {
      b.ran(1)
      expect(b.parkAfter(1, 0.01 * (k + 1))).toBe(false)
      b.ran(1) // the turn found one: a stream
    }
  })
})

describe('cpuToSpare', () => {
  test('reads the runnable count of /proc/loadavg', () => {
    expect(runnableFrom('0.52 0.58 0.59 3/215 12345\n')).toBe(3)
    expect(runnableFrom('1.00 2.00 3.00 12/1024 1\n')).toBe(12)
    expect(runnableFrom('garbage')).toBeNull()
    expect(runnableFrom('')).toBeNull()
  })

  test('a CPU is spare while runnable threads are at most the CPUs; the reading is cached SAMPLE_MS', () => {
    expect(spareWith(2, 2)).toBe(true) // the spinner and the one it waits on, each on a CPU
    expect(spareWith(3, 2)).toBe(false) // someone waits for a CPU
    expect(spareWith(null, 2)).toBe(true) // unknown: spin as configured
    expect(runnableFrom(readFileSync('/proc/loadavg', 'latin1'))).toBeGreaterThanOrEqual(1) // this test's own thread
    const t = 1e9 // far from any earlier reading
    const first = cpuToSpare(t)
    expect(typeof first).toBe('boolean')
    expect(cpuToSpare(t + SAMPLE_MS / 2)).toBe(first) // the cached reading
  })
})
