/**
 * Every example in examples/ run as a real process (`node examples/dist/<name>.js`),
 * its output checked line by line. Children are tracked (test/support/children.ts)
 * and killed after each test, pass or fail; the examples remove their own
 * segments and FIFOs, and the suite's reporter fails the run on any leak.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { finish, track, type Finished } from '../support/children.js'
import { listSegments } from '../support/leaks.js'

function examplePath(name: string): string {
  return fileURLToPath(new URL(`../../examples/dist/${name}.js`, import.meta.url))
}

interface Running {
  child: ChildProcess
  /** Everything the child has printed so far. */
  out: { stdout: string; stderr: string }
}

/** Starts an example, tracked for cleanup, collecting its output from the first byte. */
function startExample(name: string, args: readonly string[] = [], options: SpawnOptions = {}): Running {
  const child = track(spawn(process.execPath, [examplePath(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options }))
  const out = { stdout: '', stderr: '' }
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { out.stdout += d })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { out.stderr += d })
  return { child, out }
}

/** Runs an example to completion; its full output. */
async function runExample(name: string, args: readonly string[] = [], timeoutMs = 20_000): Promise<Finished> {
  const { child, out } = startExample(name, args)
  const { code, signal } = await finish(child, timeoutMs)
  return { code, signal, ...out }
}

/** Polls until cond() holds; rejects with what the child printed after timeoutMs. */
async function until(cond: () => boolean, running: Running, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout: ${running.out.stdout}\nstderr: ${running.out.stderr}`)
    if (running.child.exitCode !== null || running.child.signalCode !== null) {
      if (cond()) return
      throw new Error(`exited (${running.child.exitCode ?? running.child.signalCode}) while waiting for ${what}\nstdout: ${running.out.stdout}\nstderr: ${running.out.stderr}`)
    }
    await new Promise((r) => setTimeout(r, 10))
  }
}

const count = (text: string, needle: string): number => text.split(needle).length - 1

beforeAll(() => {
  if (!existsSync(examplePath('tour'))) throw new Error('examples/dist is missing: run `npx -y pnpm@10.34.9 build` first')
})

describe('sleeper', () => {
  test('prints while sleeping, survives two SIGINTs and exits 0 on the third', async () => {
    const sleeper = startExample('sleeper', ['--interval', '0.1'])
    const { child, out } = sleeper
    await until(() => out.stdout.includes("I'm sleeping\n"), sleeper, 'the first "I\'m sleeping"')
    expect(out.stdout).toMatch(new RegExp(`^sleeper pid ${child.pid} ready: send SIGINT 3 times`))

    for (let i = 1; i <= 2; i++) {
      child.kill('SIGINT')
      await until(() => out.stdout.includes(`SIGINT ${i} of 3 (from pid ${process.pid})\n`), sleeper, `SIGINT ${i} of 3`)
    }
    // Still alive after two: it keeps sleeping.
    const printed = count(out.stdout, "I'm sleeping")
    await until(() => count(out.stdout, "I'm sleeping") >= printed + 2, sleeper, 'more sleeping after two SIGINTs')
    expect(child.exitCode).toBeNull()
    expect(child.signalCode).toBeNull()

    child.kill('SIGINT')
    const done = await finish(child, 5_000)
    expect(done).toMatchObject({ code: 0, signal: null })
    expect(out.stdout).toMatch(/SIGINT 3 of 3 \(from pid \d+\)\ngot 3 SIGINTs, exiting\n$/)
    expect(count(out.stdout, "I'm sleeping")).toBeGreaterThanOrEqual(printed + 2)
    // Nothing but the expected lines.
    for (const line of out.stdout.trimEnd().split('\n')) {
      expect(line).toMatch(/^(sleeper pid \d+ ready: .*|I'm sleeping|SIGINT [123] of 3 \(from pid \d+\)|got 3 SIGINTs, exiting)$/)
    }
    expect(out.stderr).toBe('')
  }, 30_000)

  test('--times 1 exits on the first SIGINT', async () => {
    const sleeper = startExample('sleeper', ['--interval', '5', '--times', '1'])
    await until(() => sleeper.out.stdout.includes("I'm sleeping\n"), sleeper, 'the first line')
    sleeper.child.kill('SIGINT')
    expect(await finish(sleeper.child, 5_000)).toMatchObject({ code: 0, signal: null })
    expect(sleeper.out.stdout).toMatch(/\nSIGINT 1 of 1 \(from pid \d+\)\ngot 1 SIGINTs, exiting\n$/)
  }, 30_000)
})

describe('pipes', () => {
  test('pipe-to-child: the child prints exactly the message the parent wrote', async () => {
    const r = await runExample('pipe-to-child')
    expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(r.stdout).toMatch(/^parent (\d+): sending 13 bytes to child (\d+)\nchild \2: got "Hello, child!"\nparent: child exited with code 0\n$/)
  }, 30_000)

  test('pipe-to-child: --message carries UTF-8 and newlines intact', async () => {
    const message = 'héllo\nwörld ✓'
    const r = await runExample('pipe-to-child', ['--message', message])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`sending ${Buffer.byteLength(message)} bytes`)
    expect(r.stdout).toMatch(/\nchild \d+: got "héllo\nwörld ✓"\nparent: child exited with code 0\n$/)
  }, 30_000)

  test('two-pipes: questions on A and answers on B alternate, then both close', async () => {
    const r = await runExample('two-pipes', ['--rounds', '4'])
    expect(r).toMatchObject({ code: 0, stderr: '' })
    const lines = r.stdout.trimEnd().split('\n')
    const parentPid = /from parent (\d+)/.exec(r.stdout)![1]
    const childPid = /from child (\d+)/.exec(r.stdout)![1]
    const expected: string[] = []
    for (let i = 1; i <= 4; i++) {
      expected.push(`parent sends on A: question ${i} from parent ${parentPid}`)
      expected.push(`child got on A:    question ${i} from parent ${parentPid}`)
      expected.push(`parent got on B:   answer ${i} from child ${childPid}`)
    }
    expected.push('parent: pipe B closed, child exited with code 0')
    expect(lines).toEqual(expected)
  }, 30_000)
})

describe('Ni! server', () => {
  test('wraps each default line in Ni! and exits when its pipe closes', async () => {
    const r = await runExample('ni-server')
    expect(r).toMatchObject({ code: 0, stderr: '' })
    const lines = ['We are the knights who say...', 'a shrubbery!', 'one that looks nice, and not too expensive']
    expect(r.stdout).toBe(lines.map((l) => `> ${l}\nNi!\n${l}\nNi!\n`).join('') + 'server exited with code 0\n')
  }, 30_000)

  test('frames survive newlines, empty lines and a reply larger than the pipe buffer', async () => {
    const big = 'x'.repeat(100_000) // > 64 KiB: arrives in several reads
    const lines = ['two\nlines', '', 'Ni', big]
    const r = await runExample('ni-server', lines)
    expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(r.stdout).toBe(lines.map((l) => `> ${l}\nNi!\n${l}\nNi!\n`).join('') + 'server exited with code 0\n')
  }, 30_000)
})

describe('FIFO', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'ipc-examples-fifo-')) })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  test('a reader and a writer started separately: the reader prints the writer’s lines and removes the FIFO', async () => {
    const path = join(dir, 'fifo')
    const reader = startExample('fifo', ['reader', path])
    await until(() => reader.out.stdout.includes('waiting for a writer'), reader, 'the reader to wait')
    expect(lstatSync(path).isFIFO()).toBe(true)
    const writer = startExample('fifo', ['writer', path, 'one', 'two words', 'three'])
    const [r, w] = await Promise.all([finish(reader.child), finish(writer.child)])
    expect(w).toMatchObject({ code: 0 })
    expect(writer.out.stdout).toBe(`writer ${writer.child.pid}: wrote 3 lines to ${path}\n`)
    expect(r).toMatchObject({ code: 0 })
    expect(reader.out.stdout).toBe([
      `reader ${reader.child.pid}: created FIFO ${path}, waiting for a writer`,
      'reader got: one',
      'reader got: two words',
      'reader got: three',
      'reader: EOF after 3 lines (the last writer closed)',
      `reader: removed ${path}`,
      '',
    ].join('\n'))
    expect(existsSync(path)).toBe(false)
  }, 30_000)

  test('a writer with no FIFO to write to says to start the reader, and creates nothing', async () => {
    const path = join(dir, 'missing')
    const r = await runExample('fifo', ['writer', path, 'hello'])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('start the reader first')
    expect(existsSync(path)).toBe(false)
  }, 30_000)

  test('a reader interrupted while it waits removes its FIFO and dies of SIGINT', async () => {
    const path = join(dir, 'fifo')
    const reader = startExample('fifo', ['reader', path])
    await until(() => reader.out.stdout.includes('waiting for a writer'), reader, 'the reader to wait')
    reader.child.kill('SIGINT')
    expect(await finish(reader.child, 5_000)).toMatchObject({ code: null, signal: 'SIGINT' })
    expect(existsSync(path)).toBe(false)
  }, 30_000)
})

describe('signal ping-pong', () => {
  function parse(stdout: string): { rounds: number; rate: number; answered: number } {
    const rounds = /^ping-pong: (\d+) round trips in [\d.]+ s$/m.exec(stdout)
    const rate = /^ping-pong: (\d+) round trips\/s \([\d.]+ µs per round trip\)$/m.exec(stdout)
    const answered = /^child \d+: answered (\d+) pings$/m.exec(stdout)
    expect(rounds, stdout).not.toBeNull()
    expect(rate, stdout).not.toBeNull()
    expect(answered, stdout).not.toBeNull()
    return { rounds: Number(rounds![1]), rate: Number(rate![1]), answered: Number(answered![1]) }
  }

  test('N round trips inside a new process group, at a positive rate; the test runner is never hit', async () => {
    const r = await runExample('signal-pingpong', ['--rounds', '1000'])
    expect(r).toMatchObject({ code: 0, stderr: '' })
    // The parent leads its own group; the child is in it.
    const head = /^ping-pong: process group (\d+) \(parent (\d+), child (\d+)\), ping SIGRTMIN\+1, pong SIGRTMIN\+2$/m.exec(r.stdout)
    expect(head, r.stdout).not.toBeNull()
    expect(head![1]).toBe(head![2])
    const { rounds, rate, answered } = parse(r.stdout)
    expect(rounds).toBe(1000)
    expect(answered).toBe(1000)
    expect(rate).toBeGreaterThan(0)
    expect(r.stdout).not.toContain('ignored')
    // Had kill(0, ...) reached our group, SIGRTMIN+1's default action would have ended this process.
  }, 30_000)

  test('a session leader (detached) gets EPERM from setpgid but already leads its group', async () => {
    const { child, out } = startExample('signal-pingpong', ['--rounds', '200'], { detached: true })
    const r = await finish(child)
    expect(r).toMatchObject({ code: 0 })
    expect(out.stderr).toBe('')
    const { rounds, answered } = parse(out.stdout)
    expect([rounds, answered]).toEqual([200, 200])
  }, 30_000)

  test('--seconds runs for a duration and counts what it did', async () => {
    const r = await runExample('signal-pingpong', ['--seconds', '0.3'])
    expect(r.code).toBe(0)
    const { rounds, rate, answered } = parse(r.stdout)
    expect(rounds).toBeGreaterThan(0)
    expect(answered).toBe(rounds)
    expect(rate).toBeGreaterThan(0)
  }, 30_000)
})

describe('shm segment', () => {
  function checkRun(r: Finished, pid: number, size: number): number {
    expect(r).toMatchObject({ code: 0, stderr: '' })
    const id = Number(/^created segment (\d+) \(key 0x[0-9a-f]{8}, (\d+) bytes\)$/m.exec(r.stdout)![1])
    const field = (name: string): string => new RegExp(`^  ${name} +(\\S+)`, 'm').exec(r.stdout)?.[1] ?? `<no ${name}>`
    const uid = String(process.getuid!())
    const gid = String(process.getgid!())
    expect({
      size: field('size'), mode: field('mode'), uid: field('uid'), gid: field('gid'), cuid: field('cuid'), cgid: field('cgid'),
      cpid: field('cpid'), lpid: field('lpid'), nattch: field('nattch'), dtime: field('dtime'), dest: field('dest'),
    }).toEqual({
      size: String(size), mode: '0600', uid, gid, cuid: uid, cgid: gid,
      cpid: String(pid), lpid: String(pid), nattch: '1', dtime: 'never', dest: 'false',
    })
    expect(field('atime')).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(field('ctime')).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(r.stdout).toContain('IPC_RMID: marked for removal (dest true, nattch 1)')
    expect(r.stdout).toContain('detached: every view is now empty (byteLength 0)')
    expect(r.stdout).toContain(`segment ${id} is gone: IPC_STAT fails with EINVAL; /proc/sysvipc/shm lists it: false`)
    // And from outside, after it exited:
    expect(listSegments().map((s) => s.shmid)).not.toContain(id)
    return id
  }

  test('IPC_PRIVATE: created, attached, written, stat-ed, removed, detached, gone', async () => {
    const { child, out } = startExample('shm-segment')
    const r = await finish(child)
    checkRun({ ...r, stdout: out.stdout, stderr: out.stderr }, child.pid!, 4096)
    expect(out.stdout).toContain('wrote 25 bytes: "Hello from shared memory!"')
    expect(out.stdout).toMatch(/^ {2}key +0x00000000 /m)
  }, 30_000)

  test('an ftok key and a custom size', async () => {
    const { child, out } = startExample('shm-segment', ['--key', 'ftok', '--size', '100', '--text', 'ftok'])
    const r = await finish(child)
    checkRun({ ...r, stdout: out.stdout, stderr: out.stderr }, child.pid!, 100)
    expect(out.stdout).toMatch(/^ {2}key +0x(?!00000000)[0-9a-f]{8} /m)
    expect(out.stdout).toContain('wrote 4 bytes: "ftok"')
  }, 30_000)
})

describe('tour', () => {
  test('runs every example under a heading, in well under a minute, and exits 0', async () => {
    const began = Date.now()
    const r = await runExample('tour', [], 55_000)
    expect(r, r.stdout).toMatchObject({ code: 0, stderr: '' })
    expect(Date.now() - began).toBeLessThan(30_000)
    const headings = [...r.stdout.matchAll(/^== (\d)\. (\S+\.js)/gm)].map((m) => `${m[1]} ${m[2]}`)
    expect(headings).toEqual([
      '1 sleeper.js', '2 pipe-to-child.js', '3 two-pipes.js', '4 fifo.js', '5 ni-server.js', '6 signal-pingpong.js', '7 shm-segment.js',
    ])
    // Output is indented under its heading; the interesting lines are there.
    expect(r.stdout).toContain('\n    SIGINT 3 of 3 ')
    expect(r.stdout).toContain('\n    got 3 SIGINTs, exiting\n')
    expect(r.stdout).toMatch(/\n {4}child \d+: got "Hello, child!"\n/)
    expect(r.stdout).toMatch(/\n {4}reader \| reader got: third line\n/)
    expect(r.stdout).toMatch(/\n {4}writer \| writer \d+: wrote 3 lines/)
    expect(r.stdout).toContain('\n    Ni!\n    a shrubbery!\n    Ni!\n')
    expect(r.stdout).toMatch(/\n {4}ping-pong: 2000 round trips in /)
    expect(r.stdout).toMatch(/\n {4}segment \d+ is gone: /)
    expect(r.stdout).toMatch(/\ntour: 7 of 7 examples ran cleanly in [\d.]+ s\n$/)
    expect(r.stdout).not.toContain('FAILED')
  }, 60_000)
})
