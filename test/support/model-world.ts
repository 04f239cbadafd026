/**
 * The model of the model-based test (packages/bus/test/model.test.ts) and the real
 * processes it mirrors. One World per command sequence: one named bus, a
 * fresh runtimeDir, up to SLOTS agent processes (a slot killed or exited is
 * restarted by its next Open: joining after a crash), each with two Bus slots.
 *
 * What the model tracks: which Bus instances are open (and so whether the bus
 * exists at all), the channel objects of each instance (pause flag, its lane
 * generation: a channel closed and used again writes a new lane, so per-sender
 * order is per (instance, channel, generation)), the consumer holding each
 * channel's receiver claim, and every message sent with what the API answered:
 *   'must'  accepted (send resolved, trySend true, sendMany resolved): must be
 *           delivered exactly once, in per-sender order, while the bus lives
 *   'may'   outcome unknown (a rejected sendMany may have written a prefix)
 *   'not'   refused (trySend false, send rejected): nothing was written
 * When no instance is left, the bus is gone (removed by its last member, or
 * reclaimed by the next opener) and what it held is no longer owed ('may').
 * A consumer that dies (SIGKILL, process.exit without close) may take
 * messages off the ring with it: see model-check.ts for what that excuses.
 */
import { takeAgent, type AgentLine, type ModelAgent, type Reply } from './model-agents.js'

export const SLOTS = 3
export const CHANNELS = ['c0', 'c1'] as const
export type Kind = 'on' | 'once' | 'eventsOnce' | 'iter'
export type How = 'trySend' | 'send' | 'sendMany'
export type Status = 'must' | 'may' | 'not'

export interface Instance {
  key: string
  slot: number
  b: number
  doorbell: string
  chans: Map<string, ChanState>
}
export interface ChanState { gen: number; seq: number; paused: boolean; open: boolean; consumer: Consumer | null }
export interface Consumer {
  id: number
  c: string
  kind: Kind
  limit: number
  inst: Instance
  label: string
  got: number
  /** The agent said it finished (once fired, loop ended). */
  finished: boolean
  ended: null | 'clean' | 'crash'
  endedAt: number
  why: string
}
export interface Sent { c: string; status: Map<number, Status>; at: Map<number, number> }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export class World {
  readonly agents: Array<ModelAgent | null> = Array.from({ length: SLOTS }, () => null)
  readonly inst: Array<Array<Instance | null>> = Array.from({ length: SLOTS }, () => [null, null])
  readonly consumers: Consumer[] = []
  /** The consumer holding each channel's receiver claim, as the model sees it (a dead one included). */
  readonly holder = new Map<string, Consumer>()
  readonly sent = new Map<string, Sent>()
  readonly delivered = new Map<string, Array<{ s: number; by: number }>>()
  readonly failures: string[] = []
  readonly log: string[] = []
  /** Every agent pid of this World (leak checks and clean-up look for segments they created). */
  readonly all: ModelAgent[] = []
  readonly startedAt = Date.now()
  step = 0
  /** Something died without closing: its leftovers are reclaimed by the next use (see shutdown()). */
  crashed = false
  private incarnations = Array.from({ length: SLOTS }, () => 0)
  private instances = 0

  constructor(readonly name: string, readonly runtimeDir: string) {}

  // ------------------------------------------------------------ bookkeeping

  fail(message: string): never {
    throw new Error(`${message}\n--- bus ${this.name}, what ran:\n${this.log.join('\n')}`)
  }

  assertHealthy(): void {
    if (this.failures.length > 0) this.fail(this.failures.join('\n'))
  }

  note(line: string): void {
    this.log.push(`${String(this.step).padStart(3)} ${line}`)
  }

  liveInstances(): Instance[] {
    return this.inst.flat().filter((i): i is Instance => i !== null)
  }

  chan(inst: Instance, c: string): ChanState {
    let st = inst.chans.get(c)
    if (st === undefined) inst.chans.set(c, (st = { gen: 0, seq: 0, paused: false, open: true, consumer: null }))
    if (!st.open) Object.assign(st, { gen: st.gen + 1, seq: 0, paused: false, open: true, consumer: null })
    return st
  }

  private agentOf(inst: Instance): ModelAgent {
    return this.agents[inst.slot]!
  }

  spawn(label: string): ModelAgent {
    const agent = takeAgent(label, (a, line) => this.onLine(a, line))
    this.all.push(agent)
    void agent.closed.then(() => {
      if (!agent.expectExit) this.failures.push(`${agent.describe()}\n  died though nothing killed it or told it to exit`)
    })
    return agent
  }

  private onLine(agent: ModelAgent, line: AgentLine): void {
    if (line.d !== undefined) {
      const cons = this.consumers[line.d]
      if (cons === undefined) this.failures.push(`${agent.label}: delivery to unknown consumer ${line.d}`)
      else cons.got++
      let list = this.delivered.get(line.f!)
      if (list === undefined) this.delivered.set(line.f!, (list = []))
      list.push({ s: line.s!, by: line.d })
    } else if (line.ev === 'end') {
      const cons = this.consumers[line.id!]
      if (cons === undefined) return
      cons.finished = true
      this.endConsumer(cons, 'clean', cons.kind === 'iter' ? `for-await ended after ${cons.got}` : 'once fired')
      if (line['held'] === true) {
        this.failures.push(`consumer #${cons.id} (${cons.label} ${cons.kind} on ${cons.c}) finished, but its channel still holds the receiver claim 20 ms later: the last consumer left and nobody else can receive`)
      }
    } else if (line.ev === 'error' && line['code'] === 'ERR_PEER_GONE' && this.deadClaimPossible(String(line['c']))) {
      // A deferred publish found the receiver dead: the messages stay in the ring for the next one.
      this.note(`    (${agent.label}/b${String(line['b'])} 'error' on ${String(line['c'])}: PeerGone, its receiver died)`)
    } else {
      this.failures.push(`${agent.label}: ${JSON.stringify(line)}`)
    }
  }

  /**
   * May the claim on c be held by a dead process? Yes once a consumer of c died
   * holding it. (A finite consumer is seen finished only after its channel
   * gave the claim back: see 'end' in model-agent.ts.)
   */
  deadClaimPossible(c: string): boolean {
    return this.consumers.some((k) => k.c === c && k.ended === 'crash')
  }

  endConsumer(cons: Consumer | null, how: 'clean' | 'crash', why: string): void {
    if (cons === null || cons.ended !== null) return
    cons.ended = how
    cons.endedAt = this.step
    cons.why = why
    const st = cons.inst.chans.get(cons.c)
    if (st?.consumer === cons) st.consumer = null
    if (how === 'clean' && this.holder.get(cons.c) === cons) this.holder.delete(cons.c)
  }

  private endInstance(inst: Instance, how: 'clean' | 'crash', why: string): void {
    for (const st of inst.chans.values()) this.endConsumer(st.consumer, how, why)
    this.inst[inst.slot]![inst.b] = null
  }

  /** When no instance is left the bus is gone, and what it held with it. */
  private afterLeaving(): void {
    if (this.liveInstances().length > 0) return
    let dropped = 0
    for (const [sender, sent] of this.sent) {
      const got = new Set((this.delivered.get(sender) ?? []).map((d) => d.s))
      for (const [s, status] of sent.status) {
        if (status !== 'must') continue
        sent.status.set(s, 'may')
        if (!got.has(s)) dropped++
      }
    }
    this.holder.clear()
    this.note(`    (no member left: the bus is gone${dropped > 0 ? `, with ${dropped} accepted message(s) never delivered, no longer owed` : ''})`)
  }

  /** Accepted-or-maybe messages of channel c not seen delivered yet. */
  pendingOn(c: string): number {
    let n = 0
    for (const [sender, sent] of this.sent) {
      if (sent.c !== c) continue
      const got = new Set((this.delivered.get(sender) ?? []).map((d) => d.s))
      for (const [s, status] of sent.status) if (status !== 'not' && !got.has(s)) n++
    }
    return n
  }

  /** Waits (bounded) for a finite consumer to finish when the messages it needs are there to take. */
  async settle(cons: Consumer): Promise<void> {
    const deadline = Date.now() + 1000
    while (cons.ended === null && Date.now() < deadline) {
      const st = cons.inst.chans.get(cons.c)
      if (st?.paused || !this.agentOf(cons.inst)?.alive || this.pendingOn(cons.c) < cons.limit - cons.got) return
      await sleep(5)
    }
  }

  history(c: string): string {
    const list = this.consumers.filter((k) => k.c === c).map((k) => `#${k.id} ${k.label} ${k.kind}${k.kind === 'iter' ? `(${k.limit})` : ''}: ${k.ended === null ? 'active' : `${k.ended}, ${k.why} at step ${k.endedAt}`}, got ${k.got}`)
    return list.length === 0 ? `nobody ever listened on ${c}` : list.join('; ')
  }

  private expectOk(what: string, r: Reply): any {
    if (r.err !== undefined) this.fail(`${what}: ${r.err.code}: ${r.err.message}`)
    return r.ok
  }

  // ------------------------------------------------------------ commands

  async open(a: number, b: number, doorbell: 'signal' | 'pipe'): Promise<void> {
    let agent = this.agents[a]!
    if (agent === null || !agent.alive) agent = this.agents[a] = this.spawn(`A${a}.${++this.incarnations[a]!}`)
    const expected = this.liveInstances().length > 0 ? 'opened' : 'created'
    const got = this.expectOk(`${agent.label} open`, await agent.call('open', { b, doorbell, name: this.name, runtimeDir: this.runtimeDir }))
    const key = `i${++this.instances}`
    this.note(`${agent.label}/b${b} open ${doorbell} -> ${got} (${key})`)
    if (got !== expected) this.fail(`open: Bus.${got === 'created' ? 'open said NoSuchBus' : 'open found a bus'}, but the model ${expected === 'opened' ? 'has live members' : 'has no member left (the bus should be gone)'}`)
    this.inst[a]![b] = { key, slot: a, b, doorbell, chans: new Map() }
  }

  async closeBus(inst: Instance): Promise<void> {
    this.expectOk('bus.close()', await this.agentOf(inst).call('closeBus', { b: inst.b }))
    this.note(`${this.agentOf(inst).label}/b${inst.b} bus.close()`)
    this.endInstance(inst, 'clean', 'bus.close()')
    this.afterLeaving()
  }

  async send(inst: Instance, c: string, how: How, n: number): Promise<void> {
    const agent = this.agentOf(inst)
    const st = this.chan(inst, c)
    const sender = `${inst.key}/${c}#${st.gen}`
    const s0 = st.seq
    st.seq += n
    let sent = this.sent.get(sender)
    if (sent === undefined) this.sent.set(sender, (sent = { c, status: new Map(), at: new Map() }))
    for (let i = 0; i < n; i++) { sent.status.set(s0 + i, 'may'); sent.at.set(s0 + i, this.step) }
    const outcomes = this.expectOk(`${how} on ${c}`, await agent.call('send', { b: inst.b, c, f: sender, s0, n, how })) as string[]
    const summary = new Map<string, number>()
    for (let i = 0; i < n; i++) {
      const outcome = outcomes[how === 'sendMany' ? 0 : i]!
      summary.set(outcome, (summary.get(outcome) ?? 0) + 1)
      if (outcome === 'ok') sent.status.set(s0 + i, 'must')
      else if (outcome === 'full' || outcome === 'ERR_CHANNEL_FULL' || outcome === 'ERR_PEER_GONE') sent.status.set(s0 + i, how === 'sendMany' ? 'may' : 'not')
      else this.fail(`${agent.label}/b${inst.b} ${how} on ${c}: unexpected outcome ${outcome}`)
    }
    this.note(`${agent.label}/b${inst.b} ${how} ${c} ${sender} #${s0}..${s0 + n - 1} -> ${[...summary].map(([k, v]) => `${k} x${v}`).join(', ')}`)
    if (summary.has('ERR_PEER_GONE') && !this.deadClaimPossible(c)) {
      this.fail(`${how} on ${c}: PeerGone, but the receiver of ${c} is not dead in the model (${this.history(c)})`)
    }
  }

  /** Returns false when skipped (this instance still has a consumer on c that did not finish). */
  async listen(inst: Instance, c: string, kind: Kind, limit: number): Promise<boolean> {
    const agent = this.agentOf(inst)
    const st = this.chan(inst, c)
    if (st.consumer !== null) await this.settle(st.consumer)
    if (st.consumer !== null) return false
    let h = this.holder.get(c)
    if (h !== undefined && h.ended === null && h.kind !== 'on') await this.settle(h)
    h = this.holder.get(c)
    const busy = h !== undefined && h.ended === null
    const maybeDone = busy && h!.kind !== 'on'
    const finite = kind === 'iter' ? limit : kind === 'on' ? Infinity : 1
    const cons: Consumer = { id: this.consumers.length, c, kind, limit: finite, inst, label: `${agent.label}/b${inst.b}`, got: 0, finished: false, ended: null, endedAt: -1, why: '' }
    this.consumers.push(cons)
    const r = await agent.call('listen', { b: inst.b, c, cid: cons.id, kind, limit: finite === Infinity ? 0 : finite })
    this.note(`${cons.label} listen ${c} ${kind}${kind === 'iter' ? `(break after ${limit})` : ''} as #${cons.id} -> ${r.err?.code ?? 'ok'}`)
    if (r.err !== undefined) {
      this.endConsumer(cons, 'clean', 'its claim failed')
      if (r.err.code === 'ERR_CHANNEL_BUSY' && busy) return true
      if (r.err.code === 'ERR_CHANNEL_BUSY') this.fail(`listen on ${c}: ChannelBusy, but nobody receives on ${c} in the model (${this.history(c)})`)
      this.fail(`listen on ${c}: ${r.err.code}: ${r.err.message}`)
    }
    if (busy && !maybeDone) this.fail(`listen on ${c} by ${cons.label} succeeded while ${h!.label} (#${h!.id}) receives on it`)
    if (busy) this.endConsumer(h!, 'clean', 'finished (seen by a later claim)')
    if (cons.ended === null) { // (a once may have fired before the answer came)
      st.consumer = cons
      this.holder.set(c, cons)
    }
    return true
  }

  async unlisten(cons: Consumer): Promise<void> {
    this.expectOk('unlisten', await this.agentOf(cons.inst).call('unlisten', { b: cons.inst.b, c: cons.c }))
    this.note(`${cons.label} ${cons.kind === 'eventsOnce' ? 'abort events.once' : "off('message')"} ${cons.c} (#${cons.id})`)
    this.endConsumer(cons, 'clean', cons.kind === 'eventsOnce' ? 'events.once aborted' : "off('message')")
  }

  async pause(inst: Instance, c: string, paused: boolean): Promise<void> {
    this.expectOk(paused ? 'pause' : 'resume', await this.agentOf(inst).call(paused ? 'pause' : 'resume', { b: inst.b, c }))
    this.note(`${this.agentOf(inst).label}/b${inst.b} ${paused ? 'pause' : 'resume'} ${c}`)
    this.chan(inst, c).paused = paused
  }

  async closeChannel(inst: Instance, c: string): Promise<void> {
    this.expectOk('channel.close()', await this.agentOf(inst).call('closeChannel', { b: inst.b, c }))
    this.note(`${this.agentOf(inst).label}/b${inst.b} channel ${c} close()`)
    const st = this.chan(inst, c)
    this.endConsumer(st.consumer, 'clean', 'channel.close()')
    st.open = false
  }

  async exit(a: number, close: boolean): Promise<void> {
    const agent = this.agents[a]!
    agent.expectExit = true
    const r = await agent.call('exit', { close }).catch((err: Error) => this.fail(`exit: ${err.message}`))
    await agent.closed
    this.note(`${agent.label} ${close ? 'close both buses, ' : ''}process.exit(0) -> ${agent.ended!.signal ?? agent.ended!.code}`)
    this.expectOk('exit', r)
    if (agent.ended!.code !== 0 || agent.ended!.signal !== null) this.fail(`${agent.describe()}: process.exit(0) did not end it with code 0`)
    if (!close) this.crashed ||= this.inst[a]!.some((i) => i !== null)
    for (const i of this.inst[a]!) if (i !== null) this.endInstance(i, close ? 'clean' : 'crash', close ? 'exit after close' : 'process.exit without close')
    this.afterLeaving()
  }

  async kill(a: number): Promise<void> {
    const agent = this.agents[a]!
    await agent.kill()
    this.note(`${agent.label} SIGKILL`)
    this.crashed = true
    for (const i of this.inst[a]!) if (i !== null) this.endInstance(i, 'crash', 'SIGKILL')
    this.afterLeaving()
  }
}
