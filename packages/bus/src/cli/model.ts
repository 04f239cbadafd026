/**
 * What the command line reports about a bus, as plain data (printed as
 * tables, or as they are with --json), and the two small things every
 * report needs: who is alive (by pid + start time, asked once per report)
 * and what a directory entry's name says it is (a plain channel, a topic,
 * a server's or a client's channel: see ../patterns/names.ts).
 */
import type { Identity } from '@ipc/core'
import { isAlive } from '../liveness.js'
import { KIND_TOPIC } from '../naming.js'
import { REPLY_PREFIX, serverPrefix, topicEntryName } from '../patterns/names.js'

/**
 * live: a member is alive. dead: every member is gone (or, with none, its
 * creator). empty: no member yet, its creator alive (joining). building /
 * half-built: not initialised yet, its creator alive / gone. unreadable:
 * no read permission. corrupt: our magic, impossible contents. gone:
 * removed while we looked.
 */
export type BusState = 'live' | 'dead' | 'empty' | 'building' | 'half-built' | 'unreadable' | 'corrupt' | 'gone' | 'error'

export interface BusSummary {
  /** The directory segment's id. */
  id: number
  /** The System V key, hex ('0x5f879b32'; '0x0' for a private bus or one marked for removal). */
  key: string
  /** The name in the directory ('private:<pid>:<n>' for a private bus); null when it cannot be read. */
  name: string | null
  private: boolean | null
  /** Permission bits, octal ('0600'). */
  mode: string
  uid: number
  user: string
  /** Pid of the process that created the directory. */
  creatorPid: number
  /** When the directory was created (ISO 8601). */
  created: string
  state: BusState
  readable: boolean
  /** Every member gone (or abandoned half-built): what `ipc-bus gc` removes. */
  dead: boolean
  /** Marked for removal (by its last member, or rm) and still attached by someone. */
  removed: boolean
  members: { alive: number; dead: number }
  /** Plain channels (servers' and clients' channels count under services). */
  channels: number
  topics: number
  /** Distinct services with a server channel. */
  services: number
  error: string | null
}

/** A process named in shared memory, and whether it still runs. */
export interface Who {
  pid: number
  startTime: number
  alive: boolean
}

export interface MemberView extends Who {
  slot: number
  /** 'signal SIGRTMIN+4', 'pipe' or 'none'. */
  doorbell: string
  /** What it does on the bus: 'receiver(jobs)', 'sender(jobs)', 'server(math)', 'client', 'publisher(t)', 'subscriber(t)'. */
  roles: string[]
}

export interface Counters {
  messagesWritten: number
  bytesWritten: number
  fullEvents: number
  doorbells: number
}

export interface LaneView extends Counters {
  lane: number
  owner: Who | null
  messagesRead: number
  bytesRead: number
  /** Committed bytes not yet read (record headers included). */
  backlogBytes: number
  /** Messages written and not yet read (counters: may be late by a few). */
  backlogMessages: number
}

export interface ChannelView extends Counters {
  name: string
  segmentId: number
  /** 'server': a service's request channel; 'reply': a client's reply channel. */
  role: 'channel' | 'server' | 'reply'
  service: string | null
  capacity: number
  laneCount: number
  lanesInUse: number
  receiver: Who | null
  /** Whether the receiver is asleep until a doorbell (null without a receiver). */
  receiverParked: boolean | null
  parks: number
  drains: number
  rescues: number
  messagesRead: number
  bytesRead: number
  backlogBytes: number
  backlogMessages: number
  lanes: LaneView[]
  /** Why it could not be read (then the numbers are 0). */
  error: string | null
}

export interface TopicLaneView extends Counters {
  lane: number
  owner: Who | null
  /** The lane's write position (bytes, wraps at 2^32). */
  position: number
}

export interface SubscriberView {
  slot: number
  owner: Who | null
  state: 'active' | 'claiming'
  policy: 'block' | 'drop'
  /** Bytes published and not yet read, per lane in use. */
  lagBytes: number[]
  maxLagBytes: number
  /** A 'drop' subscriber a whole ring behind on some lane (it will count drops). */
  lapped: boolean
  messagesRead: number
  bytesRead: number
  dropped: number
  laps: number
  parks: number
}

export interface TopicView extends Counters {
  name: string
  segmentId: number
  capacity: number
  laneCount: number
  slotCount: number
  lanesInUse: number
  lanes: TopicLaneView[]
  subscribers: SubscriberView[]
  error: string | null
}

export interface ServerView {
  channel: string
  pid: number
  alive: boolean
  /** Requests waiting in its channel. */
  queued: number
  /** Requests it took from its channel. */
  taken: number
  /**
   * Requests its process took (from all its server channels) and has not
   * replied to yet; approximate, as lane counters outlive lane owners.
   */
  inFlight: number
}

export interface ServiceView {
  service: string
  servers: ServerView[]
}

export interface BusDetail {
  bus: BusSummary
  /** When it was read, ms since the epoch. */
  at: number
  members: MemberView[]
  channels: ChannelView[]
  topics: TopicView[]
  services: ServiceView[]
}

/** isAlive, asked once per identity for one report. */
export class Liveness {
  private readonly known = new Map<string, boolean>()

  alive(pid: number, startTime: number): boolean {
    const key = `${pid}:${startTime}`
    let alive = this.known.get(key)
    if (alive === undefined) {
      alive = isAlive(pid, startTime)
      this.known.set(key, alive)
    }
    return alive
  }

  who(id: Identity | null): Who | null {
    return id === null ? null : { pid: id.pid, startTime: id.startTime, alive: this.alive(id.pid, id.startTime) }
  }
}

/** What a directory entry is, by its kind and name. */
export type EntryRole =
  | { role: 'topic'; topic: string }
  | { role: 'server'; service: string; pid: number }
  | { role: 'reply'; pid: number }
  | { role: 'channel' }

const TOPIC_PREFIX = topicEntryName('')
/** serverPrefix(service) is `s:<service>:`: what comes before and after the service. */
const [SERVER_HEAD = '', SERVER_TAIL = ''] = serverPrefix('\0').split('\0')
const SERVER = new RegExp(`^${escape(SERVER_HEAD)}(.+)${escape(SERVER_TAIL)}(\\d+)\\.(\\d+)$`)
const REPLY = new RegExp(`^${escape(REPLY_PREFIX)}(\\d+)\\.(\\d+)$`)

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export function entryRole(entry: { name: string; kind: number }): EntryRole {
  if (entry.kind === KIND_TOPIC) return { role: 'topic', topic: entry.name.startsWith(TOPIC_PREFIX) ? entry.name.slice(TOPIC_PREFIX.length) : entry.name }
  const server = SERVER.exec(entry.name)
  if (server !== null) return { role: 'server', service: server[1]!, pid: Number(server[2]) }
  const reply = REPLY.exec(entry.name)
  if (reply !== null) return { role: 'reply', pid: Number(reply[1]) }
  return { role: 'channel' }
}
