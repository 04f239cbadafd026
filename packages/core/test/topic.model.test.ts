/**
 * Model-based test of one topic in one thread: 1-3 publishers (claimed,
 * released, crashed mid-burst and taken over), subscribers joining (with and
 * without history), leaving, crashing and being reclaimed, with mixed block
 * and drop policies, random sizes over lanes of 128 B to 4 KiB whose
 * positions start just below 2^32, and drains at random. The model knows
 * every published message of every lane (by seq) and where it lies, and
 * checks:
 *  - block subscribers get every message published after they joined, in
 *    per-publisher order, byte-identical, and never count a drop;
 *  - drop subscribers get an in-order subsequence, byte-identical, and their
 *    drop counter equals exactly the messages they skipped;
 *  - a write fails (tryWrite false / tryWriteMany short) exactly when a block
 *    subscriber (live, or dead and not yet reclaimed) has no room;
 *  - subscribersToRing() returns exactly the parked subscribers, once;
 *  - history starts n messages back unless they were no longer intact;
 *  - nothing outside the segment is touched.
 * FC_SEED replays a run (the seed is printed); CORE_TOPIC_MODEL_RUNS (default
 * 400) sets the number of runs.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  TopicSegment, initializeTopic, topicBytes, topicMaxMessageLimit, type TopicPublisher, type TopicSubscriber,
} from '../src/index.js'
import { params } from './support/fc.js'

const LANES = 3
const SLOTS = 4
const recordBytes = (n: number): number => (16 + n + 7) & ~7

interface Msg { length: number; type: number; start: number; end: number; bytes: Uint8Array }
interface Lane { msgs: Msg[]; staged: Msg[]; write: number; pending: number; owner: number }
interface Pub { pid: number; lane: number; real: TopicPublisher }
interface Sub {
  pid: number; slot: number; policy: 'block' | 'drop'; real: TopicSubscriber | null
  next: number[]; dropped: number; parked: boolean; deadCursors: number[] | null
}

let uid = 0
function makePayload(length: number): Uint8Array {
  const id = ++uid
  const bytes = new Uint8Array(length)
  for (let i = 0; i < length; i++) bytes[i] = (id * 31 + i * 7 + (id >>> 8)) & 0xff
  return bytes
}

class World {
  readonly seg: TopicSegment
  readonly lanes: Lane[] = []
  pubs: Pub[] = []
  subs: Sub[] = []
  readonly alive = new Set<number>()
  nextPid = 100
  lapsedMessages = 0
  readonly isAlive = (pid: number): boolean => this.alive.has(pid)
  constructor(readonly buffer: SharedArrayBuffer, readonly at: number, readonly capacity: number, readonly max: number, readonly start: number) {
    this.seg = new TopicSegment(buffer, at)
    for (let i = 0; i < LANES; i++) this.lanes.push({ msgs: [], staged: [], write: start, pending: start, owner: 0 })
  }
  extent(pos: number, size: number): number {
    const tail = this.capacity - (pos & (this.capacity - 1))
    return size <= tail ? size : tail + size
  }
  cursorOf(sub: Sub, lane: number): number {
    return sub.real === null ? sub.deadCursors![lane]! : sub.real.position(lane).cursor
  }
  /** True when a record of `length` fits lane `l` now: no block subscriber (live or not yet reclaimed) lacks the room. */
  fits(l: number, length: number): boolean {
    const lane = this.lanes[l]!
    const end = (lane.pending + this.extent(lane.pending, recordBytes(length))) >>> 0
    return this.subs.every((s) => s.policy !== 'block' || ((end - this.cursorOf(s, l)) >>> 0) <= this.capacity)
  }
  publish(l: number): void {
    const lane = this.lanes[l]!
    lane.msgs.push(...lane.staged)
    lane.staged = []
    lane.write = lane.pending
  }
  /** Mirrors reserve(): the half-ring burst rule, then the room check; stages the message when it fits. */
  stage(l: number, bytes: Uint8Array, type: number): boolean {
    const lane = this.lanes[l]!
    const size = recordBytes(bytes.length)
    if (lane.pending !== lane.write && ((lane.pending - lane.write) >>> 0) + this.extent(lane.pending, size) > this.capacity / 2) this.publish(l)
    if (!this.fits(l, bytes.length)) return false
    const tail = this.capacity - (lane.pending & (this.capacity - 1))
    const start = size <= tail ? lane.pending : (lane.pending + tail) >>> 0
    lane.pending = (start + size) >>> 0
    lane.staged.push({ length: bytes.length, type, start, end: lane.pending, bytes })
    return true
  }
  /** After a publish: exactly the parked subscribers are returned, once. */
  ring(pub: Pub): void {
    const woken = pub.real.subscribersToRing().map((w) => w.slot).sort()
    const expected = this.subs.filter((s) => s.parked).map((s) => s.slot).sort()
    expect(woken, 'subscribersToRing returns the parked subscribers').toEqual(expected)
    for (const s of this.subs) s.parked = false
    expect(pub.real.subscribersToRing(), 'a park is rung once').toEqual([])
  }
  /** The subscriber's cursor lies between its last message and the next (only padding in between). */
  checkCursor(sub: Sub, l: number): void {
    const lane = this.lanes[l]!
    const next = sub.next[l]!
    const cursor = this.cursorOf(sub, l)
    const target = next < lane.msgs.length ? lane.msgs[next]!.start : lane.write
    const before = next > 0 ? lane.msgs[next - 1]!.end : this.start
    expect(((cursor - before) | 0) >= 0 && ((target - cursor) | 0) >= 0, `cursor ${cursor} of slot ${sub.slot} in lane ${l} lies between ${before} and ${target}`).toBe(true)
  }
}

type Cmd = fc.Command<World, World>
const sizeOf = (w: World, r: number): number => (r < 0.1 ? 0 : r > 0.9 ? w.max : Math.floor(r * (w.max + 1)))

class ClaimPublisher implements Cmd {
  check = (w: World) => w.pubs.length < LANES
  run(w: World): void {
    const pid = w.nextPid++
    w.alive.add(pid)
    let lane = w.lanes.findIndex((l) => l.owner === 0)
    if (lane < 0) lane = w.lanes.findIndex((l) => !w.alive.has(l.owner))
    const real = w.seg.claimLane({ pid, startTime: 1 }, w.isAlive)
    if (lane < 0) { expect(real).toBeNull(); return }
    expect(real?.lane).toBe(lane)
    const model = w.lanes[lane]!
    model.owner = pid
    model.staged = [] // a dead owner's unpublished burst is gone
    model.pending = model.write
    expect(real!.nextSeq(), 'a new owner goes on with the lane\'s seq').toBe(model.msgs.length)
    w.pubs.push({ pid, lane, real: real! })
  }
  toString = () => 'claimPublisher'
}

class ReleasePublisher implements Cmd {
  constructor(readonly k: number) {}
  check = (w: World) => w.pubs.length > 0
  run(w: World): void {
    const pub = w.pubs.splice(this.k % w.pubs.length, 1)[0]!
    pub.real.publish()
    w.publish(pub.lane)
    w.ring(pub)
    expect(w.seg.releaseLane(pub.real, { pid: pub.pid, startTime: 1 })).toBe(true)
    w.lanes[pub.lane]!.owner = 0
    w.alive.delete(pub.pid)
  }
  toString = () => `releasePublisher(${this.k})`
}

class CrashPublisher implements Cmd {
  constructor(readonly k: number) {}
  check = (w: World) => w.pubs.length > 0
  run(w: World): void {
    const pub = w.pubs.splice(this.k % w.pubs.length, 1)[0]!
    w.alive.delete(pub.pid) // whatever it staged is never published
  }
  toString = () => `crashPublisher(${this.k})`
}

class Write implements Cmd {
  constructor(readonly k: number, readonly r: number, readonly publish: boolean) {}
  check = (w: World) => w.pubs.length > 0
  run(w: World): void {
    const pub = w.pubs[this.k % w.pubs.length]!
    const lane = w.lanes[pub.lane]!
    const bytes = makePayload(sizeOf(w, this.r))
    const type = (lane.msgs.length + lane.staged.length) & 0xffff
    const writeBefore = lane.write
    const fits = w.stage(pub.lane, bytes, type)
    expect(pub.real.tryWrite(bytes, type, this.publish), 'tryWrite is false exactly when a block subscriber has no room').toBe(fits)
    if (this.publish && fits) w.publish(pub.lane) // a write that fails publishes nothing
    if (lane.write !== writeBefore) w.ring(pub)
  }
  toString = () => `write(${this.k}, ${this.r.toFixed(2)}, publish ${this.publish})`
}

class Flood implements Cmd {
  constructor(readonly k: number, readonly count: number, readonly r: number, readonly publish: boolean) {}
  check = (w: World) => w.pubs.length > 0
  run(w: World): void {
    const pub = w.pubs[this.k % w.pubs.length]!
    const lane = w.lanes[pub.lane]!
    const writeBefore = lane.write
    for (let i = 0; i < this.count; i++) {
      const bytes = makePayload(sizeOf(w, (this.r * (i + 1)) % 1))
      const type = (lane.msgs.length + lane.staged.length) & 0xffff
      const fits = w.stage(pub.lane, bytes, type)
      expect(pub.real.tryWrite(bytes, type, this.publish), 'tryWrite is false exactly when a block subscriber has no room').toBe(fits)
      if (!fits) break
      if (this.publish) w.publish(pub.lane)
    }
    // unpublished, the records stay staged (and may already overwrite what a drop subscriber has not read)
    if (lane.write !== writeBefore) w.ring(pub)
  }
  toString = () => `flood(${this.k}, ${this.count}, ${this.r.toFixed(2)}, publish ${this.publish})`
}

class WriteMany implements Cmd {
  constructor(readonly k: number, readonly rs: number[]) {}
  check = (w: World) => w.pubs.length > 0
  run(w: World): void {
    const pub = w.pubs[this.k % w.pubs.length]!
    const list = this.rs.map((r) => makePayload(sizeOf(w, r)))
    let n = 0
    while (n < list.length && w.stage(pub.lane, list[n]!, 5)) n++
    expect(pub.real.tryWriteMany(list, 5), 'tryWriteMany stops exactly where a block subscriber has no room').toBe(n)
    w.publish(pub.lane)
    w.ring(pub)
  }
  toString = () => `writeMany(${this.k}, ${this.rs.length})`
}

class Join implements Cmd {
  constructor(readonly drop: boolean, readonly history: number, readonly headroom: boolean) {}
  check = () => true
  run(w: World): void {
    const pid = w.nextPid++
    w.alive.add(pid)
    const policy = this.drop ? 'drop' : 'block'
    const real = w.seg.subscribe({ pid, startTime: 1 }, { policy, history: this.history, lapHeadroom: this.headroom ? undefined : 0 }, w.isAlive)
    if (w.subs.length === SLOTS) {
      const dead = w.subs.filter((s) => s.real === null)
      if (dead.length === 0) { expect(real).toBeNull(); return }
      w.subs = w.subs.filter((s) => s.real !== null) // reclaimed to make room
    }
    expect(real).not.toBeNull()
    const sub: Sub = { pid, slot: real!.slot, policy, real, next: [], dropped: 0, parked: false, deadCursors: null }
    for (let l = 0; l < LANES; l++) {
      const lane = w.lanes[l]!
      const count = lane.msgs.length
      const from = real!.position(l).seq
      expect(from <= count && from >= Math.max(0, count - this.history), `history start ${from} in lane ${l} of ${count} (history ${this.history})`).toBe(true)
      if (from > Math.max(0, count - this.history)) {
        // what history could not reach was no longer intact (or was further than a ring back)
        const intent = w.seg.words[w.seg.views[l]!.line + 1]! >>> 0
        const missed = lane.msgs[from - 1]!
        expect(((intent - missed.start) >>> 0) > w.capacity || ((lane.write - missed.start) >>> 0) > w.capacity, `message ${from - 1} of lane ${l} was still intact`).toBe(true)
      }
      sub.next.push(from)
    }
    w.subs.push(sub)
    for (let l = 0; l < LANES; l++) w.checkCursor(sub, l)
  }
  toString = () => `join(${this.drop ? 'drop' : 'block'}, history ${this.history}, headroom ${this.headroom})`
}

class Leave implements Cmd {
  constructor(readonly k: number) {}
  check = (w: World) => w.subs.some((s) => s.real !== null)
  run(w: World): void {
    const live = w.subs.filter((s) => s.real !== null)
    const sub = live[this.k % live.length]!
    expect(sub.real!.release()).toBe(true)
    w.subs = w.subs.filter((s) => s !== sub)
  }
  toString = () => `leave(${this.k})`
}

class CrashSubscriber implements Cmd {
  constructor(readonly k: number) {}
  check = (w: World) => w.subs.some((s) => s.real !== null)
  run(w: World): void {
    const live = w.subs.filter((s) => s.real !== null)
    const sub = live[this.k % live.length]!
    sub.deadCursors = Array.from({ length: LANES }, (_, l) => sub.real!.position(l).cursor)
    sub.real = null
    w.alive.delete(sub.pid)
  }
  toString = () => `crashSubscriber(${this.k})`
}

class Reclaim implements Cmd {
  check = () => true
  run(w: World): void {
    const dead = w.subs.filter((s) => s.real === null).length
    expect(w.seg.reclaimDeadSubscribers(w.isAlive)).toBe(dead)
    w.subs = w.subs.filter((s) => s.real !== null)
  }
  toString = () => 'reclaim'
}

class Drain implements Cmd {
  constructor(readonly k: number, readonly max: number) {}
  check = (w: World) => w.subs.some((s) => s.real !== null)
  run(w: World): void {
    const live = w.subs.filter((s) => s.real !== null)
    const sub = live[this.k % live.length]!
    drainAndCheck(w, sub, this.max)
  }
  toString = () => `drain(${this.k}, ${this.max})`
}

class Park implements Cmd {
  constructor(readonly k: number) {}
  check = (w: World) => w.subs.some((s) => s.real !== null)
  run(w: World): void {
    const live = w.subs.filter((s) => s.real !== null)
    const sub = live[this.k % live.length]!
    const empty = w.lanes.every((lane, l) => ((lane.write - sub.real!.position(l).cursor) | 0) === 0)
    expect(sub.real!.park(), 'park() says sleep exactly when no lane has data').toBe(empty)
    sub.parked = empty
  }
  toString = () => `park(${this.k})`
}

function drainAndCheck(w: World, sub: Sub, max: number): number {
  const real = sub.real!
  const n = real.drain((data, start, end, type, l, seq) => {
    const lane = w.lanes[l]!
    const msg = lane.msgs[seq]
    expect(msg, `slot ${sub.slot} got seq ${seq} of lane ${l}, which has ${lane.msgs.length} messages`).toBeDefined()
    expect(seq >= sub.next[l]!, `slot ${sub.slot} lane ${l}: seq ${seq} after ${sub.next[l]! - 1} (in order)`).toBe(true)
    if (sub.policy === 'block') expect(seq, `block slot ${sub.slot} lane ${l}: every message, in order`).toBe(sub.next[l])
    expect(type).toBe(msg!.type)
    expect(Buffer.from(data.subarray(start, end)).equals(Buffer.from(msg!.bytes)), `slot ${sub.slot} lane ${l} seq ${seq}: bytes as published`).toBe(true)
    sub.dropped += seq - sub.next[l]!
    sub.next[l] = seq + 1
  }, max)
  for (let l = 0; l < LANES; l++) {
    const at = real.position(l).seq
    expect(((at - sub.next[l]!) | 0) >= 0, `slot ${sub.slot} lane ${l} went back`).toBe(true)
    sub.dropped += at - sub.next[l]!
    sub.next[l] = at
    w.checkCursor(sub, l)
  }
  const info = w.seg.subscriber(sub.slot)!
  expect(info.dropped, `slot ${sub.slot} (${sub.policy}): drop counter equals the messages it skipped`).toBe(sub.dropped)
  if (sub.policy === 'block') expect(sub.dropped, 'a block subscriber never drops').toBe(0)
  w.lapsedMessages += real.takeLost()
  return n
}

const r01 = fc.double({ min: 0, max: 1, noNaN: true })
const commands = [
  fc.constant(new ClaimPublisher()),
  fc.nat(5).map((k) => new ReleasePublisher(k)),
  fc.nat(5).map((k) => new CrashPublisher(k)),
  fc.tuple(fc.nat(5), r01, fc.boolean()).map(([k, r, p]) => new Write(k, r, p)),
  fc.tuple(fc.nat(5), r01, fc.constant(true)).map(([k, r, p]) => new Write(k, r, p)),
  fc.tuple(fc.nat(5), fc.array(r01, { maxLength: 16, size: 'max' })).map(([k, rs]) => new WriteMany(k, rs)),
  fc.tuple(fc.nat(5), fc.integer({ min: 1, max: 80 }), r01, fc.boolean()).map(([k, n, r, p]) => new Flood(k, n, r, p)),
  fc.tuple(fc.boolean(), fc.constantFrom(0, 0, 1, 3, 1000), fc.boolean()).map(([d, h, r]) => new Join(d, h, r)),
  fc.nat(5).map((k) => new Leave(k)),
  fc.nat(5).map((k) => new CrashSubscriber(k)),
  fc.constant(new Reclaim()),
  fc.tuple(fc.nat(5), fc.integer({ min: 1, max: 20 })).map(([k, m]) => new Drain(k, m)),
  fc.tuple(fc.nat(5), fc.integer({ min: 1, max: 20 })).map(([k, m]) => new Drain(k, m)),
  fc.nat(5).map((k) => new Park(k)),
]

describe('topic against a model', () => {
  it('block subscribers get everything, drop subscribers an in-order subsequence with exact drop counts', () => {
    const setup = fc.record({
      log2: fc.integer({ min: 7, max: 12 }),
      maxKind: fc.constantFrom('default', 'limit', 'tiny'),
      backoff: fc.integer({ min: 0, max: 4096 }),
    })
    let delivered = 0
    let lost = 0
    let counterWraps = 0
    let laps = 0
    fc.assert(
      fc.property(setup, fc.commands(commands, { maxCommands: 300, size: 'max' }), ({ log2, maxKind, backoff }, cmds) => {
        const capacity = 2 ** log2
        const max = maxKind === 'default' ? capacity / 8 : maxKind === 'limit' ? topicMaxMessageLimit(capacity) : 8
        const start = (2 ** 32 - backoff * 8) >>> 0
        const size = topicBytes(LANES, SLOTS, capacity)
        const buffer = new SharedArrayBuffer(size + 128)
        new Uint8Array(buffer).fill(0xcc)
        initializeTopic(buffer, 64, { lanes: LANES, slots: SLOTS, laneCapacity: capacity, maxMessageBytes: max, initialPosition: start })
        const world = new World(buffer, 64, capacity, max, start)
        fc.modelRun(() => ({ model: world, real: world }), cmds)
        // the end: every live subscriber drains what is left, and has then seen or counted every message
        for (const pub of world.pubs) { pub.real.publish(); world.publish(pub.lane) }
        for (const sub of world.subs.filter((s) => s.real !== null)) {
          while (drainAndCheck(world, sub, 64) > 0) { /* drain */ }
          for (let l = 0; l < LANES; l++) expect(sub.next[l], `slot ${sub.slot} lane ${l}: all read or counted`).toBe(world.lanes[l]!.msgs.length)
          delivered += world.lanes.reduce((n, lane) => n + lane.msgs.length, 0)
          laps += world.seg.subscriber(sub.slot)!.laps
        }
        lost += world.lapsedMessages
        if (world.lanes.some((lane) => ((lane.write >>> 0) < start))) counterWraps++
        const all = new Uint8Array(buffer)
        expect(all.subarray(0, 64).every((b) => b === 0xcc) && all.subarray(64 + size).every((b) => b === 0xcc), 'guard bytes around the segment').toBe(true)
      }),
      params(Number(process.env.CORE_TOPIC_MODEL_RUNS ?? 400)),
    )
    console.log(`topic model: ${delivered} messages accounted for, ${lost} lost and counted (${laps} laps of subscribers still there at the end), ${counterWraps} runs wrapped the 32-bit positions`)
    expect(lost).toBeGreaterThan(100)
    expect(counterWraps).toBeGreaterThan(10)
  }, 120_000)
})
