/** `ipc-bus ls`: every bus on the host this user can see. */
import type { CommandSpec, Parsed } from '../args.js'
import { findBuses } from '../buses.js'
import { renderList } from '../render.js'
import type { Output } from './output.js'

export const spec: CommandSpec = {
  name: 'ls',
  summary: 'list every bus on this host (named and private), found without knowing names',
  args: '',
  description: [
    'Lists every System V segment that holds a bus directory, read-only: name, directory',
    'segment id, key, mode and owner, members alive and dead, channels, topics and',
    'services, when it was created, and its state: live, dead (every member gone:',
    "'ipc-bus gc' removes it), empty (no member yet), building, not readable (another",
    "user's bus this user may not read), corrupt. Server and client channels of",
    'request/reply count under SERVICES, not CHANNELS.',
  ].join('\n'),
  options: {},
  positionals: { min: 0, max: 0 },
}

export function run(parsed: Parsed, out: Output): number {
  const buses = findBuses().map((b) => b.summary)
  out.print(parsed.values.json === true ? JSON.stringify(buses, null, 2) : renderList(buses))
  return 0
}
