/**
 * A topic's edges, one case each: options and header validation, values
 * through the codec, claims of lanes and slots (full, dead, released by the
 * steps an exit action runs), what a blocked publisher is told (blockers,
 * waitForRoom and the subscriber's roomWanted), history, and lapping with
 * the very oldest record (lapHeadroom 0). The model test and the threads
 * test cover the rest.
 */
import { describe, expect, it } from 'vitest'
import {
  CorruptSegment, DOORBELL_PIPE, NotABus, TopicSegment, initializeTopic, readBell, topicBytes, topicMaxMessageLimit, type Identity,
} from '../src/index.js'
import { INTENT, WRITE } from '../src/topic/layout.js'

const me = (pid: number): Identity => ({ pid, startTime: 7 })

function topic(capacity = 256, slots = 3, lanes = 2): { seg: TopicSegment; buffer: SharedArrayBuffer } {
  const buffer = new SharedArrayBuffer(topicBytes(lanes, slots, capacity))
  initializeTopic(buffer, 0, { lanes, slots, laneCapacity: capacity })
  return { seg: new TopicSegment(buffer), buffer }
}

describe('topic segment', () => {
  it('validates options and headers', () => {
    const buffer = new SharedArrayBuffer(1 << 16)
    expect(() => initializeTopic(buffer, 0, { lanes: 1, slots: 1, laneCapacity: 64 })).toThrow(RangeError)
    expect(() => initializeTopic(buffer, 0, { lanes: 0, slots: 1, laneCapacity: 128 })).toThrow(RangeError)
    expect(() => initializeTopic(buffer, 0, { lanes: 1, slots: 1, laneCapacity: 128, maxMessageBytes: topicMaxMessageLimit(128) + 1 })).toThrow(RangeError)
    expect(() => new TopicSegment(buffer)).toThrow(NotABus)
    initializeTopic(buffer, 0, { lanes: 1, slots: 1, laneCapacity: 128 })
    const seg = new TopicSegment(buffer)
    expect(() => seg.subscribe(me(1), { policy: 'sometimes' as 'drop' })).toThrow(RangeError)
    expect(() => seg.subscribe(me(1), { policy: 'drop', lapHeadroom: 65 })).toThrow(RangeError)
    expect(seg.subscriber(0), 'a refused subscribe claims nothing').toBeNull()
    const words = new Int32Array(buffer)
    const line = seg.views[0]!.line
    words[line + (INTENT >> 2)] = 16 + 128 // INTENT a ring past WRITE: still a segment
    words[line + (WRITE >> 2)] = 16
    expect(() => new TopicSegment(buffer)).not.toThrow()
    words[line + (INTENT >> 2)] = 16 + 128 + 8 // more than a ring past a WRITE that does not move
    expect(() => new TopicSegment(buffer)).toThrow(CorruptSegment)
    words[line + (INTENT >> 2)] = 16
    words[line + (WRITE >> 2)] = 12 // not a record boundary
    expect(() => new TopicSegment(buffer)).toThrow(CorruptSegment)
  })

  it('carries values through the codec, in order, to every subscriber', () => {
    const { seg } = topic(1024)
    const pub = seg.claimLane(me(1))!
    const subs = [seg.subscribe(me(2), { policy: 'block' })!, seg.subscribe(me(3), { policy: 'drop' })!]
    expect(pub.trySend({ a: 1 }, 3)).toBe(true)
    expect(pub.trySendMany([{ b: 2 }, 'c', [4]], 4)).toBe(3)
    const at = pub.claim(8)
    pub.data.set([0x92, 1, 2], at) // msgpack [1, 2]
    pub.commit(3, 5)
    expect(pub.claim(8)).toBeGreaterThan(0)
    pub.abort()
    for (const sub of subs) {
      const got: unknown[] = []
      sub.receive((value, type, lane, seq) => got.push([value, type, lane, seq]))
      expect(got).toEqual([[{ a: 1 }, 3, 0, 0], [{ b: 2 }, 4, 0, 1], ['c', 4, 0, 2], [[4], 4, 0, 3], [[1, 2], 5, 0, 4]])
    }
    expect(seg.laneStats()[0]!.messagesWritten).toBe(5)
    expect(seg.subscriber(subs[0]!.slot)!.messagesRead).toBe(5)
  })

  it('hands lanes out once, and a dead owner\'s lane to the next with its seq', () => {
    const { seg } = topic(256, 1, 2)
    const a = seg.claimLane(me(1))!
    const b = seg.claimLane(me(2))!
    expect([a.lane, b.lane]).toEqual([0, 1])
    expect(seg.claimLane(me(3))).toBeNull()
    a.tryWrite(new Uint8Array(3))
    a.tryWrite(new Uint8Array(3), 0, false) // staged when its owner dies: never published
    const c = seg.claimLane(me(3), (pid) => pid !== 1)!
    expect(c.lane).toBe(0)
    expect(c.nextSeq()).toBe(1)
    expect(seg.releaseLane(b, me(1))).toBe(false)
    expect(seg.releaseLane(b, me(2))).toBe(true)
    seg.setLaneBell(0, me(3), { kind: DOORBELL_PIPE, signal: 0, thread: 4 })
    expect(seg.laneOwnerBell(0)).toEqual({ pid: 3, startTime: 7, bell: { kind: DOORBELL_PIPE, signal: 0, thread: 4 } })
    expect(seg.laneOwnerBell(1)).toBeNull()
  })

  it('tells a blocked publisher who blocks it; a reclaimed or exit-released slot stops gating', () => {
    const { seg, buffer } = topic(256, 3)
    const pub = seg.claimLane(me(1))!
    const slow = seg.subscribe(me(2), { policy: 'block' })!
    const gone = seg.subscribe(me(3), { policy: 'block', bell: { kind: DOORBELL_PIPE, signal: 0, thread: 0 } })!
    expect(seg.subscribe(me(4), { policy: 'drop' })).not.toBeNull()
    expect(seg.subscribe(me(5), { policy: 'drop' }), 'every slot taken').toBeNull()
    let n = 0
    while (pub.tryWrite(new Uint8Array(8))) n++
    expect(n).toBe(10) // 24-byte records in 256 bytes
    expect(pub.blockers().sort()).toEqual([slow.slot, gone.slot])
    slow.drain(() => {})
    expect(pub.blockers()).toEqual([gone.slot])
    // the process of `gone` dies: the bus reclaims its slot by liveness
    expect(seg.reclaimSubscriber(gone.slot, () => true)).toBe(false)
    expect(seg.reclaimSubscriber(gone.slot, (pid) => pid !== 3)).toBe(true)
    expect(seg.subscriber(gone.slot)).toBeNull()
    expect(pub.tryWrite(new Uint8Array(8))).toBe(true)
    // an exit action releases `slow` with its compare-and-swaps (no EPOCH bump)
    while (pub.tryWrite(new Uint8Array(8))) n++
    for (const step of slow.releaseSteps()) {
      if (step.width === 4) Atomics.compareExchange(new Int32Array(buffer), step.offset / 4, Number(step.expected), Number(step.desired))
      else Atomics.compareExchange(new BigInt64Array(buffer), step.offset / 8, step.expected, step.desired)
    }
    expect(seg.subscriber(slow.slot)).toBeNull()
    expect(pub.tryWrite(new Uint8Array(8)), 'the full publisher rescans and finds the slot free').toBe(true)
    expect(pub.blockers()).toEqual([])
  })

  it('waits for room and is woken by the block subscriber that makes it', () => {
    const { seg } = topic(256, 2)
    const pub = seg.claimLane(me(1))!
    const sub = seg.subscribe(me(2), { policy: 'block' })!
    while (pub.tryWrite(new Uint8Array(0))) { /* 16 records of 16 bytes */ }
    expect(pub.waitForRoom(0)).toBe(true)
    sub.drain(() => {}, 1)
    expect(sub.roomWanted, 'a record is not an eighth of the ring').toEqual([])
    sub.drain(() => {}, 1)
    expect(sub.roomWanted).toEqual([0])
    expect(pub.waitForRoom(0)).toBe(false)
    expect(pub.tryWrite(new Uint8Array(0))).toBe(true)
  })

  it('rings a parked subscriber once per park, with its bell', () => {
    const { seg } = topic(256, 2)
    const pub = seg.claimLane(me(1))!
    const sub = seg.subscribe(me(2), { policy: 'drop' })!
    sub.setBell({ kind: DOORBELL_PIPE, signal: 0, thread: 9 })
    expect(sub.park()).toBe(true)
    pub.tryWrite(new Uint8Array(1))
    const wakes = pub.subscribersToRing()
    expect(wakes.map((w) => ({ ...w, bell: readBell(w.bell) }))).toEqual([{ slot: sub.slot, pid: 2, startTime: 7, bell: { kind: DOORBELL_PIPE, signal: 0, thread: 9 } }])
    expect(pub.subscribersToRing()).toEqual([])
    expect(sub.park(), 'data waits: stay awake').toBe(false)
    expect(seg.laneStats()[0]!.doorbellsRung).toBe(1)
  })

  it('starts n messages back with history, as far as they are intact', () => {
    const { seg } = topic(256, 3)
    const pub = seg.claimLane(me(1))!
    for (let i = 0; i < 5; i++) pub.tryWrite(new Uint8Array([i]))
    const seqs = (history: number): number[] => {
      const got: number[] = []
      const sub = seg.subscribe(me(10 + history), { policy: 'drop', history })!
      sub.drain((_d, _s, _e, _t, _l, seq) => got.push(seq))
      sub.release()
      return got
    }
    expect(seqs(2)).toEqual([3, 4])
    expect(seqs(100)).toEqual([0, 1, 2, 3, 4])
    for (let i = 5; i < 40; i++) pub.tryWrite(new Uint8Array([i]))
    const all = seqs(100)
    expect(all.at(-1)).toBe(39)
    expect(all.length, 'what a ring of 256 bytes still holds').toBeGreaterThan(5)
    expect(all.length).toBeLessThanOrEqual(256 / 24)
  })

  it('skips a lapped drop subscriber to the oldest intact record and counts exactly what it lost', () => {
    const { seg } = topic(256, 2)
    const pub = seg.claimLane(me(1))!
    const sub = seg.subscribe(me(2), { policy: 'drop', lapHeadroom: 0 })!
    for (let i = 0; i < 100; i++) expect(pub.tryWrite(new Uint8Array([i]))).toBe(true)
    const got: number[] = []
    sub.drain((data, start, _e, _t, _l, seq) => { expect(data[start]).toBe(seq); got.push(seq) })
    const lost = sub.takeLost()
    expect(lost + got.length).toBe(100)
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => 100 - got.length + i))
    // every record in the ring but the ones INTENT already gave up
    expect(got.length).toBeGreaterThanOrEqual(Math.floor((256 - 256 / 8) / 24))
    expect(seg.subscriber(sub.slot)!.dropped).toBe(lost)
    expect(seg.subscriber(sub.slot)!.laps).toBe(1)
  })
})
