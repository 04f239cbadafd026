/** `ipc-bus inspect NAME`: everything about one bus. */
import { ID_OPTION, Failure, target, type CommandSpec, type Parsed } from '../args.js'
import { findTarget } from '../buses.js'
import { inspectBus } from '../detail.js'
import { renderDetail } from '../render.js'
import type { Output } from './output.js'

export const spec: CommandSpec = {
  name: 'inspect',
  summary: 'show one bus: members, channels and lanes, topics and subscribers, services',
  args: 'NAME | --id N',
  description: [
    'Reads one bus without joining it (its segments are attached read-only and copied):',
    '  members      pid, alive (pid + start time), doorbell, roles on the bus',
    '  channels     receiver (parked or not), lanes in use, backlog (messages, bytes),',
    '               written, read, full events, doorbells rung, receiver parks',
    '  lanes        per channel lane: owner, backlog, written, read, full, doorbells',
    '  topics       lanes with owners and counters; subscribers with policy, lag, drops',
    '  services     server channels (s:<service>:<pid>.<n>): queued, taken, in flight',
    "NAME is a bus's name; a private bus is named by --id N, its directory segment id",
    "('ipc-bus ls' shows it), or by the name ls shows for it (private:<pid>:<n>).",
  ].join('\n'),
  options: { id: ID_OPTION },
  positionals: { min: 0, max: 1 },
}

export function run(parsed: Parsed, out: Output): number {
  const found = findTarget(target('inspect', parsed))
  const detail = inspectBus(found)
  out.print(parsed.values.json === true ? JSON.stringify(detail, null, 2) : renderDetail(detail))
  const s = found.summary
  if (s.state === 'unreadable' || s.state === 'corrupt' || s.state === 'error' || s.state === 'gone') {
    throw new Failure(`bus ${s.name === null ? `in segment ${s.id}` : `'${s.name}'`} cannot be read: ${s.error ?? s.state}`)
  }
  return 0
}
