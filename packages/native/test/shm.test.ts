import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { ftok, IPC_CREAT, IPC_EXCL, IPC_PRIVATE, prefault, shmat, shmctl, shmdt, shmget } from '@ipc/native'
import { runFixture } from '../../../test/support/children.js'
import { makeSegment, randomKey, trackSegment } from '../../../test/support/segments.js'
import { segmentRss } from '../../../test/support/smaps.js'

const NOBODY = 65534

function peer(target: string, op = 'rw', options = {}) {
  return runFixture('native', 'shm-peer', [target, op], options).then((r) => {
    expect(r.stderr).toBe('')
    return JSON.parse(r.stdout) as Record<string, any>
  })
}

function ipcsLine(id: number): string | undefined {
  return execFileSync('ipcs', ['-m'], { encoding: 'utf8' }).split('\n').find((l) => l.split(/\s+/)[1] === String(id))
}

describe('System V shared memory', () => {
  test('a segment created here is attached by id in a child; bytes flow both ways; IPC_STAT is right', async () => {
    const id = makeSegment(4096, 0o600)
    const buf = shmat(id)
    const bytes = new Uint8Array(buf)
    for (let i = 0; i < 16; i++) bytes[i] = i * 3
    const child = await peer(`id:${id}`)
    expect(child['first']).toBe(Buffer.from(bytes.subarray(0, 16)).toString('hex'))
    expect([...bytes.subarray(16, 32)]).toEqual(Array.from({ length: 16 }, (_, i) => 0xa0 + i))
    // The child's view while it was attached: both of us.
    expect(child['stat']).toMatchObject({ size: 4096, mode: 0o600, cpid: process.pid, nattch: 2, uid: process.getuid!() })
    const stat = shmctl(id, 'IPC_STAT')
    expect(stat).toMatchObject({ key: 0, size: 4096, mode: 0o600, cpid: process.pid, nattch: 1, dest: false })
    expect(stat.lpid).toBe(child['pid']) // the child detached last
    expect(shmdt(buf)).toBe(true)
    expect(shmctl(id, 'IPC_STAT').nattch).toBe(0)
  })

  test('a segment is found by its ftok key from another process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipc-ftok-'))
    try {
      const file = join(dir, 'anchor')
      writeFileSync(file, '')
      const key = ftok(file, 7)
      expect(key).not.toBe(0)
      expect(ftok(file, 7)).toBe(key) // stable
      expect(ftok(file, 8)).not.toBe(key)
      const id = makeSegment(1024, 0o600, key)
      expect(shmget(key, 0, 0)).toBe(id)
      const buf = shmat(id)
      new Uint8Array(buf).set([1, 2, 3, 4])
      const child = await peer(`key:${key}`)
      expect(child['id']).toBe(id)
      expect(child['first'].slice(0, 8)).toBe('01020304')
      expect(new Uint8Array(buf)[16]).toBe(0xa0)
      shmdt(buf)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('after IPC_RMID while attached it stays usable, shows as dest, and is gone after the last detach', () => {
    const id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0o600)
    trackSegment(id)
    const a = shmat(id)
    const b = shmat(id)
    shmctl(id, 'IPC_RMID')
    expect(shmctl(id, 'IPC_STAT')).toMatchObject({ dest: true, nattch: 2 })
    expect(ipcsLine(id)).toMatch(/dest/)
    const va = new Uint32Array(a)
    const vb = new Uint32Array(b)
    va[10] = 0xdeadbeef
    expect(vb[10]).toBe(0xdeadbeef) // two mappings of one segment
    shmdt(a)
    expect(va.length).toBe(0) // views of a detached buffer are empty, never dangling
    expect(vb[10]).toBe(0xdeadbeef)
    shmdt(b)
    expect(ipcsLine(id)).toBeUndefined()
    expect(() => shmctl(id, 'IPC_STAT')).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'shmctl' }))
  })

  test('a second shmdt is harmless, and so is garbage collection of dropped and detached buffers', async () => {
    const id = makeSegment(4096)
    const buf = shmat(id)
    expect(shmdt(buf)).toBe(true)
    expect(shmdt(buf)).toBe(false)
    const out = await runFixture('native', 'gc-finalizer', [String(id)], {}, { nodeArgs: ['--expose-gc'] })
    expect(out.stderr).toBe('')
    expect(JSON.parse(out.stdout)).toEqual({ start: 0, afterAttach: 1, afterGc: 0, stillAttached: 1, end: 0 })
  })

  test('IPC_SET changes the mode, uid and gid', () => {
    const id = makeSegment(4096, 0o600)
    shmctl(id, 'IPC_SET', { mode: 0o640, gid: NOBODY })
    expect(shmctl(id, 'IPC_STAT')).toMatchObject({ mode: 0o640, gid: NOBODY, uid: process.getuid!() })
  })

  describe('permissions (checked by an unprivileged child: root bypasses them)', () => {
    const asNobody = { uid: NOBODY, gid: NOBODY }

    test('a 0600 segment refuses uid 65534 with EACCES', async () => {
      const id = makeSegment(4096, 0o600)
      expect(await peer(`id:${id}`, 'rw', asNobody)).toMatchObject({ error: 'EACCES' })
      expect(await peer(`id:${id}`, 'readonly', asNobody)).toMatchObject({ error: 'EACCES' })
    })

    test('a 0644 segment lets uid 65534 attach read-only, and refuses read-write', async () => {
      const id = makeSegment(4096, 0o644)
      const buf = shmat(id)
      new Uint8Array(buf).set([0xca, 0xfe])
      expect(await peer(`id:${id}`, 'readonly', asNobody)).toMatchObject({ first: 'cafe' + '00'.repeat(14) })
      expect(await peer(`id:${id}`, 'rw', asNobody)).toMatchObject({ error: 'EACCES' })
      shmdt(buf)
    })

    test('a 0666 segment lets uid 65534 attach read-write', async () => {
      const id = makeSegment(4096, 0o666)
      expect(await peer(`id:${id}`, 'rw', asNobody)).toMatchObject({ stat: { nattch: 1 } })
    })
  })

  describe('errors carry code, errno, syscall and say what was attempted', () => {
    test('IPC_CREAT | IPC_EXCL on an existing key: EEXIST', () => {
      const key = randomKey()
      makeSegment(4096, 0o600, key)
      expect(() => shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600)).toThrow(
        expect.objectContaining({ code: 'EEXIST', errno: -17, syscall: 'shmget', message: expect.stringContaining('shmget(key=0x') }),
      )
    })

    test('a key with no segment: ENOENT; asking for more than the segment holds: EINVAL', () => {
      const key = randomKey()
      expect(() => shmget(key, 4096, 0)).toThrow(expect.objectContaining({ code: 'ENOENT' }))
      makeSegment(4096, 0o600, key)
      expect(() => shmget(key, 8192, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }))
    })

    test('shmat and shmctl on a bad id: EINVAL; ftok on a missing file: ENOENT', () => {
      expect(() => shmat(0x7ffffff0)).toThrow(expect.objectContaining({ code: 'EINVAL' }))
      expect(() => shmctl(0x7ffffff0, 'IPC_RMID')).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'shmctl' }))
      expect(() => ftok('/no/such/file', 1)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'ftok' }))
    })

    test('bad arguments throw TypeError or RangeError before any system call', () => {
      expect(() => shmget(1.5, 10, 0)).toThrow(TypeError)
      expect(() => shmget(1, -1, 0)).toThrow(RangeError)
      expect(() => shmget('1' as never, 10, 0)).toThrow(TypeError)
      expect(() => shmat(-1)).toThrow(RangeError)
      expect(() => shmdt(new ArrayBuffer(8))).toThrow(TypeError)
      expect(() => shmdt(new Uint8Array(8) as never)).toThrow(TypeError)
      expect(() => shmctl(1, 'IPC_FOO' as never)).toThrow(RangeError)
      expect(() => shmctl(1, 'IPC_SET', { mode: 0o1777 })).toThrow(RangeError)
      expect(() => ftok('', 1)).toThrow(TypeError)
      expect(() => ftok('/tmp', 0)).toThrow(RangeError)
      expect(() => ftok('/tmp', 256)).toThrow(RangeError)
    })

    test('reads of a read-only attachment are bounds-checked', () => {
      const id = makeSegment(4096, 0o600)
      const ro = shmat(id, { readOnly: true })
      expect(ro.byteLength).toBe(4096)
      expect(ro.read(4090, 6).length).toBe(6)
      expect(() => ro.read(4090, 7)).toThrow(RangeError)
      expect(ro.detach()).toBe(true)
      expect(ro.detach()).toBe(false)
      expect(() => ro.read(0, 1)).toThrow(/detached/)
    })
  })

  describe('prefault', () => {
    test('maps exactly the pages under a view into this process, and a second mapping of them separately', () => {
      const MiB = 1 << 20
      const id = makeSegment(4 * MiB)
      const buf = shmat(id)
      try {
        expect(segmentRss(id)).toEqual([0]) // nothing touched yet
        // Page-rounded outwards: bytes 4095..(1 MiB + 4097) cover 258 pages.
        expect(prefault(new Uint8Array(buf, MiB + 4095, MiB + 2))).toBe(true)
        expect(segmentRss(id)).toEqual([MiB + 2 * 4096])
        const again = shmat(id) // another mapping: its page tables are its own
        try {
          expect(segmentRss(id).reduce((a, b) => a + b)).toBe(MiB + 2 * 4096)
          expect(prefault(new Uint32Array(again, MiB, MiB / 4))).toBe(true)
          expect(segmentRss(id).sort()).toEqual([MiB, MiB + 2 * 4096])
          // The bytes are the segment's: zeros, and what one mapping writes the other reads.
          new Uint8Array(buf)[MiB + 100] = 7
          expect(new Uint8Array(again)[MiB + 100]).toBe(7)
        } finally {
          shmdt(again)
        }
      } finally {
        shmdt(buf)
      }
    })

    test('anything but a live shmat() mapping is left alone (false) or refused (TypeError)', () => {
      expect(prefault(Buffer.alloc(64 * 1024))).toBe(false)
      expect(prefault(new Uint8Array(new SharedArrayBuffer(8192)))).toBe(false)
      const id = makeSegment(8192)
      const buf = shmat(id)
      expect(prefault(new Uint8Array(buf, 0, 0))).toBe(false) // nothing to map
      const view = new Uint8Array(buf)
      shmdt(buf)
      expect(prefault(view)).toBe(false) // detached: length 0, never the old address
      expect(() => prefault(new DataView(new ArrayBuffer(8)))).toThrow(TypeError)
      expect(() => prefault({} as Uint8Array)).toThrow(TypeError)
    })
  })
})
