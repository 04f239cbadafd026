/**
 * Shared-memory segments for tests: every segment made through here is
 * removed after each test, pass or fail.
 */
import { afterEach } from 'vitest'
import { IPC_CREAT, IPC_EXCL, IPC_PRIVATE, shmctl, shmget } from '@ipc/native'

const made = new Set<number>()

/** Creates a new segment (IPC_PRIVATE unless a key is given), tracked for removal. */
export function makeSegment(size: number, mode = 0o600, key = IPC_PRIVATE): number {
  const id = shmget(key, size, IPC_CREAT | IPC_EXCL | mode)
  made.add(id)
  return id
}

/** Tracks a segment made some other way. */
export function trackSegment(id: number): number {
  made.add(id)
  return id
}

/** A key unlikely to collide with anything else on the host. */
export function randomKey(): number {
  return (0x1c000000 | Math.floor(Math.random() * 0xffffff)) | 0
}

export function removeTracked(): void {
  for (const id of made) {
    try { shmctl(id, 'IPC_RMID') } catch { /* already removed */ }
  }
  made.clear()
}

afterEach(removeTracked)
