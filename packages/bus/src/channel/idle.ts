/**
 * How a receiver waits when it finds nothing: the idle strategy (after
 * agrona's IdleStrategy: waiting is a policy, not inlined in the loop).
 *
 *   drained something  -> continue: a microtask while spinning is hot
 *                         (at most HOT_RUNS runs or MAX_PER_RUN records in
 *                         a row), else the next event-loop turn
 *   found nothing      -> spin polling the lanes (IdleStrategy: spinMicros
 *                         every time, or 'adaptive'), then park
 *   parked             -> sleep until a doorbell, or the exit of a lane
 *                         owner (../owner-watch.ts); the backstop looks at
 *                         the lanes every 30 s (without pidfds: 250 ms
 *                         after parking, then every 2 s)
 *
 * A spinning receiver continues as a microtask because a full event-loop
 * turn (epoll and the timers phase) costs more than a whole round trip.
 * The exit watch covers the one hole of the parking protocol, a sender
 * killed between winning the right to ring and ringing; the backstop what
 * it cannot see (docs/design.md, "The parking protocol").
 */
import type { DataSource } from '@ipc/core'
import { clockMs } from './clock.js'
import { cpuToSpare } from './cpus.js'

/** Runs of a spinning receiver in a row that skip the event loop. */
export const HOT_RUNS = 64
/** Most records one run delivers before yielding (also the hot-run budget). */
export const MAX_PER_RUN = 4096
/**
 * When a parked receiver first looks at its lanes, and how often after that
 * (ms). Not a doubling backoff: each look is a wakeup of a process that
 * slept, which costs ~0.4 ms of CPU on the bench machine (cold caches; a
 * 10 ms timer costs 47 µs a wake), so the number of looks in the seconds
 * after traffic is what idle CPU measures (docs/design.md, "The parking
 * protocol").
 */
export const PARKED_CHECK_MS = 250
export const PARKED_CHECK_MAX_MS = 2000
/**
 * The backstop's one interval while every lane owner is watched for its
 * exit (../owner-watch.ts): what is left to it is a worker thread of a
 * sender's process terminated between its commit and its ring, and what
 * nobody foresaw. Each look wakes a sleeping process (~1.3 ms of CPU here,
 * docs/design.md): every 30 s is 0.004 % of a core.
 */
export const WATCHED_CHECK_MS = 30_000

/** A settled promise: its then() queues a microtask without queueMicrotask()'s per-call AsyncResource. */
export const resolved = Promise.resolve()

/** Busy-polls `source` for `micros` microseconds; true when data arrived. The clock is read every 16 polls. */
export function spinFor(source: DataSource, micros: number): boolean {
  if (micros === 0) return false
  const deadline = clockMs() + micros / 1000
  for (;;) {
    for (let i = 0; i < 16; i++) if (source.hasData()) return true
    if (clockMs() >= deadline) return false
  }
}

/** How long an 'adaptive' receiver spins before parking (µs), and how recent a message must be for it to (ms). */
export const ADAPTIVE_SPIN_MICROS = 100
export const ADAPTIVE_WINDOW_MS = 1

/**
 * A run that delivered records after a quiet gap this long (ms) was a lone
 * message (a request, a reply, an event), not part of a stream.
 */
export const LONE_GAP_MS = 0.5

/** Empty turns in a row after which single messages park at once (IdleStrategy.parkAfter). */
export const EMPTY_TURNS = 2

/**
 * Spin or park, after agrona's BackoffIdleStrategy but adapted to an event
 * loop (no yield: a spinning receiver blocks its loop, so it spins briefly
 * or not at all). A fixed `spinMicros` spins every time; 'adaptive' spins
 * only when a message arrived within ADAPTIVE_WINDOW_MS, at most
 * ADAPTIVE_SPIN_MICROS, and after a spin that found nothing not again until
 * a message arrives: a request/reply stream answers from a spin, an idle
 * receiver pays one short spin and parks for good (no CPU). It also parks
 * at once while the host has no CPU to spare (./cpus.ts): more runnable
 * threads than CPUs, where a spin holds the CPU its sender waits for.
 */
export class IdleStrategy {
  private lastData = -Infinity

  /** `spare` says whether a spin leaves a CPU to the others at `now` ('adaptive' only; replaced in tests). */
  constructor(private readonly setting: number | 'adaptive', private readonly spare: (now: number) => boolean = cpuToSpare) {}

  /** The fixed spin, for the hot continuation (0 when adaptive: it continues on the next turn). */
  get fixedMicros(): number {
    return typeof this.setting === 'number' ? this.setting : 0
  }

  /** A run delivered records. */
  sawData(now = clockMs()): void {
    if (this.setting === 'adaptive') this.lastData = now
  }

  /**
   * A run delivered `delivered` (> 0) records: sawData() and parkAfter()
   * on one clock reading (both readers end a delivering run this way).
   */
  afterDelivery(delivered: number): boolean {
    const now = clockMs()
    this.sawData(now)
    return this.parkAfter(delivered, now)
  }

  /** When the last run that delivered records ran (parkAfter's clock). */
  private lastRun = -Infinity

  /**
   * After a run that delivered `delivered` records (fewer than one lane's
   * batch): true when the receiver should park at once instead of looking
   * again on the next event-loop turn. Only with spinMicros 0 (or
   * 'adaptive' with no CPU to spare: parksLikeZero), and only after a quiet
   * gap of LONE_GAP_MS: a lone request or reply is all there
   * is, and the extra turn (an epoll_wait and the check phase) is time on
   * the wake path of every idle round trip that a socket's reader does not
   * spend. Inside a stream the next turn usually finds more, and parking
   * at once would make the sender ring for each message (an `await send()`
   * loop: 20% slower, measured), so a stream keeps the turn.
   */
  parkAfter(delivered: number, now = clockMs()): boolean {
    const lone = now - this.lastRun > LONE_GAP_MS
    this.lastRun = now
    if (delivered === 0 || !this.parksLikeZero(now)) return false
    if (lone) return true
    // Back-to-back request/reply: each message is alone, and the turn after
    // it finds nothing (the next comes a round trip later), costing both
    // sides an epoll_wait and a check phase per request. After EMPTY_TURNS
    // such turns in a row a single message parks at once; a run of more
    // than one record, or a turn that finds one, is a stream again.
    if (delivered > 1) this.emptyTurns = 0
    else if (this.emptyTurns >= EMPTY_TURNS) return true
    this.turnTaken = true
    return false
  }

  /**
   * Whether parkAfter applies spinMicros 0's rule: with 0, and with
   * 'adaptive' while the host has no CPU to spare. Then the next turn will
   * not spin (spin() asks the same reading), so taking it only costs the
   * epoll_wait and check phase that the rule saves (request/reply with 4
   * clients on 2 CPUs: docs/design.md, "Idle strategy").
   */
  private parksLikeZero(now: number): boolean {
    return this.setting === 0 || (this.setting === 'adaptive' && !this.spare(now))
  }

  /** Turns after a delivering run that found nothing, in a row (see parkAfter). */
  private emptyTurns = 0
  private turnTaken = false

  /** Every run reports what it delivered: after a turn parkAfter took, whether the turn found anything. */
  ran(delivered: number): void {
    if (!this.turnTaken) return
    this.turnTaken = false
    this.emptyTurns = delivered > 0 ? 0 : this.emptyTurns + 1
  }

  /** Spins on `source` as the strategy says; true when data arrived. */
  spin(source: DataSource): boolean {
    if (this.setting !== 'adaptive') return spinFor(source, this.setting)
    const now = clockMs()
    if (now - this.lastData > ADAPTIVE_WINDOW_MS) return false
    if (!this.spare(now)) return false // stays in the window: spins again once a CPU is free
    if (spinFor(source, ADAPTIVE_SPIN_MICROS)) return true
    this.lastData = -Infinity // missed: park until data comes again
    return false
  }
}

/** Chooses how a receiver that delivered records runs again (see the header). */
export class Continuation {
  private hotRuns = 0
  private hotRecords = 0

  constructor(private readonly spinMicros: number) {}

  /** Schedules `run` after a run that delivered `delivered` records. */
  next(delivered: number, run: () => void): void {
    this.hotRecords += delivered
    if (this.spinMicros > 0 && ++this.hotRuns < HOT_RUNS && this.hotRecords < MAX_PER_RUN) {
      void resolved.then(run)
    } else {
      this.hotRuns = 0
      this.hotRecords = 0
      setImmediate(run)
    }
  }
}

/**
 * The parked receiver's backstop: calls `rescue` when the lanes hold data
 * while parked (a lost ring). With every lane owner watched for its exit
 * it looks every WATCHED_CHECK_MS; else PARKED_CHECK_MS after parking, then
 * every PARKED_CHECK_MAX_MS. The timer is unref'd.
 */
export class Backstop {
  private timer: NodeJS.Timeout | null = null
  private ms = 0

  constructor(private readonly source: DataSource, private readonly rescue: () => void) {}

  private watched = false

  /** Called on every park; `watched`: every lane owner is watched for its exit (OwnerWatch said so). */
  arm(watched = false): void {
    this.watched = watched
    const first = watched ? WATCHED_CHECK_MS : PARKED_CHECK_MS
    if (this.timer !== null && this.ms === first) {
      this.timer.refresh()
      return
    }
    this.schedule(first)
  }

  disarm(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  /** The current interval (ms), 0 when disarmed: for tests. */
  get interval(): number {
    return this.timer === null ? 0 : this.ms
  }

  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.ms = ms
    this.timer = setTimeout(this.check, ms)
    this.timer.unref()
  }

  private readonly check = (): void => {
    this.timer = null
    if (this.source.hasData()) this.rescue()
    else this.schedule(this.watched ? WATCHED_CHECK_MS : PARKED_CHECK_MAX_MS)
  }
}

/**
 * The parked receiver's backstop is on unless IPC_BUS_BACKSTOP=off when
 * this module loads (internal): tests turn it off, in their children too,
 * so that a lost wakeup shows as a stall instead of a delay. Read once: a
 * process.env read is a call into C++ (getenv), and this is asked at every
 * park (0.3 µs a request in a request/reply client's profile).
 */
let backstop = process.env.IPC_BUS_BACKSTOP !== 'off'

export function backstopOn(): boolean {
  return backstop
}

/** Tests: the backstop on or off in this process from now on (see backstopOn). */
export function useBackstop(on: boolean): void {
  backstop = on
}

/** A pending next() of an async iterator over received values. */
export type Pull<T> = { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }
