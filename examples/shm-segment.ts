/**
 * A System V shared-memory segment: created, attached, written, inspected
 * with IPC_STAT, removed with IPC_RMID, detached, and shown to be gone.
 *
 *   node examples/dist/shm-segment.js [--key private|ftok] [--size 4096] [--text "..."]
 *
 * A segment is memory owned by the kernel, not by a process. shmget()
 * creates it (or finds it by key), shmat() maps it into our address space
 * (here: an ArrayBuffer), and any other process that attaches the same id
 * sees the same bytes, with no copying. The key is how unrelated processes
 * find it: IPC_PRIVATE (0) always makes a new segment, known only by the id
 * we pass on; ftok(path, projId) derives a key from an existing file.
 *
 * What can go wrong:
 *  - A segment outlives every process until it is removed: a program that
 *    crashes before IPC_RMID leaks it (see `ipcs -m`, free it with
 *    `ipcrm -m <id>`). So removal sits in `finally`.
 *  - IPC_RMID on an attached segment only marks it "dest": it stays usable
 *    by those attached and disappears with the last detach (or exit).
 *  - ftok() keys can collide (they are built from the inode, device and
 *    projId); IPC_CREAT | IPC_EXCL turns a collision into EEXIST instead of
 *    silently sharing someone else's segment.
 *  - Plain reads and writes give no ordering between processes; use Atomics
 *    on an Int32Array view when another process reads concurrently.
 *  - systemd's RemoveIPC=yes deletes a user's segments when they log out.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ftok, IPC_CREAT, IPC_EXCL, IPC_PRIVATE, shmat, shmctl, shmdt, shmget } from '@ipc/native'

const { values } = parseArgs({
  options: {
    key: { type: 'string', default: 'private' },
    size: { type: 'string', default: '4096' },
    text: { type: 'string', default: 'Hello from shared memory!' },
  },
})
const size = Number(values.size)
if (!Number.isInteger(size) || size < 1) throw new RangeError(`--size must be a positive integer, got ${values.size}`)
if (values.key !== 'private' && values.key !== 'ftok') throw new RangeError(`--key must be private or ftok, got ${values.key}`)

/** Is shmid listed in /proc/sysvipc/shm (what `ipcs -m` reads)? */
function listed(shmid: number): boolean {
  return readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1)
    .some((line) => line.trim().split(/\s+/)[1] === String(shmid))
}

const when = (t: number): string => (t === 0 ? 'never' : new Date(t * 1000).toISOString())

let dir: string | undefined
let shmid = -1
let removed = false
let memory: ArrayBuffer | undefined
try {
  let key = IPC_PRIVATE
  if (values.key === 'ftok') {
    dir = mkdtempSync(join(tmpdir(), 'shm-example-'))
    const file = join(dir, 'key')
    writeFileSync(file, '') // ftok needs an existing file
    key = ftok(file, 1)
  }
  // 0o600: read and write for our uid only.
  shmid = shmget(key, size, IPC_CREAT | IPC_EXCL | 0o600)
  console.log(`created segment ${shmid} (key 0x${(key >>> 0).toString(16).padStart(8, '0')}, ${size} bytes)`)

  memory = shmat(shmid)
  const bytes = new Uint8Array(memory)
  const written = new TextEncoder().encodeInto(values.text, bytes).written
  console.log(`attached ${memory.byteLength} bytes; wrote ${written} bytes: "${new TextDecoder().decode(bytes.subarray(0, written))}"`)

  const stat = shmctl(shmid, 'IPC_STAT')
  console.log('IPC_STAT:')
  const fields: Array<[string, string, string]> = [
    ['key', `0x${(stat.key >>> 0).toString(16).padStart(8, '0')}`, '0 for IPC_PRIVATE'],
    ['size', String(stat.size), 'bytes, as asked of shmget'],
    ['mode', `0${stat.mode.toString(8)}`, 'permission bits'],
    ['uid', String(stat.uid), 'owner (IPC_SET may change it)'],
    ['gid', String(stat.gid), ''],
    ['cuid', String(stat.cuid), 'creator (never changes)'],
    ['cgid', String(stat.cgid), ''],
    ['cpid', String(stat.cpid), `creator's pid (we are ${process.pid})`],
    ['lpid', String(stat.lpid), 'pid of the last shmat/shmdt'],
    ['nattch', String(stat.nattch), 'current attachments'],
    ['atime', when(stat.atime), 'last attach'],
    ['dtime', when(stat.dtime), 'last detach'],
    ['ctime', when(stat.ctime), 'last change (creation, IPC_SET)'],
    ['dest', String(stat.dest), 'marked for removal'],
  ]
  for (const [name, value, note] of fields) console.log(`  ${name.padEnd(7)}${value.padEnd(26)}${note}`.trimEnd())

  shmctl(shmid, 'IPC_RMID')
  removed = true
  const marked = shmctl(shmid, 'IPC_STAT') // still attached, so still there
  console.log(`IPC_RMID: marked for removal (dest ${marked.dest}, nattch ${marked.nattch}); still readable: "${new TextDecoder().decode(bytes.subarray(0, written))}"`)

  shmdt(memory) // the last detach: the kernel frees it now
  console.log(`detached: every view is now empty (byteLength ${bytes.byteLength})`)
  try {
    shmctl(shmid, 'IPC_STAT')
    console.log(`segment ${shmid} still exists (unexpected)`)
    process.exitCode = 1
  } catch (err) {
    console.log(`segment ${shmid} is gone: IPC_STAT fails with ${(err as NodeJS.ErrnoException).code}; /proc/sysvipc/shm lists it: ${listed(shmid)}`)
  }
} finally {
  // Whatever failed above, leave nothing behind.
  if (shmid >= 0 && !removed) {
    try { shmctl(shmid, 'IPC_RMID') } catch { /* already gone */ }
  }
  if (memory !== undefined) shmdt(memory) // harmless when already detached
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}
