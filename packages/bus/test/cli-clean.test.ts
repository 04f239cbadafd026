/**
 * `ipc-bus` cleaning up, and what it cannot read: gc (a bus whose members
 * were SIGKILLed, a stale FIFO, a live bus left alone, --dry-run), rm
 * (refused while members live), a corrupt segment with the bus magic,
 * another user's 0600 bus. The built CLI runs as a subprocess; children,
 * named buses and segments are cleaned after each test (test/support).
 */
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { busKey } from '@ipc/bus'
import { shmat, shmdt } from '@ipc/native'
import { readableCopy } from '../../../test/support/children.js'
import { namedBus, uniqueName } from '../../../test/support/buses.js'
import { makeSegment } from '../../../test/support/segments.js'
import { cli, json, peer } from './cli-run.js'

/** Ids of every segment on the host now. */
function segmentIds(): Set<number> {
  return new Set(readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[1])))
}

/** The directory segment id at a named bus's key. */
function directoryId(name: string): number {
  const row = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).map(Number))
    .find((f) => f[0] === busKey(name))
  if (row === undefined) throw new Error(`no segment at the key of '${name}'`)
  return row[1]!
}

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('ipc-bus gc', () => {
  test('removes a bus whose members were SIGKILLed and their stale FIFO; a live bus and its FIFO stay; --dry-run removes nothing', async () => {
    const runtimeDir = mkdtempSync(join(tmpdir(), 'ipc-cli-gc-'))
    dirs.push(runtimeDir)
    const deadName = uniqueName('cli-gc-dead')
    const liveName = uniqueName('cli-gc-live')
    const pipe = { doorbell: 'pipe', runtimeDir, receive: ['in'] }
    const doomed = await peer(deadName, { ...pipe, backlog: { channel: 'jobs', count: 3, bytes: 10 }, subscribe: [{ topic: 't' }] })
    const live = await peer(liveName, pipe)
    const before = await json(['inspect', deadName])
    const deadSegments: number[] = [before.bus.id, ...before.channels.map((c: any) => c.segmentId), ...before.topics.map((t: any) => t.segmentId)]
    expect(deadSegments).toHaveLength(4) // directory, in, jobs, t
    const fifo = (pid: number): string => {
      const start = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ')[19]
      return join(runtimeDir, `ipc-bus-${pid}-${start}.bell`)
    }
    const deadFifo = fifo(doomed.pid)
    const liveFifo = fifo(live.pid)
    expect(existsSync(deadFifo) && existsSync(liveFifo)).toBe(true)
    doomed.child.kill('SIGKILL')
    await once(doomed.child, 'exit')

    const listed = (await json(['ls'])).find((b: any) => b.name === deadName)
    expect(listed).toMatchObject({ state: 'dead', dead: true, members: { alive: 0, dead: 1 } })

    const dry = await cli(['gc', '--dry-run', '--runtime-dir', runtimeDir]) // the whole host: a dry run touches nothing
    expect(dry.code).toBe(0)
    expect(dry.stdout).toContain(`would remove dead bus '${deadName}' (segment ${before.bus.id})`)
    expect(dry.stdout).toContain(`would remove stale FIFO ${deadFifo}`)
    expect(dry.stdout).not.toContain(liveName)
    const ids = segmentIds()
    for (const id of deadSegments) expect(ids.has(id)).toBe(true)
    expect(existsSync(deadFifo)).toBe(true)

    const r = await cli(['gc', deadName, liveName, '--runtime-dir', runtimeDir, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report).toMatchObject({ dryRun: false, kept: 1, fifos: [deadFifo], fifoErrors: [] })
    expect(report.buses).toHaveLength(1)
    expect(report.buses[0]).toMatchObject({ id: before.bus.id, name: deadName, removed: true, error: null, skipped: [] })
    expect([...report.buses[0].segments].sort()).toEqual([...deadSegments].sort())
    const after = segmentIds()
    for (const id of deadSegments) expect(after.has(id)).toBe(false)
    expect(existsSync(deadFifo)).toBe(false)
    expect(existsSync(liveFifo)).toBe(true)
    expect((await json(['inspect', liveName])).bus).toMatchObject({ state: 'live', members: { alive: 1, dead: 0 } })
    expect((await cli(['inspect', deadName])).code).toBe(1)
  })
})

describe('ipc-bus rm', () => {
  test('refuses a bus with a live member; --force removes it', async () => {
    const name = uniqueName('cli-rm')
    await peer(name, { backlog: { channel: 'jobs', count: 1, bytes: 10 } })
    const id = directoryId(name)
    const refused = await cli(['rm', name])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^ipc-bus: bus '.*' \(segment \d+\) has 1 live member\(s\): not removed/)
    expect(segmentIds().has(id)).toBe(true)
    expect((await json(['inspect', name])).bus.state).toBe('live')

    const forced = await cli(['rm', name, '--force'])
    expect(forced.code).toBe(0)
    expect(forced.stdout).toMatch(new RegExp(`^removed bus '${name}' \\(segment ${id}\\) and its segment\\(s\\) \\d+`))
    // Still attached by its member, but no longer at its key: nobody can open it.
    const listed = (await json(['ls'])).find((b: any) => b.id === id)
    expect(listed).toMatchObject({ name, key: '0x0', removed: true, state: 'live' })
  })
})

describe('what ipc-bus cannot read', () => {
  test('a segment with the bus magic and impossible contents is reported as corrupt, never crashed on', async () => {
    const id = makeSegment(65536)
    const buffer = shmat(id)
    // directory magic, version 1, initialised, channel slots 0 (impossible)
    new Int32Array(buffer).set([0x44435049, 1, 1, 0, 4, 64, 4])
    shmdt(buffer)
    const found = (await json(['ls'])).find((b: any) => b.id === id)
    expect(found).toMatchObject({ state: 'corrupt', name: null, readable: true, dead: false })
    expect(found.error).toMatch(/channelSlots/)
    const text = await cli(['ls'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`^\\? +${id} .* corrupt$`, 'm'))

    const inspect = await cli(['inspect', '--id', String(id)])
    expect(inspect.code).toBe(1)
    expect(inspect.stderr).toMatch(/^ipc-bus: bus in segment \d+ cannot be read: corrupt shared memory at directory.channelSlots/)
    expect(inspect.stderr).not.toMatch(/^\s+at /m) // a message, not a stack trace
    expect((await cli(['rm', '--id', String(id)])).code).toBe(1) // members unknown: refused
    expect((await cli(['gc', '--id', String(id), '--dry-run'])).stdout).not.toContain(`segment ${id}`)
  })

  test('a corrupt channel is reported in its row; the rest of the bus is read', async () => {
    const name = uniqueName('cli-corrupt-channel')
    await peer(name, { backlog: { channel: 'jobs', count: 2, bytes: 10 }, receive: ['fine'] })
    const jobs = (await json(['inspect', name])).channels.find((c: any) => c.name === 'jobs')
    const buffer = shmat(jobs.segmentId)
    new Int32Array(buffer)[2] = 0 // lanes = 0
    shmdt(buffer)
    const d = await json(['inspect', name])
    expect(d.channels.find((c: any) => c.name === 'jobs').error).toMatch(/channel\.lanes/)
    expect(d.channels.find((c: any) => c.name === 'fine')).toMatchObject({ error: null, receiver: expect.objectContaining({ alive: true }) })
    const text = await cli(['inspect', name])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^NOT READ\n {2}jobs: corrupt shared memory at channel\.lanes/m)
  })

  test("another user's 0600 bus is listed as not readable, never an exception", async () => {
    const name = uniqueName('cli-private-to-root')
    await namedBus(name) // this process (root), mode 0600
    const id = directoryId(name)
    const asNobody = { uid: 65534, gid: 65534, cwd: readableCopy() }
    const main = join(readableCopy(), 'node_modules', '@ipc', 'bus', 'dist', 'cli', 'main.js')
    const r = await cli(['ls', '--json'], asNobody, main)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const found = (JSON.parse(r.stdout) as any[]).find((b) => b.id === id)
    expect(found).toMatchObject({ readable: false, state: 'unreadable', name: null, mode: '0600', uid: 0, key: `0x${(busKey(name) >>> 0).toString(16)}` })
    const text = await cli(['ls'], asNobody, main)
    expect(text.stdout).toMatch(new RegExp(`^\\? +${id} .* not readable$`, 'm'))
    const inspect = await cli(['inspect', name], asNobody, main)
    expect(inspect.code).toBe(1)
    expect(inspect.stderr).toMatch(/^ipc-bus: bus in segment \d+ cannot be read: permission denied/)
    expect(inspect.stderr).not.toMatch(/^\s+at /m)
    const rm = await cli(['rm', name], asNobody, main)
    expect(rm.code).toBe(1)
    expect(segmentIds().has(id)).toBe(true)
  })
})
