/**
 * Constants of the C library, read from the addon at run time (never
 * hard-coded: SIGRTMIN is 34 under glibc because it keeps two real-time
 * signals for itself), and signal names <-> numbers.
 */
import { constants as osConstants } from 'node:os'
import { native } from './binding.js'

export const {
  IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_STAT, IPC_SET, IPC_RMID,
  SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK,
  SI_USER, SI_KERNEL, SI_QUEUE, SI_TKILL,
  SIGRTMIN, SIGRTMAX,
} = native.constants

/** 'SIGUSR2', 'SIGRTMIN', 'SIGRTMIN+3', 'SIGRTMAX-1', ... */
export type SignalName = keyof typeof osConstants.signals | 'SIGRTMIN' | 'SIGRTMAX' | `SIGRTMIN+${number}` | `SIGRTMAX-${number}`
/** A signal by name or by number. */
export type Signal = SignalName | number

const byName = new Map<string, number>(Object.entries(osConstants.signals))
// First name wins for aliases (SIGIOT/SIGABRT, SIGPOLL/SIGIO): os.constants
// lists the canonical one first.
const byNumber = new Map<number, string>()
for (const [name, n] of byName) if (!byNumber.has(n)) byNumber.set(n, name)
// The real-time ones too, once: signalName() runs for every delivered
// signal (a bus doorbell ring), and a template per call was measurable there.
for (let n = SIGRTMIN; n <= SIGRTMAX; n++) if (!byNumber.has(n)) byNumber.set(n, n === SIGRTMIN ? 'SIGRTMIN' : `SIGRTMIN+${n - SIGRTMIN}`)

/**
 * The number of a signal given by name or number. Throws TypeError for an
 * unknown name and RangeError for a number outside 0..SIGRTMAX (0 is the
 * "does it exist" probe of kill()).
 */
export function signalNumber(sig: Signal): number {
  if (typeof sig === 'number') {
    if (!Number.isInteger(sig) || sig < 0 || sig > SIGRTMAX) {
      throw new RangeError(`signal must be an integer from 0 to ${SIGRTMAX} or a name like 'SIGUSR2', got ${sig}`)
    }
    return sig
  }
  if (typeof sig !== 'string') throw new TypeError(`signal must be a name or a number, got ${typeof sig}`)
  const known = byName.get(sig)
  if (known !== undefined) return known
  const rt = /^SIGRT(MIN|MAX)(?:([+-])(\d+))?$/.exec(sig)
  if (rt) {
    const base = rt[1] === 'MIN' ? SIGRTMIN : SIGRTMAX
    const offset = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '+' ? 1 : -1)
    const n = base + offset
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n
    throw new RangeError(`${sig} is outside SIGRTMIN..SIGRTMAX (${SIGRTMIN}..${SIGRTMAX})`)
  }
  throw new TypeError(`unknown signal name '${sig}' (expected e.g. 'SIGUSR2' or 'SIGRTMIN+1')`)
}

/** The name of a signal number: 'SIGINT', 'SIGRTMIN+3'. */
export function signalName(signo: number): string {
  return byNumber.get(signo) ?? `SIG${signo}`
}

/** The name of an si_code value: how a signal was sent. */
export function signalCodeName(code: number): string {
  switch (code) {
    case SI_USER: return 'SI_USER'
    case SI_KERNEL: return 'SI_KERNEL'
    case SI_QUEUE: return 'SI_QUEUE'
    case SI_TKILL: return 'SI_TKILL'
    default: return `SI_${code}`
  }
}
