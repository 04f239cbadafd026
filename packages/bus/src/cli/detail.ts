/**
 * Everything about one bus (`ipc-bus inspect`, and each sample of `top`):
 * its members, and each directory entry's segment copied and read — a
 * channel's receiver, lanes, backlog and counters; a topic's lanes and
 * subscribers; the services its server channels make up. Read-only
 * throughout (see ./segments.ts); an entry that cannot be read carries its
 * error, the rest of the report goes on.
 */
import { DOORBELL_PIPE, DOORBELL_SIGNAL, ChannelSegment, type ChannelEntry, type TopicSegment } from '@ipc/core'
import { signalName } from '@ipc/native'
import type { FoundBus } from './buses.js'
import {
  Liveness, entryRole, type BusDetail, type ChannelView, type LaneView, type MemberView, type ServiceView, type SubscriberView,
  type TopicLaneView, type TopicView,
} from './model.js'
import { problemOf, readChannel, readTopic } from './segments.js'

/** Reads every entry of a bus found with a readable directory. */
export function inspectBus(found: FoundBus, liveness = new Liveness()): BusDetail {
  const directory = found.directory
  const at = Date.now()
  if (directory === null) return { bus: found.summary, at, members: [], channels: [], topics: [], services: [] }
  const channels: ChannelView[] = []
  const topics: TopicView[] = []
  for (const entry of directory.entries) {
    const role = entryRole(entry)
    if (role.role === 'topic') topics.push(topic(entry, role.topic, liveness))
    else channels.push(channel(entry, liveness))
  }
  const members = directory.members.map((m): MemberView => ({
    slot: m.index, pid: m.pid, startTime: m.startTime, alive: liveness.alive(m.pid, m.startTime),
    doorbell: m.doorbellKind === DOORBELL_SIGNAL ? `signal ${signalName(m.signal)}` : m.doorbellKind === DOORBELL_PIPE ? 'pipe' : 'none',
    roles: [],
  }))
  assignRoles(members, channels, topics)
  return { bus: found.summary, at, members, channels, topics, services: services(channels) }
}

function channel(entry: ChannelEntry, liveness: Liveness): ChannelView {
  const role = entryRole(entry)
  const view: ChannelView = {
    name: entry.name, segmentId: entry.segmentId, role: role.role === 'server' || role.role === 'reply' ? role.role : 'channel',
    service: role.role === 'server' ? role.service : null, capacity: entry.capacity, laneCount: entry.lanes, lanesInUse: 0,
    receiver: null, receiverParked: null, parks: 0, drains: 0, rescues: 0,
    messagesWritten: 0, bytesWritten: 0, messagesRead: 0, bytesRead: 0, fullEvents: 0, doorbells: 0, backlogBytes: 0, backlogMessages: 0,
    lanes: [], error: null,
  }
  try {
    return readChannel(entry.segmentId, (segment) => fillChannel(view, segment, liveness))
  } catch (err) {
    return { ...view, error: problemOf(err, entry.segmentId).message }
  }
}

function fillChannel(base: ChannelView, segment: ChannelSegment, liveness: Liveness): ChannelView {
  const view: ChannelView = { ...base, lanes: [] }
  const stats = segment.stats()
  view.capacity = segment.laneCapacity
  view.laneCount = segment.lanes
  view.lanesInUse = segment.lanesInUse
  view.receiver = liveness.who(segment.receiverIdentity())
  view.receiverParked = view.receiver === null ? null : segment.parked[ChannelSegment.PARKED_INDEX] !== 0
  view.parks = stats.parks
  view.drains = stats.drains
  view.rescues = stats.rescues
  for (let i = 0; i < view.lanesInUse; i++) {
    const s = stats.lanes[i]!
    const lane: LaneView = {
      lane: i, owner: liveness.who(segment.laneOwner(i)),
      messagesWritten: s.messagesWritten, bytesWritten: s.bytesWritten, messagesRead: s.messagesRead, bytesRead: s.bytesRead,
      fullEvents: s.fullEvents, doorbells: s.doorbellsRung, backlogBytes: s.usedBytes,
      backlogMessages: s.usedBytes === 0 ? 0 : Math.max(0, s.messagesWritten - s.messagesRead),
    }
    view.lanes.push(lane)
    view.messagesWritten += lane.messagesWritten
    view.bytesWritten += lane.bytesWritten
    view.messagesRead += lane.messagesRead
    view.bytesRead += lane.bytesRead
    view.fullEvents += lane.fullEvents
    view.doorbells += lane.doorbells
    view.backlogBytes += lane.backlogBytes
    view.backlogMessages += lane.backlogMessages
  }
  return view
}

function topic(entry: ChannelEntry, name: string, liveness: Liveness): TopicView {
  const view: TopicView = {
    name, segmentId: entry.segmentId, capacity: entry.capacity, laneCount: entry.lanes, slotCount: 0, lanesInUse: 0,
    messagesWritten: 0, bytesWritten: 0, fullEvents: 0, doorbells: 0, lanes: [], subscribers: [], error: null,
  }
  try {
    return readTopic(entry.segmentId, (segment) => fillTopic(view, segment, liveness))
  } catch (err) {
    return { ...view, error: problemOf(err, entry.segmentId).message }
  }
}

function fillTopic(base: TopicView, segment: TopicSegment, liveness: Liveness): TopicView {
  const view: TopicView = { ...base, lanes: [], subscribers: [] }
  view.capacity = segment.laneCapacity
  view.laneCount = segment.lanes
  view.slotCount = segment.slots
  view.lanesInUse = segment.lanesUsed()
  const stats = segment.laneStats()
  for (let i = 0; i < view.lanesInUse; i++) {
    const s = stats[i]!
    const lane: TopicLaneView = {
      lane: i, owner: liveness.who(segment.laneOwner(i)), position: s.write,
      messagesWritten: s.messagesWritten, bytesWritten: s.bytesWritten, fullEvents: s.fullEvents, doorbells: s.doorbellsRung,
    }
    view.lanes.push(lane)
    view.messagesWritten += lane.messagesWritten
    view.bytesWritten += lane.bytesWritten
    view.fullEvents += lane.fullEvents
    view.doorbells += lane.doorbells
  }
  for (let slot = 0; slot < segment.slots; slot++) {
    const info = segment.subscriber(slot)
    if (info === null) continue
    const lagBytes = view.lanes.map((lane) => (lane.position - info.cursors[lane.lane]!) >>> 0)
    const sub: SubscriberView = {
      slot, owner: liveness.who(info.owner), state: info.state, policy: info.policy,
      lagBytes, maxLagBytes: Math.max(0, ...lagBytes), lapped: lagBytes.some((b) => b > segment.laneCapacity),
      messagesRead: info.messagesRead, bytesRead: info.bytesRead, dropped: info.dropped, laps: info.laps, parks: info.parks,
    }
    view.subscribers.push(sub)
  }
  return view
}

/** Fills each member's roles from what its identity holds in channels and topics. */
function assignRoles(members: MemberView[], channels: ChannelView[], topics: TopicView[]): void {
  const byId = new Map(members.map((m) => [`${m.pid}:${m.startTime}`, m]))
  const add = (who: { pid: number; startTime: number } | null, role: string): void => {
    const member = who === null ? undefined : byId.get(`${who.pid}:${who.startTime}`)
    if (member !== undefined && !member.roles.includes(role)) member.roles.push(role)
  }
  for (const c of channels) {
    add(c.receiver, c.role === 'server' ? `server(${c.service})` : c.role === 'reply' ? 'client' : `receiver(${c.name})`)
    if (c.role === 'channel') for (const lane of c.lanes) add(lane.owner, `sender(${c.name})`)
  }
  for (const t of topics) {
    for (const lane of t.lanes) add(lane.owner, `publisher(${t.name})`)
    for (const s of t.subscribers) add(s.owner, `subscriber(${t.name})`)
  }
}

/**
 * Services from server channels. In flight: what a server's process took
 * from all its server channels less the replies it wrote to reply channels
 * (lanes it owns there), so one number per process.
 */
function services(channels: ChannelView[]): ServiceView[] {
  const key = (who: { pid: number; startTime: number }): string => `${who.pid}:${who.startTime}`
  const balance = new Map<string, number>()
  for (const c of channels) {
    if (c.role === 'server' && c.receiver !== null) balance.set(key(c.receiver), (balance.get(key(c.receiver)) ?? 0) + c.messagesRead)
    if (c.role === 'reply') {
      for (const lane of c.lanes) if (lane.owner !== null) balance.set(key(lane.owner), (balance.get(key(lane.owner)) ?? 0) - lane.messagesWritten)
    }
  }
  const byName = new Map<string, ServiceView>()
  for (const c of channels) {
    if (c.role !== 'server' || c.service === null) continue
    let service = byName.get(c.service)
    if (service === undefined) byName.set(c.service, service = { service: c.service, servers: [] })
    service.servers.push({
      channel: c.name, pid: c.receiver?.pid ?? entryPid(c.name), alive: c.receiver?.alive ?? false,
      queued: c.backlogMessages, taken: c.messagesRead, inFlight: c.receiver === null ? 0 : Math.max(0, balance.get(key(c.receiver)) ?? 0),
    })
  }
  return [...byName.values()]
}

function entryPid(name: string): number {
  const role = entryRole({ name, kind: 0 })
  return role.role === 'server' || role.role === 'reply' ? role.pid : 0
}
