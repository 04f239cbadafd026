/** `ipc-bus rm NAME`: removes one bus. */
import { ID_OPTION, Failure, target, type CommandSpec, type Parsed } from '../args.js'
import { findTarget } from '../buses.js'
import { removeBus } from '../remove.js'
import type { Output } from './output.js'
import { busLabel, printRemoval } from './removal-text.js'

export const spec: CommandSpec = {
  name: 'rm',
  summary: 'remove one bus (refused while it has live members, unless --force)',
  args: 'NAME | --id N',
  description: [
    'Removes a bus: IPC_RMID on every channel and topic segment its directory lists,',
    'then on the directory. Refused while any member is alive, or when its members',
    'cannot be read (not readable, corrupt, being built), unless --force. Processes still',
    'attached keep their mappings until they detach; nobody else can open the bus.',
  ].join('\n'),
  options: {
    id: ID_OPTION,
    force: { type: 'boolean', short: 'f', help: 'remove it even while members are alive (or its members cannot be read)' },
  },
  positionals: { min: 0, max: 1 },
}

export function run(parsed: Parsed, out: Output): number {
  const found = findTarget(target('rm', parsed))
  const s = found.summary
  const label = busLabel(s)
  if (parsed.values.force !== true) {
    if (s.members.alive > 0) {
      throw new Failure(`bus ${label} has ${s.members.alive} live member(s): not removed (--force removes it anyway)`)
    }
    if (!s.dead) {
      throw new Failure(`bus ${label} is ${s.state}${s.error === null ? '' : ` (${s.error})`}: not removed (--force removes it anyway)`)
    }
  }
  const removal = removeBus(found, false)
  if (parsed.values.json === true) out.print(JSON.stringify(removal, null, 2))
  else printRemoval(out, removal, 'removed', `bus ${label}`)
  if (removal.error !== null) throw new Failure(`could not remove bus ${label}: ${removal.error}`)
  return 0
}
