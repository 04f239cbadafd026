/**
 * Every System V shared-memory segment on the host, as /proc/sysvipc/shm
 * lists them (the kernel lists them all, whoever may read them; ipcs reads
 * the same file). Only reading a segment's bytes needs its permission.
 */
import { readFileSync } from 'node:fs'

export interface ShmRow {
  /** The key (0 = IPC_PRIVATE, and what a segment marked for removal shows). */
  key: number
  id: number
  /** Permission bits (0o600). */
  mode: number
  /** Marked for removal (IPC_RMID): it goes with its last attachment. */
  dest: boolean
  size: number
  /** Creator's pid. */
  cpid: number
  nattch: number
  /** Owner. */
  uid: number
  gid: number
  /** Creation (or last IPC_SET), seconds since the epoch. */
  ctime: number
}

/** The mode bit /proc shows for a segment marked for removal (SHM_DEST). */
const SHM_DEST = 0o1000

/** Parses /proc/sysvipc/shm: key shmid perms(octal) size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap. */
export function parseShm(text: string): ShmRow[] {
  const rows: ShmRow[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 14) continue
    const perms = parseInt(f[2]!, 8)
    rows.push({
      key: Number(f[0]), id: Number(f[1]), mode: perms & 0o777, dest: (perms & SHM_DEST) !== 0, size: Number(f[3]),
      cpid: Number(f[4]), nattch: Number(f[6]), uid: Number(f[7]), gid: Number(f[8]), ctime: Number(f[13]),
    })
  }
  return rows.filter((r) => Number.isInteger(r.id) && r.id >= 0)
}

/** Every segment on the host; empty when /proc/sysvipc is not mounted. */
export function listShm(): ShmRow[] {
  let text: string
  try {
    text = readFileSync('/proc/sysvipc/shm', 'utf8')
  } catch {
    return []
  }
  return parseShm(text)
}

/** The row of segment `id` now, or undefined when there is none. */
export function shmRow(id: number): ShmRow | undefined {
  return listShm().find((r) => r.id === id)
}

let users: Map<number, string> | undefined

/** The login name of uid (from /etc/passwd), else the number as a string. */
export function userName(uid: number): string {
  if (users === undefined) {
    users = new Map()
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':')
        if (name && id !== undefined && !users.has(Number(id))) users.set(Number(id), name)
      }
    } catch {
      // no passwd file: numbers it is
    }
  }
  return users.get(uid) ?? String(uid)
}
