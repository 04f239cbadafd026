/**
 * The tables of `ipc-bus ls` and `ipc-bus inspect` (their --json prints the
 * model as it is: ./model.ts).
 */
import { bytes, exact, localTime, pid, table } from './format.js'
import type { BusDetail, BusSummary } from './model.js'

const STATE_TEXT: Record<BusSummary['state'], string> = {
  live: 'live', dead: 'dead', empty: 'empty', building: 'building', 'half-built': 'half-built (dead)',
  unreadable: 'not readable', corrupt: 'corrupt', gone: 'gone', error: 'error',
}

export function stateText(bus: BusSummary): string {
  return `${STATE_TEXT[bus.state]}${bus.removed ? ', removed' : ''}`
}

/** `ipc-bus ls`: one line per bus, then a note for each that could not be read. */
export function renderList(buses: readonly BusSummary[]): string {
  if (buses.length === 0) return 'no buses found'
  const known = (b: BusSummary, n: number): string => (b.name === null ? '-' : String(n))
  const rows = buses.map((b) => [
    b.name ?? '?', String(b.id), b.key, b.mode, b.user, known(b, b.members.alive), known(b, b.members.dead),
    known(b, b.channels), known(b, b.topics), known(b, b.services), localTime(b.created), stateText(b),
  ])
  const out = [table([
    { head: 'NAME' }, { head: 'ID', right: true }, { head: 'KEY' }, { head: 'MODE' }, { head: 'OWNER' },
    { head: 'ALIVE', right: true }, { head: 'DEAD', right: true }, { head: 'CHANNELS', right: true }, { head: 'TOPICS', right: true },
    { head: 'SERVICES', right: true }, { head: 'CREATED' }, { head: 'STATE' },
  ], rows)]
  for (const b of buses) if (b.error !== null && b.state !== 'unreadable') out.push(`  segment ${b.id}: ${b.error}`)
  return out.join('\n')
}

/** `ipc-bus inspect`: the bus, then its members, channels (and their lanes), topics (lanes, subscribers) and services. */
export function renderDetail(d: BusDetail): string {
  const b = d.bus
  const out: string[] = []
  out.push(`bus ${b.name ?? '?'}: segment ${b.id}, key ${b.key}, mode ${b.mode}, owner ${b.user}, created ${localTime(b.created)} by pid ${b.creatorPid}, ${stateText(b)}`)
  if (b.error !== null) out.push(`  ${b.error}`)
  if (b.name === null) return out.join('\n')
  const plain = d.channels.filter((c) => c.role === 'channel')
  out.push(`${d.members.length} member(s), ${b.members.alive} alive; ${plain.length} channel(s), ${d.topics.length} topic(s), ${d.services.length} service(s)`)

  out.push('', 'MEMBERS')
  out.push(d.members.length === 0 ? '  (none)' : table(
    [{ head: 'SLOT', right: true }, { head: 'PID', right: true }, { head: 'ALIVE' }, { head: 'STARTED (ticks)', right: true }, { head: 'DOORBELL' }, { head: 'ROLES' }],
    d.members.map((m) => [String(m.slot), String(m.pid), m.alive ? 'yes' : 'no', String(m.startTime), m.doorbell, m.roles.join(', ') || '-']),
  ))

  if (d.channels.length > 0) {
    out.push('', 'CHANNELS')
    out.push(table(
      [{ head: 'NAME' }, { head: 'SEGMENT', right: true }, { head: 'RECEIVER' }, { head: 'LANES', right: true }, { head: 'RING' },
        { head: 'BACKLOG', right: true }, { head: 'BYTES', right: true }, { head: 'WRITTEN', right: true }, { head: 'READ', right: true },
        { head: 'FULL', right: true }, { head: 'DOORBELLS', right: true }, { head: 'PARKS', right: true }],
      d.channels.map((c) => [
        c.name, String(c.segmentId), c.receiver === null ? '-' : `${pid(c.receiver)}${c.receiverParked ? ' parked' : ''}`,
        `${c.lanesInUse}/${c.laneCount}`, bytes(c.capacity), exact(c.backlogMessages), bytes(c.backlogBytes), exact(c.messagesWritten),
        exact(c.messagesRead), exact(c.fullEvents), exact(c.doorbells), exact(c.parks),
      ]),
    ))
    const lanes = d.channels.flatMap((c) => c.lanes.map((l) => [
      c.name, String(l.lane), pid(l.owner), exact(l.backlogMessages), bytes(l.backlogBytes), exact(l.messagesWritten), bytes(l.bytesWritten),
      exact(l.messagesRead), exact(l.fullEvents), exact(l.doorbells),
    ]))
    if (lanes.length > 0) {
      out.push('', 'CHANNEL LANES')
      out.push(table(
        [{ head: 'CHANNEL' }, { head: 'LANE', right: true }, { head: 'OWNER' }, { head: 'BACKLOG', right: true }, { head: 'BYTES', right: true },
          { head: 'WRITTEN', right: true }, { head: 'WRITTEN BYTES', right: true }, { head: 'READ', right: true }, { head: 'FULL', right: true },
          { head: 'DOORBELLS', right: true }],
        lanes,
      ))
    }
  }

  if (d.topics.length > 0) {
    out.push('', 'TOPICS')
    out.push(table(
      [{ head: 'TOPIC' }, { head: 'SEGMENT', right: true }, { head: 'LANES', right: true }, { head: 'RING' }, { head: 'SUBSCRIBERS', right: true },
        { head: 'PUBLISHED', right: true }, { head: 'BYTES', right: true }, { head: 'FULL', right: true }, { head: 'DOORBELLS', right: true }],
      d.topics.map((t) => [
        t.name, String(t.segmentId), `${t.lanesInUse}/${t.laneCount}`, bytes(t.capacity), `${t.subscribers.length}/${t.slotCount}`,
        exact(t.messagesWritten), bytes(t.bytesWritten), exact(t.fullEvents), exact(t.doorbells),
      ]),
    ))
    const lanes = d.topics.flatMap((t) => t.lanes.map((l) => [
      t.name, String(l.lane), pid(l.owner), exact(l.messagesWritten), bytes(l.bytesWritten), exact(l.fullEvents), exact(l.doorbells),
    ]))
    if (lanes.length > 0) {
      out.push('', 'TOPIC LANES')
      out.push(table(
        [{ head: 'TOPIC' }, { head: 'LANE', right: true }, { head: 'OWNER' }, { head: 'PUBLISHED', right: true }, { head: 'BYTES', right: true },
          { head: 'FULL', right: true }, { head: 'DOORBELLS', right: true }],
        lanes,
      ))
    }
    const subs = d.topics.flatMap((t) => t.subscribers.map((s) => [
      t.name, String(s.slot), pid(s.owner), s.policy, s.state, `${bytes(s.maxLagBytes)}${s.lapped ? ' (lapped)' : ''}`,
      exact(s.messagesRead), exact(s.dropped), exact(s.laps), exact(s.parks),
    ]))
    if (subs.length > 0) {
      out.push('', 'SUBSCRIBERS')
      out.push(table(
        [{ head: 'TOPIC' }, { head: 'SLOT', right: true }, { head: 'PID' }, { head: 'POLICY' }, { head: 'STATE' }, { head: 'LAG', right: true },
          { head: 'READ', right: true }, { head: 'DROPPED', right: true }, { head: 'LAPS', right: true }, { head: 'PARKS', right: true }],
        subs,
      ))
    }
  }

  if (d.services.length > 0) {
    out.push('', 'SERVICES')
    out.push(table(
      [{ head: 'SERVICE' }, { head: 'CHANNEL' }, { head: 'SERVER' }, { head: 'QUEUED', right: true }, { head: 'TAKEN', right: true }, { head: 'IN FLIGHT', right: true }],
      d.services.flatMap((s) => s.servers.map((v) => [s.service, v.channel, pid(v), exact(v.queued), exact(v.taken), exact(v.inFlight)])),
    ))
  }

  const errors = [...d.channels.map((c) => [c.name, c.error] as const), ...d.topics.map((t) => [`topic ${t.name}`, t.error] as const)]
    .filter(([, e]) => e !== null)
  if (errors.length > 0) out.push('', 'NOT READ', ...errors.map(([what, e]) => `  ${what}: ${e}`))
  return out.join('\n')
}
