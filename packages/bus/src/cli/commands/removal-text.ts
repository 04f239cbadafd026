/** What gc and rm print about a removal, and the --id list they share. */
import { intOption, type Values } from '../args.js'
import type { Removal } from '../remove.js'
import type { Output } from './output.js'

export function busLabel(r: { id: number; name: string | null }): string {
  return r.name === null ? `in segment ${r.id}` : `'${r.name}' (segment ${r.id})`
}

/** One line for the bus, one per entry skipped; the error on stderr. */
export function printRemoval(out: Output, r: Removal, verb: string, what: string): void {
  const entries = r.segments.filter((id) => id !== r.id)
  if (r.error === null) out.print(`${verb} ${what}${entries.length > 0 ? ` and its segment(s) ${entries.join(', ')}` : ''}`)
  for (const s of r.skipped) out.print(`  left ${s}`)
  if (r.error !== null) out.warn(`could not remove ${what}: ${r.error}`)
}

/** The integers given with --id (repeatable). */
export function idsOption(values: Values): number[] {
  const raw = values.id
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)]
  return list.map((v) => intOption({ id: v }, 'id', 0, 0x7fffffff)!)
}
