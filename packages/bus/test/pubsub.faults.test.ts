/**
 * Crash containment for pub/sub (issue 13, "Tests"): publishers and
 * subscribers SIGKILLed at random moments, the others go on.
 *
 * Each fast-check run is one topic (rings of 4-16 KiB; maxSenders 3: this
 * process's lane, the survivor's and one victim's; maxSubscribers 2: this
 * process's and one victim's; so every newcomer must take over a dead
 * process's lane or slot) with:
 *   - this process: a 'block' subscriber that checks every message (intact,
 *     and per publisher #0, #1, ... without a gap);
 *   - a survivor: a long-lived agent publishing all along;
 *   - victims (fixtures/topic-victim.ts, booted ahead of need): one
 *     publisher and one 'block' subscriber at a time, that subscriber
 *     sometimes stalling for good after a few messages (so publishers wait
 *     on it). Each round starts whichever victim is missing, waits a random
 *     moment and SIGKILLs the publisher, the subscriber or both.
 *
 * Checked: this process's subscriber gets every message of the survivor, in
 * order; of each killed publisher a gap-free prefix with at least what it
 * knew was published (DONE) and at most what it had started (STARTED);
 * every new publisher takes the dead one's lane and is received in order
 * from its #0; a live victim subscriber sees no wrong message; the survivor,
 * blocked on a stalled subscriber when it is killed, publishes again within
 * 1.5 s (its liveness check every ~200 ms frees the dead slot).
 *
 * The one wakeup the parking protocol cannot deliver (core ring/park.ts) is
 * a publisher killed between winning the CAS PARKED -> AWAKE of a parked
 * subscriber's word and ringing its doorbell: the bus's answer is the parked
 * subscriber's watch on the publishers' exits (src/owner-watch.ts; proven
 * alone in exit-rescue.test.ts); the backstop timer stays off here
 * (IPC_BUS_BACKSTOP=off) so that every other lost wakeup stalls. A watchdog
 * (Rescuer) still looks for this process's subscriber stranded (it should
 * find none now; a count above zero printed below says the exit
 * notification came later than 200 ms after the kill): when it has records
 * waiting, delivered nothing for 200 ms and its parked word says AWAKE (so no
 * publisher will ring it), it is stranded; that must follow the SIGKILL of
 * a publisher (else: a lost wakeup, a failure), and the watchdog sets the
 * word back to PARKED and publishes once from this process, whose burst
 * rings it. The count is printed.
 *
 * FAULT_RUNS runs (default 5) of 15-25 rounds: ~140 kills. Reproduce with
 * FC_SEED and FC_PATH as printed.
 */
import { once } from 'node:events'
import { fork, type ChildProcess } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, test, vi } from 'vitest'
import { Bus } from '@ipc/bus'
import { Directory, TopicSegment } from '@ipc/core'
import { shmat, shmdt } from '@ipc/native'
import { Agent } from '../../../test/support/agents.js'
import { trackBus } from '../../../test/support/buses.js'
import { fixturePath, track } from '../../../test/support/children.js'
import { makeSegment } from '../../../test/support/segments.js'
import { checkMessage, makeMessage, type Message } from './fixtures/payloads.js'
import { CONTROL_BYTES, DONE, ERRORS, MAX_IDS, STARTED } from './fixtures/topic-control.js'

const RUNS = Number(process.env['FAULT_RUNS'] ?? 5)
const seed = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED'])
const path = process.env['FC_PATH']
const TOPIC = 'crash'
/** The bound the issue sets for a publisher blocked on a subscriber that was killed. */
const RESUME_MS = 1500

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The next message of `child`; rejects if it exits first or sends nothing within `ms`. */
function nextMessage(child: ChildProcess, what: string, ms = 15_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    const onMessage = (msg: unknown): void => { done(); resolve(msg) }
    const onExit = (code: number | null, signal: string | null): void => { done(); reject(new Error(`${what}: exited (${code ?? signal})`)) }
    const timer = setTimeout(() => { done(); reject(new Error(`${what}: nothing within ${ms} ms`)) }, ms)
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

/** A victim process (fixtures/topic-victim.ts), booted: it has loaded @ipc/bus and waits for its command. */
async function boot(): Promise<ChildProcess> {
  const child = track(fork(fixturePath('bus', 'topic-victim'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const msg = await nextMessage(child, 'victim booting')
  if (msg !== 'booted') throw new Error(`victim booting: ${JSON.stringify(msg)}`)
  return child
}

/**
 * Victims boot ahead of need, `size` at a time: a Node process loading
 * @ipc/bus takes ~0.4 s of CPU, which would otherwise be waited for at the
 * start of every round.
 */
class Spares {
  private readonly booting: Array<Promise<ChildProcess>> = []

  constructor(private readonly size: number) {
    this.fill()
  }

  private fill(): void {
    while (this.booting.length < this.size) {
      const p = boot()
      p.catch(() => {}) // reported by start()
      this.booting.push(p)
    }
  }

  /** A booted victim given `command`; resolves once it is 'ready' (holds its lane or slot). */
  async start(command: Record<string, unknown>): Promise<ChildProcess> {
    const child = await this.booting.shift()!
    this.fill()
    child.send(command)
    const msg = await nextMessage(child, `victim ${JSON.stringify(command).slice(0, 120)}`)
    if (msg !== 'ready') throw new Error(`victim ${command['role']}: ${JSON.stringify(msg)}`)
    return child
  }

  async stop(): Promise<void> {
    for (const p of this.booting.splice(0)) await p.then(kill, () => {})
  }
}

/** Offset of a subscriber slot's parked word in the slot (core topic/layout.ts SUB_PARKED), and its values (core ring/park.ts). */
const SUB_PARKED = 8
const AWAKE = 0
const PARKED = 1

/** The topic's segment, attached (until detach()) through the bus's directory, as an observer. */
function openTopic(bus: Bus, topic: string): { seg: TopicSegment; detach: () => void } {
  const { directory } = JSON.parse(bus.address) as { directory: number }
  const dirBuf = shmat(directory)
  try {
    const entry = new Directory(dirBuf, 0).findChannel(`T:${topic}`)
    if (entry === undefined) throw new Error(`no topic '${topic}'`)
    const buf = shmat(entry.segmentId)
    return { seg: new TopicSegment(buf, 0), detach: () => shmdt(buf) }
  } finally {
    shmdt(dirBuf)
  }
}

/** The topic's lanes and subscriber slots as shared memory has them now (for failure messages). */
function describeTopic(seg: TopicSegment): string {
  const lanes = seg.laneStats().map((l, i) => ({ ...l, owner: seg.laneOwner(i)?.pid ?? null }))
  const slots = Array.from({ length: seg.slots }, (_, i) => seg.subscriber(i)).map((s) => s && {
    ...s, owner: s.owner?.pid ?? null, bell: s.bell === null ? null : s.bell.kind, parked: Atomics.load(seg.words, seg.slotWord(s.slot, SUB_PARKED)),
  })
  return JSON.stringify({ lanes, slots })
}

/** Publisher id of this process's own (rescue) messages. */
const RESCUE = MAX_IDS - 1

/** See the file comment. */
class Rescuer {
  rescues = 0
  readonly errors: string[] = []
  lastDelivery = performance.now()
  lastPubKill = -Infinity
  delivered = 0
  private seen = -1
  private since = performance.now()
  private sent = 1
  private readonly timer: NodeJS.Timeout
  private readonly parkedAt: number

  constructor(private readonly bus: Bus, private readonly seg: TopicSegment, private readonly slot: number) {
    this.parkedAt = seg.slotWord(slot, SUB_PARKED)
    this.timer = setInterval(() => this.check(), 50)
  }

  private check(): void {
    const now = performance.now()
    const cursors = this.seg.subscriber(this.slot)?.cursors ?? []
    const waiting = this.seg.laneStats().some((l, i) => l.write !== cursors[i])
    if (!waiting || this.delivered !== this.seen) {
      this.seen = this.delivered
      this.since = now
      return
    }
    if (now - this.since < 200 || Atomics.load(this.seg.words, this.parkedAt) !== AWAKE) return
    this.since = now
    if (this.lastPubKill < this.lastDelivery) {
      this.errors.push(`lost wakeup: this process's subscriber has records waiting and its parked word says AWAKE, but no publisher was killed since its last message; topic ${describeTopic(this.seg)}`)
    }
    Atomics.compareExchange(this.seg.words, this.parkedAt, AWAKE, PARKED)
    this.bus.tryPublish(TOPIC, makeMessage(RESCUE, this.sent++, 0))
    this.rescues++
  }

  stop(): void {
    clearInterval(this.timer)
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

const round = fc.record({
  kill: fc.constantFrom<'pub' | 'sub' | 'both'>('pub', 'sub', 'both'),
  subFirst: fc.boolean(),
  delayMs: fc.integer({ min: 0, max: 40 }),
  gapMs: fc.integer({ min: 0, max: 15 }),
  // The next victim subscriber: reads along (null) or stalls after that many messages.
  stallAfter: fc.option(fc.integer({ min: 0, max: 30 }), { freq: 3 }),
})

describe('pub/sub under SIGKILL', () => {
  test(`publishers and subscribers killed at random moments: the others go on (${RUNS} runs)`, async () => {
    const controlId = makeSegment(CONTROL_BYTES)
    const controlBuf = shmat(controlId)
    const control = new Int32Array(controlBuf)
    const survivor = new Agent('topic-agent')
    const spares = new Spares(4)
    const resumes: number[] = []
    const tally = { runs: 0, rounds: 0, pubKills: 0, subKills: 0, stalledKills: 0, reclaimed: 0, messages: 0, rescues: 0, startMs: 0 }
    try {
      await fc.assert(
        fc.asyncProperty(fc.record({
          ringBytes: fc.constantFrom(4096, 8192, 16384),
          sizes: fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 4 }),
          rounds: fc.array(round, { minLength: 15, maxLength: 25 }),
        }), async ({ ringBytes, sizes, rounds }) => {
          tally.runs++
          control.fill(0)
          const bus = trackBus(await Bus.create({ ringBytes }))
          const victims: { pub: { child: ChildProcess; id: number } | null; sub: { child: ChildProcess; stalls: boolean } | null } = { pub: null, sub: null }
          let rescuer: Rescuer | null = null
          let topic: { seg: TopicSegment; detach: () => void } | null = null
          try {
            const next = new Array<number>(MAX_IDS).fill(0)
            const errors: string[] = []
            // maxSenders 3: this process's lane (rescues), the survivor's, one victim's.
            const main = bus.subscribe<Message>(TOPIC, (m) => {
              if (!checkMessage(m) || m.s >= MAX_IDS) { errors.push(`torn message ${JSON.stringify(m).slice(0, 80)}`); return }
              if (m.i !== next[m.s]) errors.push(`publisher ${m.s}: got #${m.i}, expected #${next[m.s]}`)
              next[m.s] = m.i + 1
              rescuer!.delivered++
              rescuer!.lastDelivery = performance.now()
            }, { ringBytes, maxSenders: 3, maxSubscribers: 2 })
            expect(bus.tryPublish(TOPIC, makeMessage(RESCUE, 0, 0))).toBe(true) // takes this process's lane first
            topic = openTopic(bus, TOPIC)
            rescuer = new Rescuer(bus, topic.seg, main.slot)
            const { backstop } = await survivor.call<{ backstop: string | null }>('attach', { address: bus.address, shm: controlId })
            expect(backstop).toBe('off')
            const streaming = survivor.call<{ count: number }>('stream', { topic: TOPIC, publisher: 0, sizes, burst: 10, pauseMs: 2 }, 600_000)
            streaming.catch(() => {}) // awaited below; rejected with Closed if a failure closes the agent's bus first
            let nextId = 1
            const killed: Array<{ id: number; done: number; started: number }> = []
            const killPub = async (): Promise<void> => {
              const v = victims.pub!
              victims.pub = null
              rescuer!.lastPubKill = performance.now()
              await kill(v.child)
              killed.push({ id: v.id, done: Atomics.load(control, DONE + v.id), started: Atomics.load(control, STARTED + v.id) })
              tally.pubKills++
            }
            const killSub = async (): Promise<void> => {
              const v = victims.sub!
              victims.sub = null
              const before = Atomics.load(control, DONE + 0)
              await kill(v.child)
              tally.subKills++
              if (!v.stalls) return
              tally.stalledKills++
              // The survivor may be waiting on the dead subscriber: it must go on.
              const t0 = performance.now()
              await vi.waitUntil(() => Atomics.load(control, DONE + 0) > before, { timeout: 5000, interval: 5 }).catch(() => {})
              const waited = performance.now() - t0
              resumes.push(waited)
              if (waited >= RESUME_MS) {
                const survivorStats = await survivor.call<{ pubsub?: unknown }>('stats').catch((e: Error) => e.message)
                expect.fail(`the survivor published nothing for ${waited.toFixed(0)} ms after the subscriber it waited on (pid ${v.child.pid}) was killed; ` +
                  `this process's subscriber got ${JSON.stringify(next.slice(0, nextId))}; survivor DONE ${Atomics.load(control, DONE)}, STARTED ${Atomics.load(control, STARTED)}; ` +
                  `survivor (pid ${survivor.pid}) ${JSON.stringify(survivorStats)}; topic ${describeTopic(topic!.seg)}`)
              }
            }
            for (const r of rounds) {
              tally.rounds++
              const starting: Array<Promise<void>> = []
              const where = { address: bus.address, shm: controlId, topic: TOPIC }
              if (victims.pub === null) {
                const id = nextId++
                starting.push(spares.start({ role: 'pub', ...where, id, sizes, burst: 10, pauseMs: 2 }).then((child) => { victims.pub = { child, id } }))
              }
              if (victims.sub === null) {
                starting.push(spares.start({ role: 'sub', ...where, stallAfter: r.stallAfter ?? -1 }).then((child) => { victims.sub = { child, stalls: r.stallAfter !== null } }))
              }
              const t0 = performance.now()
              await Promise.all(starting)
              tally.startMs += performance.now() - t0
              await sleep(r.delayMs)
              const order = r.kill === 'both' ? (r.subFirst ? [killSub, killPub] : [killPub, killSub]) : [r.kill === 'pub' ? killPub : killSub]
              for (const k of order) {
                await k()
                await sleep(r.gapMs)
              }
            }
            if (victims.pub !== null) await killPub()
            if (victims.sub !== null) await killSub()
            await survivor.call('stop')
            const { count } = await streaming
            const caughtUp = (): boolean => next[0] === count && killed.every((k) => next[k.id]! >= k.done)
            await vi.waitUntil(caughtUp, { timeout: 10_000, interval: 10 }).catch(() => {})
            await sleep(20) // nothing more may come
            expect(errors.slice(0, 10)).toEqual([])
            expect(rescuer.errors).toEqual([])
            expect(Atomics.load(control, ERRORS), 'victim subscribers saw wrong messages (printed above)').toBe(0)
            expect(next[0], `the survivor's messages; topic ${describeTopic(topic.seg)}`).toBe(count)
            for (const k of killed) {
              expect(next[k.id], `killed publisher ${k.id}: received ${next[k.id]}, it had published ${k.done} and started ${k.started}`).toBeGreaterThanOrEqual(k.done)
              expect(next[k.id]).toBeLessThanOrEqual(k.started)
            }
            expect(main.dropped).toBe(0)
            tally.messages += next.reduce((a, b) => a + b, 0)
            tally.reclaimed += ((await survivor.call<{ pubsub?: { reclaimed: number } }>('stats')).pubsub?.reclaimed ?? 0) + (bus.stats().pubsub?.reclaimed ?? 0)
          } finally {
            rescuer?.stop()
            tally.rescues += rescuer?.rescues ?? 0
            topic?.detach()
            for (const v of [victims.pub, victims.sub]) if (v !== null) await kill(v.child)
            await survivor.call('stop').catch(() => {})
            await survivor.call('close').catch(() => {})
            await bus.close()
          }
        }),
        { numRuns: RUNS, seed, path, verbose: 1, endOnFailure: true },
      )
    } finally {
      await spares.stop()
      shmdt(controlBuf)
      resumes.sort((a, b) => a - b)
      const q = (f: number) => (resumes[Math.min(resumes.length - 1, Math.floor(resumes.length * f))] ?? 0).toFixed(0)
      console.log(`pubsub faults: ${tally.runs} runs, ${tally.rounds} rounds, ${tally.pubKills} publishers and ${tally.subKills} subscribers killed (${tally.stalledKills} stalled ones), ` +
        `${tally.reclaimed} slots freed by liveness checks, ${tally.messages} messages checked, ${tally.rescues} wakeups lost with a killed publisher (rescued); the survivor published again after a stalled subscriber was killed within p50 ${q(0.5)} ms, max ${q(1)} ms; ${(tally.startMs / 1000).toFixed(1)} s spent waiting for victims`)
    }
  }, 300_000)
})
