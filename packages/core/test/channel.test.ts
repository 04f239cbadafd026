import { describe, expect, it } from 'vitest'
import {
  AWAKE, ChannelSegment, CorruptSegment, DOORBELL_PIPE, DOORBELL_SIGNAL, NotABus, PARKED, channelBytes, initializeChannel, park, shouldRing,
} from '../src/index.js'
import { LANES_USED } from '../src/channel/layout.js'

function channel(lanes = 3, laneCapacity = 1024) {
  const buffer = new SharedArrayBuffer(channelBytes(lanes, laneCapacity))
  initializeChannel(buffer, 0, { lanes, laneCapacity })
  return { buffer, segment: new ChannelSegment(buffer) }
}
const me = (pid: number, startTime = 1000) => ({ pid, startTime })

describe('channel segment', () => {
  it('gives each sender its own lane until all are taken', () => {
    const { segment } = channel(2)
    const a = segment.claimLane(me(10))
    const b = segment.claimLane(me(11))
    expect([a?.lane, b?.lane]).toEqual([0, 1])
    expect(segment.claimLane(me(12))).toBeNull()
    expect(segment.laneOwner(1)).toEqual(me(11))
  })

  it('recycles a lane only when its owner is dead and the lane is drained', () => {
    const { segment } = channel(1)
    const sender = segment.claimLane(me(10))!
    sender.tryWrite(new Uint8Array([1]))
    const dead = (pid: number) => pid !== 10
    expect(segment.claimLane(me(11), () => true)).toBeNull() // owner alive
    expect(segment.claimLane(me(11), dead)).toBeNull() // owner dead, lane not drained
    expect(segment.drain(() => {})).toBe(1)
    const heir = segment.claimLane(me(11), dead)!
    expect(heir.lane).toBe(0)
    expect(segment.laneOwner(0)).toEqual(me(11))
    heir.tryWrite(new Uint8Array([2])) // continues from the old write position
    const got: number[] = []
    segment.drain((data, start) => got.push(data[start]!))
    expect(got).toEqual([2])
  })

  it('calls a lane deserted only once its owner is gone and every record it wrote is read', () => {
    const { segment } = channel(2)
    const sender = segment.claimLane(me(10))!
    const alive = (pid: number) => pid === 10
    const dead = () => false
    sender.tryWrite(new Uint8Array([1]))
    expect(segment.laneDeserted(0, alive)).toBe(false) // owner alive
    expect(segment.laneDeserted(0, dead)).toBe(false) // owner died, its last record unread
    expect(segment.drain(() => {})).toBe(1)
    expect(segment.laneDeserted(0, alive)).toBe(false)
    expect(segment.laneDeserted(0, dead)).toBe(true)
    // Released (a closed sender), the last records published just before:
    // the lane is not deserted while they are unread (the race that lost a
    // finished large message, see the reader's dropOrphans).
    sender.tryWrite(new Uint8Array([2]))
    expect(segment.releaseLane(sender, me(10))).toBe(true)
    expect(segment.laneDeserted(0, alive)).toBe(false)
    expect(segment.drain(() => {})).toBe(1)
    expect(segment.laneDeserted(0, alive)).toBe(true)
    // A new owner: not deserted while it lives.
    segment.claimLane(me(11))
    expect(segment.laneDeserted(0, (pid) => pid === 11)).toBe(false)
  })

  it('tells a reused pid from its previous owner by start time', () => {
    const { segment } = channel(1)
    segment.claimLane(me(10, 1))
    expect(segment.claimLane(me(10, 2), (pid, start) => start === 2)).not.toBeNull()
  })

  it('releases a lane only for its owner', () => {
    const { segment } = channel(1)
    const sender = segment.claimLane(me(10))!
    expect(segment.releaseLane(sender, me(99))).toBe(false)
    expect(segment.releaseLane(sender, me(10))).toBe(true)
    expect(segment.claimLane(me(12))?.lane).toBe(0)
  })

  it('drains lanes round-robin so that a busy lane cannot starve the others', () => {
    const { segment } = channel(3)
    const senders = [segment.claimLane(me(1))!, segment.claimLane(me(2))!, segment.claimLane(me(3))!]
    for (let i = 0; i < 20; i++) senders[0]!.tryWrite(new Uint8Array([0]))
    senders[1]!.tryWrite(new Uint8Array([1]))
    senders[2]!.tryWrite(new Uint8Array([2]))
    const got: number[] = []
    expect(segment.drain((data, start) => got.push(data[start]!), 4)).toBe(6)
    expect(got).toEqual([0, 0, 0, 0, 1, 2])
    got.length = 0
    segment.drain((data, start) => got.push(data[start]!), 4, 2) // maxTotal: the next call starts one lane further
    expect(got).toEqual([0, 0])
  })

  it('publishes the receiving instance\'s doorbell with its claim, and clears it on release', () => {
    const { segment } = channel()
    expect(segment.receiver()).toBeNull()
    expect(segment.claimReceiverWithBell(me(77, 5), { kind: DOORBELL_SIGNAL, signal: 35, thread: 0 }, () => true)).toBeNull()
    expect(segment.receiver()).toEqual({ pid: 77, startTime: 5, bell: { kind: DOORBELL_SIGNAL, signal: 35, thread: 0 } })
    // Another instance of the same process (same identity) does not get it.
    expect(segment.claimReceiverWithBell(me(77, 5), { kind: DOORBELL_PIPE, signal: 0, thread: 3 }, () => true)).toEqual(me(77, 5))
    expect(segment.receiver()!.bell).toEqual({ kind: DOORBELL_SIGNAL, signal: 35, thread: 0 })
    expect(segment.releaseReceiver(me(77, 5))).toBe(true)
    expect(segment.receiver()).toBeNull()
    // A takeover from a dead receiver publishes the new instance's doorbell.
    expect(segment.claimReceiverWithBell(me(78, 5), { kind: DOORBELL_PIPE, signal: 0, thread: 3 }, () => false)).toBeNull()
    expect(segment.claimReceiverWithBell(me(79, 5), { kind: DOORBELL_SIGNAL, signal: 40, thread: 0 }, () => false)).toBeNull()
    expect(segment.receiver()).toEqual({ pid: 79, startTime: 5, bell: { kind: DOORBELL_SIGNAL, signal: 40, thread: 0 } })
    expect(() => segment.claimReceiverWithBell(me(80, 5), { kind: DOORBELL_SIGNAL, signal: 0, thread: 0 }, () => false)).toThrow(RangeError)
  })

  it('a receiver whose doorbell is not published yet (claim in flight) has bell null', () => {
    const { segment } = channel()
    expect(segment.claimReceiver(me(77, 5), () => true)).toBeNull()
    expect(segment.receiver()).toEqual({ pid: 77, startTime: 5, bell: null })
  })

  it('haltDrain() from the handler leaves the remaining records unread, in order', () => {
    const { segment } = channel(2)
    const a = segment.claimLane(me(1))!
    for (let i = 0; i < 5; i++) a.trySend(i)
    const got: number[] = []
    expect(segment.drain((data, start) => { got.push(data[start]!); if (got.length === 2) segment.haltDrain() })).toBe(2)
    expect(segment.hasData()).toBe(true)
    expect(segment.drain((data, start) => got.push(data[start]!))).toBe(3)
    expect(got).toEqual([0, 1, 2, 3, 4])
  })

  it('refuses memory that is not a channel or whose lanes are broken', () => {
    const { buffer } = channel(2)
    const bytes = new Uint8Array(buffer)
    bytes[0]! ^= 0xff
    expect(() => new ChannelSegment(buffer)).toThrow(NotABus)
    bytes[0]! ^= 0xff
    new Int32Array(buffer)[2] = 5000 // lanes
    expect(() => new ChannelSegment(buffer)).toThrow(CorruptSegment)
  })
})

describe('parking protocol, one thread', () => {
  it('lets the receiver sleep only when no lane has data', () => {
    const { segment } = channel(2)
    const sender = segment.claimLane(me(1))!
    expect(segment.park()).toBe(true)
    expect(segment.parked[ChannelSegment.PARKED_INDEX]).toBe(PARKED)
    sender.tryWrite(new Uint8Array(1))
    expect(sender.shouldRing()).toBe(true) // the one sender that wakes it
    expect(sender.shouldRing()).toBe(false)
    expect(segment.parked[ChannelSegment.PARKED_INDEX]).toBe(AWAKE)
    expect(segment.park()).toBe(false) // data is waiting: stay awake
    expect(segment.parked[ChannelSegment.PARKED_INDEX]).toBe(AWAKE)
    expect(sender.stats().doorbellsRung).toBe(1)
  })

  it('rings exactly once per park however many senders commit', () => {
    const word = new Int32Array(new SharedArrayBuffer(4))
    expect(park(word, 0, { hasData: () => false })).toBe(true)
    const rings = [shouldRing(word, 0), shouldRing(word, 0), shouldRing(word, 0)]
    expect(rings).toEqual([true, false, false])
  })
})

describe('receiver claim', () => {
  it('lets exactly one live process be the receiver, and a dead one be replaced', () => {
    const { segment } = channel(1)
    const alive = new Set([1, 2])
    const isAlive = (pid: number) => alive.has(pid)
    expect(segment.claimReceiver(me(1), isAlive)).toBeNull()
    expect(segment.claimReceiver(me(2), isAlive)).toEqual(me(1))
    alive.delete(1)
    expect(segment.claimReceiver(me(2), isAlive)).toBeNull()
    expect(segment.receiverIdentity()).toEqual(me(2))
    expect(segment.releaseReceiver(me(1))).toBe(false)
    expect(segment.releaseReceiver(me(2))).toBe(true)
    expect(segment.receiverIdentity()).toBeNull()
  })

  it('reads on from where the previous receiver stopped, however old its view of the segment', () => {
    const { buffer } = channel(1)
    const early = new ChannelSegment(buffer) // say, this process sent on the channel long ago
    const first = new ChannelSegment(buffer)
    const sender = new ChannelSegment(buffer).claimLane(me(9))!
    for (const b of [1, 2, 3]) sender.tryWrite(new Uint8Array([b]))
    expect(first.claimReceiver(me(1), () => true)).toBeNull()
    expect(first.drain(() => {})).toBe(3)
    expect(first.releaseReceiver(me(1))).toBe(true)
    for (const b of [4, 5]) sender.tryWrite(new Uint8Array([b]))
    expect(early.claimReceiver(me(2), () => true)).toBeNull()
    const got: number[] = []
    expect(early.hasData()).toBe(true)
    early.drain((data, start) => got.push(data[start]!))
    expect(got).toEqual([4, 5]) // not 1..5 again from its stale read position
    expect(early.hasData()).toBe(false)
  })
})

describe('lanes in use', () => {
  const used = (buffer: SharedArrayBuffer) => Atomics.load(new Int32Array(buffer), LANES_USED >> 2)

  it('polls and drains only lanes that a sender ever claimed, raised before the first write', () => {
    const { buffer, segment } = channel(4)
    expect(used(buffer)).toBe(0)
    expect(segment.hasData()).toBe(false)
    expect(segment.drain(() => {})).toBe(0)
    const other = new ChannelSegment(buffer) // another process
    const a = other.claimLane(me(10))!
    expect(used(buffer)).toBe(1)
    const b = other.claimLane(me(11))!
    expect(used(buffer)).toBe(2)
    other.releaseLane(a, me(10)) // released lanes stay in use: they may still hold records
    b.tryWrite(new Uint8Array([7]))
    expect(used(buffer)).toBe(2)
    expect(segment.hasData()).toBe(true)
    const got: number[] = []
    segment.drain((data, start) => got.push(data[start]!))
    expect(got).toEqual([7])
    const c = other.claimLane(me(12))! // takes the free lane 0 again: the mark does not move
    expect(c.lane).toBe(0)
    expect(used(buffer)).toBe(2)
  })

  it('treats a corrupt mark as "every lane", never indexing past the table', () => {
    const { buffer, segment } = channel(2)
    const sender = segment.claimLane(me(10))!
    sender.tryWrite(new Uint8Array([1]))
    for (const bad of [-1, 3, 0x7fffffff]) {
      Atomics.store(new Int32Array(buffer), LANES_USED >> 2, bad)
      expect(segment.hasData()).toBe(true)
    }
    expect(segment.drain(() => {})).toBe(1)
    expect(segment.hasData()).toBe(false)
  })
})
