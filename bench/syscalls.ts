/**
 * Shows that a sender makes no system call while its receiver is awake:
 * run this under `strace -c` twice, with 0 and with 1,000,000 messages, and
 * compare the counts (the difference is what sending cost in syscalls).
 *
 *   strace -c -o /tmp/s0.txt node bench/dist/syscalls.js 0
 *   strace -c -o /tmp/s1.txt node bench/dist/syscalls.js 1000000
 *
 * strace without -f follows only the main thread: exactly the thread that
 * sends. The receiver is a forked child that spins (spinMicros 1 s), so it
 * never parks and no doorbell is ever needed.
 */
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Bus } from '@ipc/bus'

const self = fileURLToPath(import.meta.url)

if (process.argv[2] === 'receiver') {
  const bus = await Bus.attach()
  const total = Number(process.argv[3])
  let n = 0
  const done = bus.channel<number>('done')
  bus.channel('ticks').on('message', () => {
    if (++n === total) void done.send(n).then(() => bus.close())
  })
  if (total === 0) void done.send(0).then(() => bus.close())
} else {
  const total = Number(process.argv[2] ?? 1_000_000)
  const bus = await Bus.create({ spinMicros: 1_000_000, ringBytes: '4 MiB' })
  const child = bus.fork(self, ['receiver', String(total)])
  const ticks = bus.channel<{ id: number; px: number }>('ticks')
  while (ticks.receiverPid === null) await new Promise((r) => setTimeout(r, 5))
  const done = new Promise((resolve) => bus.channel('done').once('message', resolve))
  let fullEvents = 0
  for (let id = 0; id < total; id++) {
    const tick = { id, px: 100 + id / 1e6 }
    if (!ticks.trySend(tick)) {
      fullEvents++
      await ticks.send(tick)
    }
  }
  await done
  const lane = ticks.stats().lanes.find((l) => l.owner === process.pid)
  console.log(JSON.stringify({ sent: total, fullEvents, doorbellsRung: lane?.doorbellsRung ?? 0 }))
  await once(child, 'exit')
  await bus.close()
}
