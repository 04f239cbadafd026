/**
 * Resident bytes of this process's mappings of a SysV segment, from
 * /proc/self/smaps (a mapping's inode column is the shmid): what
 * madvise(MADV_POPULATE_WRITE) or a first touch maps into the page tables.
 */
import { readFileSync } from 'node:fs'

/** Rss in bytes of each mapping of segment `shmid` in this process, in address order. */
export function segmentRss(shmid: number): number[] {
  const out: number[] = []
  let inSegment = false
  for (const line of readFileSync('/proc/self/smaps', 'latin1').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)/.exec(line)
    if (head !== null) {
      inSegment = Number(head[1]) === shmid && line.includes('SYSV')
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && inSegment) out.push(Number(rss[1]) * 1024)
  }
  return out
}

/** The Rss of every SysV mapping of this process together. */
export function allSegmentsRss(): number {
  let total = 0
  let inSegment = false
  for (const line of readFileSync('/proc/self/smaps', 'latin1').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inSegment = line.includes('/SYSV')
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null && inSegment) total += Number(rss[1]) * 1024
  }
  return total
}
