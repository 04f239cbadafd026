/**
 * What the suite may leave behind, read from /proc (no native addon needed, so
 * the guard works even when the addon failed to build).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'

export interface SegmentInfo {
  key: number
  shmid: number
  bytes: number
  nattch: number
  cpid: number
}

/** Every System V shared-memory segment on the host, from /proc/sysvipc/shm. */
export function listSegments(): SegmentInfo[] {
  const lines = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1)
  return lines.filter(Boolean).map((line) => {
    const f = line.trim().split(/\s+/).map(Number)
    // key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ...
    return { key: f[0]!, shmid: f[1]!, bytes: f[3]!, cpid: f[4]!, nattch: f[6]! }
  })
}

export function removeSegment(shmid: number): void {
  try { execFileSync('ipcrm', ['-m', String(shmid)], { stdio: 'ignore' }) } catch { /* gone already */ }
}

export interface ProcInfo { pid: number; ppid: number; cmdline: string }

/** The value of NAME in a live process's environment; undefined if unset, gone or unreadable. */
export function envOf(pid: number, name: string): string | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').find((e) => e.startsWith(`${name}=`))
    return entry?.slice(name.length + 1)
  } catch {
    return undefined
  }
}

/** Processes whose environment holds NAME=value (readable for our own uid, or all as root). */
export function listProcessesWithEnv(name: string, value: string): ProcInfo[] {
  const needle = `${name}=${value}`
  const found: ProcInfo[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0')
      if (!env.includes(needle)) continue
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
      if (state === 'Z') continue // a zombie holds no resources but its pid; its parent will reap it
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').join(' ').trim()
      found.push({ pid: Number(entry), ppid, cmdline })
    } catch {
      // the process exited while we looked, or is not ours to read
    }
  }
  return found
}
