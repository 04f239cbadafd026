/** `ipc-bus top NAME`: rates of one bus, refreshed every interval. */
import { setTimeout as sleep } from 'node:timers/promises'
import { ID_OPTION, Failure, intOption, secondsOption, target, type CommandSpec, type Parsed } from '../args.js'
import { findTarget, readBus } from '../buses.js'
import { inspectBus } from '../detail.js'
import type { BusDetail } from '../model.js'
import { TopMeters, renderRates } from '../rates.js'
import { shmRow } from '../sysvipc.js'
import type { Output } from './output.js'

export const spec: CommandSpec = {
  name: 'top',
  summary: 'live rates of one bus: messages/s and bytes/s per channel, lane and topic',
  args: 'NAME | --id N',
  description: [
    'Reads the bus every interval (read-only, as inspect) and prints, from the counters',
    'in shared memory: messages/s and bytes/s written per channel and per lane, read/s,',
    'backlog, receiver parks/s and full events/s; per topic lane, messages/s and bytes/s;',
    'per subscriber, read/s, lag and drops/s. A plain table per refresh: on a terminal',
    'the screen is cleared first, piped each table follows the last (--count bounds it).',
    'With --json, one JSON object per refresh, one per line.',
  ].join('\n'),
  options: {
    id: ID_OPTION,
    interval: { type: 'string', value: 'SECONDS', help: 'time between refreshes (default 1)' },
    count: { type: 'string', value: 'N', help: 'stop after N refreshes (default: until interrupted)' },
  },
  positionals: { min: 0, max: 1 },
}

/** Clears a terminal and puts the cursor home. */
const CLEAR = '\x1b[H\x1b[2J'

export async function run(parsed: Parsed, out: Output): Promise<number> {
  const t = target('top', parsed)
  const seconds = secondsOption(parsed.values, 'interval', 0.05, 3600) ?? 1
  const count = intOption(parsed.values, 'count', 1, Number.MAX_SAFE_INTEGER)
  const json = parsed.values.json === true
  const first = findTarget(t)
  const id = first.row.id
  const label = first.summary.name ?? `segment ${id}`
  const take = (): BusDetail => {
    const row = shmRow(id)
    if (row === undefined) throw new Failure(`bus ${label} is gone (segment ${id} was removed)`)
    const found = readBus(row)
    if (found.directory === null) throw new Failure(`bus ${label} cannot be read: ${found.summary.error ?? found.summary.state}`)
    return inspectBus(found)
  }
  const meters = new TopMeters(seconds * 1000)
  meters.update(take()) // the first sample: rates start from here
  for (let i = 1; count === undefined || i <= count; i++) {
    await sleep(seconds * 1000)
    const sample = meters.update(take())
    if (json) out.print(JSON.stringify(sample))
    else {
      const text = renderRates(sample, count === undefined ? `refresh ${i}, every ${seconds} s` : `refresh ${i} of ${count}, every ${seconds} s`)
      out.print(out.tty ? `${CLEAR}${text}` : `${text}\n`)
    }
  }
  return 0
}
