/**
 * Rates for `ipc-bus top`, from successive inspections of one bus, through
 * the same RateMeter that bus.stats() uses (../rates.ts): one meter per
 * series of counters, over the refresh interval. A channel or topic is
 * matched by its segment id, a lane by its index, a subscriber by its slot
 * and owner; a new one has no rate on its first refresh (null, printed
 * '-'), nor has one that could not be read.
 */
import { RateMeter } from '../rates.js'
import { bytes, count, localTime, pid, table } from './format.js'
import type { BusDetail, BusSummary, Who } from './model.js'

export interface LaneRate {
  lane: number
  owner: Who | null
  messagesPerSec: number | null
  bytesPerSec: number | null
  fullPerSec: number | null
  backlogMessages: number | null
  backlogBytes: number | null
}

export interface ChannelRate extends LaneRate {
  name: string
  segmentId: number
  readPerSec: number | null
  parksPerSec: number | null
  lanes: LaneRate[]
}

export interface SubscriberRate {
  slot: number
  owner: Who | null
  policy: 'block' | 'drop'
  readPerSec: number | null
  droppedPerSec: number | null
  maxLagBytes: number
}

export interface TopicRate extends LaneRate {
  name: string
  segmentId: number
  lanes: LaneRate[]
  subscribers: SubscriberRate[]
}

export interface TopSample {
  bus: BusSummary
  /** When the later inspection was taken (ISO 8601) and seconds since the one before. */
  at: string
  seconds: number
  channels: ChannelRate[]
  topics: TopicRate[]
}

/** The meters of one `top` run, by series. */
export class TopMeters {
  private readonly meters = new Map<string, RateMeter>()
  private last: number | null = null

  constructor(private readonly windowMs: number) {}

  /** Rates of `values` (cumulative counters) of series `key` at `at` ms; nulls until the series has a sample to compare with. */
  private rate(key: string, values: readonly number[], at: number): Array<number | null> {
    let meter = this.meters.get(key)
    if (meter === undefined) this.meters.set(key, meter = new RateMeter(this.windowMs))
    return meter.sample(values, at) ?? values.map(() => null)
  }

  /** Feeds one inspection; returns the rates since the one before (all null for the first). */
  update(d: BusDetail): TopSample {
    const at = d.at
    const seconds = this.last === null ? 0 : (at - this.last) / 1000
    this.last = at
    const channels = d.channels.map((c): ChannelRate => {
      const key = `c${c.segmentId}`
      const ok = c.error === null
      const [messagesPerSec = null, bytesPerSec = null, fullPerSec = null, readPerSec = null, parksPerSec = null] = ok
        ? this.rate(key, [c.messagesWritten, c.bytesWritten, c.fullEvents, c.messagesRead, c.parks], at) : []
      return {
        lane: -1, owner: c.receiver, name: c.name, segmentId: c.segmentId, messagesPerSec, bytesPerSec, fullPerSec, readPerSec, parksPerSec,
        backlogMessages: ok ? c.backlogMessages : null, backlogBytes: ok ? c.backlogBytes : null,
        lanes: c.lanes.map((l): LaneRate => {
          const [lm = null, lb = null, lf = null] = this.rate(`${key}.${l.lane}`, [l.messagesWritten, l.bytesWritten, l.fullEvents], at)
          return { lane: l.lane, owner: l.owner, messagesPerSec: lm, bytesPerSec: lb, fullPerSec: lf, backlogMessages: l.backlogMessages, backlogBytes: l.backlogBytes }
        }),
      }
    })
    const topics = d.topics.map((t): TopicRate => {
      const key = `t${t.segmentId}`
      const [messagesPerSec = null, bytesPerSec = null, fullPerSec = null] = t.error === null
        ? this.rate(key, [t.messagesWritten, t.bytesWritten, t.fullEvents], at) : []
      return {
        lane: -1, owner: null, name: t.name, segmentId: t.segmentId, messagesPerSec, bytesPerSec, fullPerSec, backlogMessages: null, backlogBytes: null,
        lanes: t.lanes.map((l): LaneRate => {
          const [lm = null, lb = null, lf = null] = this.rate(`${key}.${l.lane}`, [l.messagesWritten, l.bytesWritten, l.fullEvents], at)
          return { lane: l.lane, owner: l.owner, messagesPerSec: lm, bytesPerSec: lb, fullPerSec: lf, backlogMessages: null, backlogBytes: null }
        }),
        subscribers: t.subscribers.map((s): SubscriberRate => {
          const [readPerSec = null, droppedPerSec = null] = this.rate(`${key}.s${s.slot}.${s.owner?.pid}.${s.owner?.startTime}`, [s.messagesRead, s.dropped], at)
          return { slot: s.slot, owner: s.owner, policy: s.policy, maxLagBytes: s.maxLagBytes, readPerSec, droppedPerSec }
        }),
      }
    })
    return { bus: d.bus, at: new Date(at).toISOString(), seconds, channels, topics }
  }
}

const n = (v: number | null): string => (v === null ? '-' : count(v))
const b = (v: number | null): string => (v === null ? '-' : bytes(v))

/** One refresh of `top` as tables. */
export function renderRates(s: TopSample, refresh: string): string {
  const out = [
    `ipc-bus top ${s.bus.name ?? '?'}: segment ${s.bus.id}, ${s.bus.members.alive} member(s) alive, ${localTime(s.at)}, ` +
    `over ${s.seconds.toFixed(1)} s (${refresh})`,
  ]
  const rows: string[][] = []
  for (const c of s.channels) {
    rows.push([c.name, '*', pid(c.owner), n(c.messagesPerSec), `${b(c.bytesPerSec)}/s`, n(c.readPerSec), n(c.backlogMessages), b(c.backlogBytes), n(c.parksPerSec), n(c.fullPerSec)])
    for (const l of c.lanes) {
      if (l.owner === null && !l.messagesPerSec && !l.backlogBytes) continue
      rows.push(['', String(l.lane), pid(l.owner), n(l.messagesPerSec), `${b(l.bytesPerSec)}/s`, '', n(l.backlogMessages), b(l.backlogBytes), '', n(l.fullPerSec)])
    }
  }
  if (rows.length > 0) {
    out.push('', table([
      { head: 'CHANNEL' }, { head: 'LANE', right: true }, { head: 'RECEIVER/OWNER' }, { head: 'MSG/S', right: true }, { head: 'BYTES/S', right: true },
      { head: 'READ/S', right: true }, { head: 'BACKLOG', right: true }, { head: 'BYTES', right: true }, { head: 'PARKS/S', right: true },
      { head: 'FULL/S', right: true },
    ], rows))
  }
  const topicRows: string[][] = []
  const subRows: string[][] = []
  for (const t of s.topics) {
    topicRows.push([t.name, '*', `${t.subscribers.length} subscriber(s)`, n(t.messagesPerSec), `${b(t.bytesPerSec)}/s`, n(t.fullPerSec)])
    for (const l of t.lanes) topicRows.push(['', String(l.lane), pid(l.owner), n(l.messagesPerSec), `${b(l.bytesPerSec)}/s`, n(l.fullPerSec)])
    for (const sub of t.subscribers) subRows.push([t.name, String(sub.slot), pid(sub.owner), sub.policy, n(sub.readPerSec), bytes(sub.maxLagBytes), n(sub.droppedPerSec)])
  }
  if (topicRows.length > 0) {
    out.push('', table([
      { head: 'TOPIC' }, { head: 'LANE', right: true }, { head: 'PUBLISHER' }, { head: 'MSG/S', right: true }, { head: 'BYTES/S', right: true },
      { head: 'FULL/S', right: true },
    ], topicRows))
  }
  if (subRows.length > 0) {
    out.push('', table([
      { head: 'TOPIC' }, { head: 'SLOT', right: true }, { head: 'SUBSCRIBER' }, { head: 'POLICY' }, { head: 'READ/S', right: true },
      { head: 'LAG', right: true }, { head: 'DROPPED/S', right: true },
    ], subRows))
  }
  if (rows.length === 0 && topicRows.length === 0) out.push('', '(no channels or topics)')
  return out.join('\n')
}
