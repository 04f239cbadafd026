/**
 * Buses for tests: every bus made through here is closed after each test,
 * and every named bus's key is cleared (IPC_RMID) even when a test failed
 * or killed its members, so no segment outlives a test.
 */
import { randomBytes } from 'node:crypto'
import { afterEach } from 'vitest'
import { Bus, busKey, type BusOptions } from '@ipc/bus'
import { shmctl, shmget } from '@ipc/native'

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

/** Removes whatever segment sits at a named bus's key. */
export function clearName(name: string): void {
  try {
    shmctl(shmget(busKey(name), 0, 0), 'IPC_RMID')
  } catch {
    // nothing there
  }
}

afterEach(async () => {
  for (const bus of open) await bus.close().catch(() => {})
  open.clear()
  for (const name of names) clearName(name)
  names.clear()
})
