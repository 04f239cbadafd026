/**
 * The third-SIGINT sleeper.
 *
 *   node examples/dist/sleeper.js [--interval 3] [--times 3]
 *
 * Prints "I'm sleeping" every --interval seconds and exits cleanly on the
 * --times-th SIGINT (Ctrl-C in a terminal, or `kill -INT <pid>`).
 *
 * A signal is an asynchronous notification from the kernel: the process is
 * interrupted wherever it is and a handler runs. SIGINT's default action is
 * to terminate; catching it replaces that action with our own code.
 *
 * onSignal() installs a real sigaction() handler in C that only writes a
 * small record to a pipe; the event loop reads that pipe and calls our JS
 * handler as ordinary code. So our handler may print, allocate, and so on,
 * which a real signal handler must never do (only async-signal-safe calls
 * are allowed there).
 *
 * What can go wrong:
 *  - A SIGINT that arrives before onSignal() runs still gets the default
 *    action and kills the process; we print "ready" only once the handler is
 *    in place, so a script can wait for that line before signalling.
 *  - Standard signals (1..31) do not queue: two SIGINTs sent while the first
 *    is still pending arrive as one. Send them one at a time if you count.
 *  - Only SIGKILL and SIGSTOP cannot be caught; `kill -9` still ends us.
 */
import { parseArgs } from 'node:util'
import { onSignal } from '@ipc/native'

const { values } = parseArgs({
  options: {
    interval: { type: 'string', default: '3' },
    times: { type: 'string', default: '3' },
  },
})
const intervalMs = Number(values.interval) * 1000
const times = Number(values.times)
if (!(intervalMs > 0)) throw new RangeError(`--interval must be a positive number of seconds, got ${values.interval}`)
if (!Number.isInteger(times) || times < 1) throw new RangeError(`--times must be a positive integer, got ${values.times}`)

let received = 0

// This takes SIGINT over from Node: Node's default (terminate at once) no
// longer applies, nor do any process.on('SIGINT') listeners, until
// stopCatching() restores the disposition that was there before.
const stopCatching = onSignal('SIGINT', (info) => {
  received++
  // si_pid is 0 when the kernel sent it (Ctrl-C at a terminal).
  console.log(`SIGINT ${received} of ${times} (from ${info.pid === 0 ? 'the terminal' : `pid ${info.pid}`})`)
  if (received < times) return
  console.log(`got ${received} SIGINTs, exiting`)
  clearInterval(timer)
  stopCatching()
  // Nothing keeps the event loop alive any more: the process exits with 0.
})

console.log(`sleeper pid ${process.pid} ready: send SIGINT ${times} times to stop it (Ctrl-C)`)
const sleep = (): void => console.log("I'm sleeping")
sleep()
const timer = setInterval(sleep, intervalMs)
