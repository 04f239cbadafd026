/**
 * Resident bytes of this process's mappings of SysV segments, from
 * /proc/self/smaps (a mapping's inode column is the shmid): what
 * madvise(MADV_POPULATE_WRITE) or a first touch maps into the page tables.
 */
import { readFileSync } from 'node:fs'

/** Every SysV mapping of this process, in address order: its segment id and its Rss in bytes. */
function sysvMappings(): Array<{ shmid: number; rss: number }> {
  const out: Array<{ shmid: number; rss: number }> = []
  let current: { shmid: number; rss: number } | null = null
  for (const line of readFileSync('/proc/self/smaps', 'latin1').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)/.exec(line)
    if (head !== null) {
      current = line.includes('/SYSV') ? { shmid: Number(head[1]), rss: 0 } : null
      if (current !== null) out.push(current)
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && current !== null) current.rss = Number(rss[1]) * 1024
  }
  return out
}

/** Rss in bytes of each mapping of segment `shmid` in this process, in address order. */
export function segmentRss(shmid: number): number[] {
  return sysvMappings().filter((m) => m.shmid === shmid).map((m) => m.rss)
}

/** The Rss of every SysV mapping of this process together. */
export function allSegmentsRss(): number {
  return sysvMappings().reduce((sum, m) => sum + m.rss, 0)
}
