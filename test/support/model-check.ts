/**
 * The end of every command sequence of the model-based test: make a live
 * instance receive on every channel that still owes messages, wait for them,
 * check exactly-once and per-sender order, then close everything and check
 * that nothing is left (segments, FIFOs) and that every process ended as
 * told. dispose() cleans up after any outcome.
 */
import { readdirSync, rmSync } from 'node:fs'
import { busKey } from '@ipc/bus'
import { listSegments, removeSegment, type SegmentInfo } from './leaks.js'
import { CHANNELS, type Consumer, type World } from './model-world.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
/**
 * The final phase waits for everything owed while deliveries keep coming, and
 * reports a stall once none came for STALL_MS (the backstop timer is off: a
 * lost wakeup never recovers), or after DELIVERY_DEADLINE_MS in all.
 */
const STALL_MS = 2000
const DELIVERY_DEADLINE_MS = 15_000

/** "0-3,7,9-10" */
function ranges(seqs: number[]): string {
  const sorted = [...seqs].sort((x, y) => x - y)
  const parts: string[] = []
  for (let i = 0; i < sorted.length;) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return parts.join(',')
}

/** Messages owed (must) and not seen delivered, per sender. */
export function missing(w: World): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const [sender, sent] of w.sent) {
    const got = new Set((w.delivered.get(sender) ?? []).map((d) => d.s))
    const lost = [...sent.status].filter(([s, st]) => st === 'must' && !got.has(s)).map(([s]) => s)
    if (lost.length > 0) out.set(sender, lost)
  }
  return out
}

/**
 * A message missing at the end is excused only when a consumer of its channel
 * died (SIGKILL, process.exit without close) after it was accepted, and it sits
 * exactly where that consumer would have taken it: everything of this sender
 * delivered before it was delivered by that consumer or earlier ones, and
 * everything after it by later ones.
 */
function excused(w: World, c: string, seq: number, at: number, dels: Array<{ s: number; by: number }>): Consumer | undefined {
  return w.consumers.find((k) => k.c === c && k.ended === 'crash' && k.endedAt >= at &&
    dels.every((d) => (d.s < seq ? d.by <= k.id : d.by > k.id)))
}

/** Exactly once, per-sender order, nothing refused delivered, nothing owed missing. */
export function checkDeliveries(w: World): string[] {
  const problems: string[] = []
  for (const [sender, dels] of w.delivered) {
    if (!w.sent.has(sender)) problems.push(`phantom: messages from ${sender} (never sent) delivered: ${ranges(dels.map((d) => d.s))}`)
  }
  for (const [sender, sent] of w.sent) {
    const dels = w.delivered.get(sender) ?? []
    const count = new Map<number, number>()
    for (const d of dels) count.set(d.s, (count.get(d.s) ?? 0) + 1)
    const twice = [...count].filter(([, n]) => n > 1).map(([s]) => s)
    if (twice.length > 0) {
      const by = dels.filter((d) => twice.includes(d.s)).map((d) => `#${d.s} by #${d.by}`).slice(0, 12).join(', ')
      problems.push(`${sent.c}: messages from ${sender} delivered more than once: ${ranges(twice)} (${by}); consumers: ${w.history(sent.c)}`)
    }
    const refused = [...count.keys()].filter((s) => sent.status.get(s) === 'not')
    if (refused.length > 0) problems.push(`${sent.c}: messages from ${sender} that the API refused (trySend false / send rejected) were delivered: ${ranges(refused)}`)
    const unknown = [...count.keys()].filter((s) => !sent.status.has(s))
    if (unknown.length > 0) problems.push(`${sent.c}: messages from ${sender} never sent were delivered: ${ranges(unknown)}`)
    // Per-sender order: consumers of a channel hold it one after the other, so
    // by consumer (in claim order), then in arrival order, seqs must rise.
    const ordered = [...dels].sort((x, y) => x.by - y.by)
    for (let i = 1; i < ordered.length; i++) {
      if (ordered[i]!.s <= ordered[i - 1]!.s && count.get(ordered[i]!.s) === 1) {
        problems.push(`${sent.c}: messages from ${sender} out of order: #${ordered[i]!.s} (consumer #${ordered[i]!.by}) after #${ordered[i - 1]!.s} (consumer #${ordered[i - 1]!.by})`)
        break
      }
    }
    const lost = [...sent.status].filter(([s, st]) => st === 'must' && !count.has(s)).map(([s]) => s)
    const unexcused = lost.filter((s) => excused(w, sent.c, s, sent.at.get(s)!, dels) === undefined)
    if (unexcused.length > 0) {
      problems.push(`${sent.c}: accepted from ${sender} but never delivered: ${ranges(unexcused)} (delivered: ${ranges(dels.map((d) => d.s)) || 'none'}); consumers: ${w.history(sent.c)}`)
    }
  }
  return problems
}

/** Makes a live consumer with a 'message' listener, not paused, receive on channel c. */
async function ensureReceiver(w: World, c: string): Promise<void> {
  let h = w.holder.get(c)
  if (h !== undefined && h.ended === null && h.kind !== 'on') await w.settle(h)
  h = w.holder.get(c)
  if (h !== undefined && h.ended === null && h.kind !== 'on') {
    w.note('final: a finite consumer still holds the channel: close it')
    await w.closeChannel(h.inst, c)
    h = undefined
  }
  if (h !== undefined && h.ended === null) {
    if (h.inst.chans.get(c)?.paused) await w.pause(h.inst, c, false)
    return
  }
  const inst = w.liveInstances()[0]
  if (inst === undefined) w.fail(`final: messages owed on ${c} but no member is left`)
  if (w.chan(inst, c).paused) await w.pause(inst, c, false)
  if (!await w.listen(inst, c, 'on', 0)) w.fail(`final: could not listen on ${c}`)
}

/** The final phase: receive everything owed, then check. */
export async function finish(w: World): Promise<void> {
  w.step++
  w.assertHealthy()
  const owing = new Set([...missing(w).keys()].map((sender) => w.sent.get(sender)!.c))
  for (const c of CHANNELS) if (owing.has(c)) await ensureReceiver(w, c)
  const deadline = Date.now() + DELIVERY_DEADLINE_MS
  let seen = -1
  let progressAt = Date.now()
  for (;;) {
    w.assertHealthy()
    const owed = missing(w)
    if (owed.size === 0 || Date.now() > deadline || Date.now() - progressAt > STALL_MS) break
    const n = w.consumers.reduce((sum, k) => sum + k.got, 0)
    if (n !== seen) { seen = n; progressAt = Date.now() }
    await sleep(10)
  }
  await sleep(30) // anything delivered twice shows up now
  w.assertHealthy()
  const stalled = missing(w).size > 0
    ? [`(the final phase had a live, unpaused 'message' listener on every channel owing messages; nothing more arrived for ${STALL_MS} ms; the backstop timer is off)`]
    : []
  const problems = checkDeliveries(w)
  if (problems.length > 0) w.fail([...problems, ...stalled].join('\n'))
  for (const inst of w.liveInstances()) {
    const r = await w.agents[inst.slot]!.call('stats', { b: inst.b })
    const rescued = ((r.ok ?? []) as Array<{ name: string; backstopRescues?: number }>).filter((s) => (s.backstopRescues ?? 0) > 0)
    if (rescued.length > 0) w.fail(`backstop rescues (lost wakeups) on ${inst.key}: ${rescued.map((s) => `${s.name}: ${s.backstopRescues}`).join(', ')}`)
  }
}

/**
 * Every live agent closes its buses and exits (code 0 expected). If anything
 * died without closing, a janitor process uses the bus once more (open with a
 * pipe doorbell and receive: the next use reclaims a dead bus and stale
 * FIFOs), then nothing may be left: no segment at the bus's key, none created
 * by any agent, no FIFO in the runtimeDir.
 */
export async function shutdown(w: World): Promise<void> {
  w.step++
  await Promise.all(w.agents.map((agent, a) => (agent?.alive ? w.exit(a, true) : undefined)))
  if (w.crashed) {
    const janitor = w.agents[0] = w.spawn('janitor')
    await w.open(0, 0, 'pipe')
    const inst = w.inst[0]![0]!
    if (!await w.listen(inst, 'janitor', 'on', 0)) w.fail('janitor could not listen')
    await w.exit(0, true)
    void janitor
  }
  w.assertHealthy()
  const leaks: string[] = []
  for (const seg of ours(w)) {
    const key = busKey(w.name) | 0
    if ((seg.key | 0) === key && key !== 0) leaks.push(`the bus directory (shmid ${seg.shmid}, ${seg.bytes} B, nattch ${seg.nattch})`)
    else leaks.push(`segment shmid ${seg.shmid} (${seg.bytes} B, nattch ${seg.nattch}) created by agent pid ${seg.cpid}`)
  }
  for (const entry of readdirSync(w.runtimeDir)) leaks.push(`${w.runtimeDir}/${entry}`)
  if (leaks.length > 0) w.fail(`left behind once every member closed:\n  ${leaks.join('\n  ')}`)
}

/** Segments at the bus's key, or created by one of its agents since the World began. */
function ours(w: World): SegmentInfo[] {
  const key = busKey(w.name) | 0
  const pids = new Set(w.all.map((a) => a.pid))
  const since = Math.floor(w.startedAt / 1000) - 1
  return listSegments().filter((s) => (key !== 0 && (s.key | 0) === key) || (pids.has(s.cpid) && s.ctime >= since))
}

/** Always: kill what runs, remove what this World's agents created, the runtimeDir. */
export async function dispose(w: World): Promise<void> {
  await Promise.all(w.all.map((a) => a.kill()))
  for (const seg of ours(w)) removeSegment(seg.shmid)
  rmSync(w.runtimeDir, { recursive: true, force: true })
}
