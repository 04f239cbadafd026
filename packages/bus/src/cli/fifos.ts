/**
 * Doorbell FIFOs (../doorbell.ts): `<runtimeDir>/ipc-bus-<pid>-<start
 * time>[-t<thread>].bell`, one per process (and worker thread) that waited
 * on the 'pipe' doorbell. A process that exits normally removes its own; a
 * SIGKILLed one leaves it behind, until the next process of the same
 * runtime directory that creates its own FIFO, or `ipc-bus gc`.
 */
import { lstatSync, readdirSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { resolveOptions } from '../options.js'
import { Liveness } from './model.js'

export interface Fifo {
  path: string
  pid: number
  startTime: number
  alive: boolean
}

const FIFO_NAME = /^ipc-bus-(\d+)-(\d+)(?:-t\d+)?\.bell$/

/** Where a bus puts its FIFOs when its options name no runtimeDir (what Bus.create resolves). */
export function defaultRuntimeDir(): string {
  return resolveOptions().runtimeDir
}

/** Every doorbell FIFO in `dir` (none when it cannot be read; files that are not FIFOs are not theirs), with whether its process lives. */
export function listFifos(dir: string, liveness = new Liveness()): Fifo[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const fifos: Fifo[] = []
  for (const name of names.sort()) {
    const m = FIFO_NAME.exec(name)
    if (m === null) continue
    const path = join(dir, name)
    try {
      if (!lstatSync(path).isFIFO()) continue // only what a doorbell makes
    } catch {
      continue // removed meanwhile
    }
    const pid = Number(m[1])
    const startTime = Number(m[2])
    fifos.push({ path, pid, startTime, alive: liveness.alive(pid, startTime) })
  }
  return fifos
}

/** Removes a FIFO; the error message when it could not be (gone meanwhile counts as removed). */
export function removeFifo(fifo: Fifo): string | null {
  try {
    unlinkSync(fifo.path)
    return null
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? null : `${fifo.path}: ${code ?? (err as Error).message}`
  }
}
