/** `ipc-bus gc`: removes dead buses and stale doorbell FIFOs. */
import type { CommandSpec, Parsed } from '../args.js'
import { findBuses, findTarget, readBus, type FoundBus } from '../buses.js'
import { defaultRuntimeDir, listFifos, removeFifo } from '../fifos.js'
import { removeBus, type Removal } from '../remove.js'
import type { Output } from './output.js'
import { busLabel, idsOption, printRemoval } from './removal-text.js'

export const spec: CommandSpec = {
  name: 'gc',
  summary: 'remove dead buses (every member gone) and stale doorbell FIFOs',
  args: '[NAME...]',
  description: [
    'Removes every bus whose members are all dead (by pid + start time; a bus with no',
    'member yet counts as dead once its creator is gone), and abandoned half-built ones:',
    'IPC_RMID on the directory and on every channel and topic segment it lists. A bus',
    'with a live member is never touched. Then removes the doorbell FIFOs',
    '(ipc-bus-<pid>-<start>[-t<thread>].bell) of dead processes from the runtime',
    'directory. Prints what it removed; --dry-run prints what it would remove and',
    'removes nothing. With NAMEs (or --id), only those buses are considered.',
  ].join('\n'),
  options: {
    'dry-run': { type: 'boolean', short: 'n', help: 'remove nothing; print what would be removed' },
    'runtime-dir': { type: 'string', value: 'DIR', help: `where the buses' FIFOs are (default: the buses' default, ${defaultRuntimeDir()})` },
    id: { type: 'string', multiple: true, value: 'N', help: 'consider the bus whose directory is segment N (repeatable)' },
  },
  positionals: { min: 0, max: Number.MAX_SAFE_INTEGER },
}

export function run(parsed: Parsed, out: Output): number {
  const dryRun = parsed.values['dry-run'] === true
  const ids = idsOption(parsed.values)
  const limited = parsed.positionals.length > 0 || ids.length > 0
  const candidates: FoundBus[] = limited
    ? [...parsed.positionals.map((name) => findTarget({ name })), ...ids.map((id) => findTarget({ id }))]
    : findBuses()
  const removals: Removal[] = []
  let kept = 0
  for (const bus of candidates) {
    if (!bus.summary.dead) {
      kept++
      continue
    }
    const again = readBus(bus.row) // the last look before removing: still dead?
    if (!again.summary.dead) {
      kept++
      continue
    }
    removals.push(removeBus(again, dryRun))
  }
  const dir = typeof parsed.values['runtime-dir'] === 'string' ? parsed.values['runtime-dir'] : defaultRuntimeDir()
  const stale = listFifos(dir).filter((f) => !f.alive)
  const fifoErrors = dryRun ? [] : stale.map(removeFifo).filter((e): e is string => e !== null)
  const failed = removals.some((r) => r.error !== null) || fifoErrors.length > 0
  if (parsed.values.json === true) {
    out.print(JSON.stringify({
      dryRun, buses: removals, kept, runtimeDir: dir,
      fifos: stale.map((f) => f.path).filter((p) => !fifoErrors.some((e) => e.startsWith(`${p}:`))), fifoErrors,
    }, null, 2))
    return failed ? 1 : 0
  }
  const verb = dryRun ? 'would remove' : 'removed'
  for (const r of removals) printRemoval(out, r, verb, `dead bus ${busLabel(r)}`)
  for (const f of stale) if (!fifoErrors.some((e) => e.startsWith(`${f.path}:`))) out.print(`${verb} stale FIFO ${f.path} (pid ${f.pid} is gone)`)
  for (const e of fifoErrors) out.warn(`could not remove FIFO ${e}`)
  if (removals.length === 0 && stale.length === 0) out.print(`nothing to remove (${kept} bus(es) not dead; no stale FIFO in ${dir})`)
  else out.print(`${kept} bus(es) not dead, left alone`)
  return failed ? 1 : 0
}
