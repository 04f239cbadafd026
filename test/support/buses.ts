/**
 * Buses for tests: every bus made through here is closed after each test,
 * and every named bus's key is cleared (IPC_RMID) even when a test failed
 * or killed its members, so no segment outlives a test.
 */
import { randomBytes } from 'node:crypto'
import { afterEach } from 'vitest'
import { Bus, busKey, type BusOptions } from '@ipc/bus'
import { Directory } from '@ipc/core'
import { shmat, shmctl, shmdt, shmget } from '@ipc/native'

const open = new Set<Bus>()
const names = new Set<string>()

/** A bus name no other test (or run) uses. */
export function uniqueName(prefix = 'test'): string {
  const name = `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`
  names.add(name)
  return name
}

export function trackBus<B extends Bus>(bus: B): B {
  open.add(bus)
  return bus
}

export async function privateBus(options?: BusOptions): Promise<Bus> {
  return trackBus(await Bus.create(options))
}

export async function namedBus(name = uniqueName(), options?: BusOptions): Promise<Bus> {
  names.add(name)
  return trackBus(await Bus.create(name, options))
}

/** Removes whatever segment sits at a named bus's key, and the channel segments its directory lists (they outlive their writers). */
export function clearName(name: string): void {
  let id: number
  try {
    id = shmget(busKey(name), 0, 0)
  } catch {
    return // nothing there
  }
  try {
    const buffer = shmat(id)
    try {
      if (Directory.isInitialised(buffer, 0)) {
        for (const c of new Directory(buffer, 0).channels()) try { shmctl(c.segmentId, 'IPC_RMID') } catch { /* gone */ }
      }
    } finally {
      shmdt(buffer)
    }
  } catch {
    // not readable as a directory: remove the key's segment alone
  }
  try { shmctl(id, 'IPC_RMID') } catch { /* gone */ }
}

afterEach(async () => {
  for (const bus of open) await bus.close().catch(() => {})
  open.clear()
  for (const name of names) clearName(name)
  names.clear()
})
