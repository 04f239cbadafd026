#!/usr/bin/env node
/**
 * Mutation check: do the tests still bite? (issue 18 item 6)
 *
 * For each mutant of the table below: apply it (one exact, unique search
 * string replaced in one source file), rebuild the package, run the test
 * files that should kill it (with a timeout), then restore the file (always:
 * finally, SIGINT/SIGTERM and exit handlers), check the file is as it was,
 * and rebuild again. Prints killed / survived with durations and the first
 * failure line of the killing test, which should name the broken invariant.
 *
 *   pnpm mutate                      every mutant
 *   pnpm mutate -- --only core       mutants of one package, or ids: --only park-no-cas,lane-padding-unchecked
 *   pnpm mutate -- --list            the table, nothing run
 *   options: --timeout <s> (per mutant, default 120), --no-baseline (skip the unmutated run of
 *            each killer test file), --verbose (stream test output), --keep-logs
 *
 * Statuses: killed; survived (the tests passed with the mutant in);
 * timeout (killed only by the per-mutant timeout: the tests hang instead of
 * failing); search string not found / ambiguous (the source moved on: update
 * the row); no test file (a killer file does not exist yet); build failed
 * (the mutant does not compile: fix the row); baseline fails (a killer test
 * fails without the mutant, so a kill would prove nothing).
 *
 * It edits files of this working tree and rebuilds their package's dist:
 * do not run other tests in this tree meanwhile (or run it in a copy:
 * cp -a the repository elsewhere and run it there). Not part of `pnpm test`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * The mutants. file: relative to the repository root; search: an exact
 * string that must occur exactly once; replace: what it becomes; tests:
 * the test files that must fail with it.
 */
const MUTANTS = [
  // ---- core ----------------------------------------------------------------
  {
    id: 'park-no-cas', pkg: 'core', file: 'packages/core/src/ring/park.ts',
    description: 'shouldRing() without the CAS: load PARKED, then a plain store of AWAKE (two senders can both win)',
    search: 'return Atomics.load(parked, index) === PARKED && Atomics.compareExchange(parked, index, PARKED, AWAKE) === PARKED',
    replace: 'return Atomics.load(parked, index) === PARKED && (Atomics.store(parked, index, AWAKE), true)',
    tests: ['packages/core/test/park.rings.threads.test.ts'],
  },
  {
    id: 'park-no-recheck', pkg: 'core', file: 'packages/core/src/ring/park.ts',
    description: 'park() without its re-check: stores PARKED and sleeps even when a sender published meanwhile',
    search: '  Atomics.store(parked, index, PARKED)\n  if (!source.hasData()) return true\n',
    replace: '  Atomics.store(parked, index, PARKED)\n  if (source) return true\n',
    tests: ['packages/core/test/park.threads.test.ts'],
  },
  {
    id: 'lane-padding-unchecked', pkg: 'core', file: 'packages/core/src/ring/consumer.ts',
    description: 'consumer skips a padding record without validating it (length = tail - 8, tail <= committed)',
    search: 'if (length !== tail - RECORD_HEADER || tail > available) {',
    replace: 'if (false) {',
    tests: ['packages/core/test/lane.padding.test.ts'],
  },
  {
    id: 'lane-padding-length', pkg: 'core', file: 'packages/core/src/ring/consumer.ts',
    description: 'padding record: only tail <= committed checked, not its length',
    search: 'if (length !== tail - RECORD_HEADER || tail > available) {',
    replace: 'if (tail > available) {',
    tests: ['packages/core/test/lane.padding.test.ts'],
  },
  {
    id: 'lane-padding-commit', pkg: 'core', file: 'packages/core/src/ring/consumer.ts',
    description: 'padding record: only its length checked, not that the whole tail is committed',
    search: 'if (length !== tail - RECORD_HEADER || tail > available) {',
    replace: 'if (length !== tail - RECORD_HEADER) {',
    tests: ['packages/core/test/lane.padding.test.ts'],
  },
  {
    id: 'lane-publish-before-copy', pkg: 'core', file: 'packages/core/src/ring/producer.ts',
    description: 'tryWrite publishes WRITE before copying the payload in',
    search: '    this.copyIn(bytes, 0, length, at + RECORD_HEADER)\n    this.stage(at, length, type)\n    if (publish) this.publish()\n',
    replace: '    this.stage(at, length, type)\n    if (publish) this.publish()\n    this.copyIn(bytes, 0, length, at + RECORD_HEADER)\n',
    tests: ['packages/core/test/lanes.threads.test.ts'],
  },
  {
    id: 'lane-read-before-handler', pkg: 'core', file: 'packages/core/src/ring/consumer.ts',
    description: 'drain stores READ before the handler has read the record (the producer may overwrite it)',
    search: '        bytes += length\n        handler(data, at + RECORD_HEADER',
    replace: '        bytes += length\n        Atomics.store(words, READ_I, read | 0)\n        handler(data, at + RECORD_HEADER',
    tests: ['packages/core/test/lanes.threads.test.ts'],
  },
  {
    id: 'segment-claim-store', pkg: 'core', file: 'packages/core/src/channel/segment.ts',
    description: 'claimReceiver takes the RECEIVER word with a plain store instead of a CAS',
    search: 'if (Atomics.compareExchange(cell, 0, current, word) === current) {',
    replace: 'if ((Atomics.store(cell, 0, word), true)) {',
    tests: ['packages/core/test/claim.threads.test.ts'],
  },
  // ---- bus (search strings follow packages/bus/src as it is; update them when it moves on) ----
  {
    id: 'bus-liveness-pid-only', pkg: 'bus', file: 'packages/bus/src/liveness.ts',
    description: 'isAlive() by pid only: a live pid with another start time counts as alive (claims, lanes, members)',
    search: 'return pid > 0 && processStartTime(pid) === startTime',
    replace: 'return pid > 0 && processStartTime(pid) >= 0',
    tests: ['packages/bus/test/wakeups.test.ts'],
  },
  {
    id: 'bus-receiver-alive-pid-only', pkg: 'bus', file: 'packages/bus/src/doorbell.ts',
    description: "receiverAlive() by pid only: a sender keeps writing to (and signalling) a pid that is another process now",
    search: 'if (start !== who.startTime) {',
    replace: 'if (start < 0) {',
    tests: ['packages/bus/test/wakeups.test.ts'],
  },
  {
    id: 'bus-no-room-ring', pkg: 'bus', file: 'packages/bus/src/channel/reader.ts',
    description: 'the receiver never rings a sender waiting for room (only its re-check interval wakes it)',
    search: 'if (this.segment.roomWanted.length > 0) this.ringForRoom()',
    replace: 'if (this.segment.roomWanted.length > 0) this.segment.roomWanted.length = 0',
    tests: ['packages/bus/test/wakeups.test.ts'],
  },
  {
    id: 'bus-winner-no-ring', pkg: 'bus', file: 'packages/bus/src/channel/writer.ts',
    description: 'the sender that wins the parked word (CAS) does not ring the receiver',
    search: 'if (!sender.shouldRing()) return',
    replace: 'if (!sender.shouldRing() || SELF_PID > 0) return',
    tests: ['packages/bus/test/wakeups.test.ts'],
  },
  {
    id: 'bus-no-backstop', pkg: 'bus', file: 'packages/bus/src/channel/reader.ts',
    description: "backstop timer off: a parked receiver never re-checks its lanes (a winner killed before ringing stalls it)",
    search: "return process.env.IPC_BUS_BACKSTOP !== 'off'",
    replace: 'return false',
    tests: ['packages/bus/test/bus.test.ts'],
  },
]

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2).filter((a) => a !== '--')
const flag = (name) => argv.includes(name)
const option = (name) => {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`))
  if (i < 0) return undefined
  return argv[i].includes('=') ? argv[i].slice(name.length + 1) : argv[i + 1]
}
const only = option('--only')?.split(',').map((s) => s.trim()).filter(Boolean)
const TIMEOUT_MS = Number(option('--timeout') ?? 120) * 1000
const BASELINE = !flag('--no-baseline')
const VERBOSE = flag('--verbose')
const KEEP_LOGS = flag('--keep-logs')
if (flag('--help') || flag('-h')) {
  const text = readFileSync(fileURLToPath(import.meta.url), 'utf8')
  process.stdout.write(`${text.slice(text.indexOf('/**') + 4, text.indexOf('*/')).replace(/^ \* ?/gm, '')}\n`)
  process.exit(0)
}
const known = new Set(MUTANTS.flatMap((m) => [m.id, m.pkg]))
for (const o of only ?? []) if (!known.has(o)) fail(`--only ${o}: no mutant or package of that name (see --list)`)
const selected = MUTANTS.filter((m) => only === undefined || only.includes(m.id) || only.includes(m.pkg))

if (flag('--list')) {
  for (const m of selected) console.log(`${m.id.padEnd(26)} ${m.pkg.padEnd(5)} ${m.file}\n${''.padEnd(33)}${m.description}\n${''.padEnd(33)}killers: ${m.tests.join(', ')}`)
  process.exit(0)
}

// ---------------------------------------------------------------- helpers

function fail(message) {
  console.error(`mutate: ${message}`)
  process.exit(2)
}

// eslint-disable-next-line no-control-regex -- ESC starts the colour codes this strips
const stripAnsi = (s) => s.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '')
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`
const logDir = mkdtempSync(join(tmpdir(), 'ipc-mutate-'))
let child = null

/** Runs a command in its own process group (so a timeout or Ctrl-C ends all of it); resolves with its output. */
function run(command, args, { timeoutMs = 0, log } = {}) {
  return new Promise((resolvePromise) => {
    const started = performance.now()
    const proc = spawn(command, args, {
      cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    })
    child = proc
    let output = ''
    const take = (chunk) => {
      const text = chunk.toString()
      if (output.length < 4_000_000) output += text
      if (VERBOSE) process.stdout.write(text)
    }
    proc.stdout.on('data', take)
    proc.stderr.on('data', take)
    let timedOut = false
    let timer = null
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true
        killGroup(proc, 'SIGTERM')
        setTimeout(() => killGroup(proc, 'SIGKILL'), 5000).unref()
      }, timeoutMs)
    }
    proc.on('close', (code, signal) => {
      if (timer !== null) clearTimeout(timer)
      child = null
      if (log !== undefined) writeFileSync(log, output)
      resolvePromise({ code, signal, timedOut, output: stripAnsi(output), ms: performance.now() - started })
    })
  })
}

function killGroup(proc, signal) {
  try { process.kill(-proc.pid, signal) } catch { /* already gone */ }
}

const TSC = join(ROOT, 'node_modules', '.bin', 'tsc')
const VITEST = join(ROOT, 'node_modules', '.bin', 'vitest')

async function build(pkg) {
  const r = await run(TSC, ['-p', `packages/${pkg}/tsconfig.json`])
  return { ok: r.code === 0, output: r.output, ms: r.ms }
}

function buildSync(pkg) {
  const r = spawnSync(TSC, ['-p', `packages/${pkg}/tsconfig.json`], { cwd: ROOT, encoding: 'utf8' })
  return r.status === 0
}

function firstLines(text, n = 3) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, n).join(' | ')
}

/** The line that says why the tests failed: fast-check's cause, else the first assertion or error line. */
function reason(output) {
  const lines = output.split('\n')
  const find = (re) => lines.find((l) => re.test(l))
  const line = find(/Caused by: /)
    ?? find(/^\s*(AssertionError|[A-Z][A-Za-z]*(Error|Segment|Bus|Gone|Busy)):? /)
    ?? find(/Test timed out/)
    ?? find(/\bFAIL\b/)
  return (line ?? '').trim().replace(/^Caused by: /, '').slice(0, 240)
}

/** vitest's verdict from its output and exit code. */
function verdict(r) {
  if (r.timedOut) return 'timeout'
  if (r.code === 0) return 'passed'
  if (/No test files found/.test(r.output)) return 'no test file'
  return 'failed'
}

async function runTests(files, log) {
  const r = await run(VITEST, ['run', ...files], { timeoutMs: TIMEOUT_MS, log })
  return { ...r, verdict: verdict(r), reason: reason(r.output) }
}

const git = (...args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' })
const isCleanInGit = (file) => git('status', '--porcelain', '--', file).stdout.trim() === ''

// ---------------------------------------------------------------- restore

/** The mutant in place now: { mutant, path, before, mutated, gitClean }. */
let active = null

/**
 * Puts the mutated file back. If someone else edited it meanwhile, only our
 * replacement is undone. Returns a problem description, or null when the
 * file is exactly as it was (and clean in git if it was clean before).
 */
function restore() {
  if (active === null) return null
  const { mutant, path, before, mutated, gitClean } = active
  active = null
  let now
  try { now = readFileSync(path, 'utf8') } catch (e) { return `cannot read ${mutant.file} to restore it: ${e.message}` }
  if (now === mutated) writeFileSync(path, before)
  else if (now !== before) {
    const at = now.indexOf(mutant.replace)
    if (at < 0 || now.indexOf(mutant.replace, at + 1) >= 0) {
      return `${mutant.file} changed under the mutant and the replacement is not found exactly once: restore it by hand (search string: ${JSON.stringify(mutant.search)})`
    }
    writeFileSync(path, now.slice(0, at) + mutant.search + now.slice(at + mutant.replace.length))
    return `${mutant.file} was edited by someone else while mutated: only the mutant was undone`
  }
  if (readFileSync(path, 'utf8') !== before) return `${mutant.file} differs from its content before the mutant`
  if (gitClean && !isCleanInGit(mutant.file)) return `${mutant.file} was clean in git before and is not now`
  return null
}

let interrupted = false
function onSignal(signal) {
  if (interrupted) return
  interrupted = true
  console.error(`\nmutate: ${signal}: stopping the tests and restoring the mutated file`)
  if (child !== null) killGroup(child, 'SIGKILL')
  const pkg = active?.mutant.pkg
  const problem = restore()
  if (problem !== null) console.error(`mutate: ${problem}`)
  if (pkg !== undefined) console.error(buildSync(pkg) ? `mutate: rebuilt packages/${pkg}` : `mutate: REBUILD OF packages/${pkg} FAILED: run npx tsc -p packages/${pkg}/tsconfig.json`)
  process.exit(130)
}
process.on('SIGINT', () => onSignal('SIGINT'))
process.on('SIGTERM', () => onSignal('SIGTERM'))
process.on('SIGHUP', () => onSignal('SIGHUP'))
process.on('exit', () => {
  if (active !== null) {
    const pkg = active.mutant.pkg
    const problem = restore()
    if (problem !== null) console.error(`mutate: ${problem}`)
    buildSync(pkg)
  }
})

// ---------------------------------------------------------------- lock

const lock = join(tmpdir(), `ipc-mutate-${createHash('sha1').update(ROOT).digest('hex').slice(0, 12)}.lock`)
if (existsSync(lock)) {
  const pid = Number(readFileSync(lock, 'utf8'))
  let alive = false
  try { process.kill(pid, 0); alive = true } catch { /* stale */ }
  if (alive && pid !== process.pid) fail(`another mutation run (pid ${pid}) works on ${ROOT}`)
}
writeFileSync(lock, String(process.pid))
process.on('exit', () => {
  try { rmSync(lock) } catch { /* gone */ }
  if (!KEEP_LOGS) rmSync(logDir, { recursive: true, force: true })
})

// ---------------------------------------------------------------- main

const results = []
const packages = [...new Set(selected.map((m) => m.pkg))]
console.log(`mutate: ${selected.length} mutant(s) in ${ROOT}; per-mutant timeout ${seconds(TIMEOUT_MS)}; logs in ${logDir}`)

for (const pkg of packages) {
  const b = await build(pkg)
  if (!b.ok) fail(`packages/${pkg} does not build before any mutant (fix that first):\n${b.output}`)
}

/** Unmutated run of every killer file that exists: a kill only counts if the file passes without the mutant. */
const baseline = new Map()
if (BASELINE) {
  const files = [...new Set(selected.flatMap((m) => m.tests))].filter((f) => existsSync(join(ROOT, f)))
  for (const file of files) {
    process.stdout.write(`baseline ${file} ... `)
    const r = await runTests([file], join(logDir, `baseline-${file.replace(/\W+/g, '_')}.log`))
    baseline.set(file, r)
    console.log(`${r.verdict} in ${seconds(r.ms)}${r.verdict === 'passed' ? '' : `: ${r.reason}`}`)
  }
}

for (const mutant of selected) {
  const path = join(ROOT, mutant.file)
  const result = { mutant, status: '', ms: 0, detail: '' }
  results.push(result)
  process.stdout.write(`${mutant.id} ... `)
  const missing = mutant.tests.filter((f) => !existsSync(join(ROOT, f)))
  let source = null
  try { source = readFileSync(path, 'utf8') } catch { /* reported below */ }
  const count = source === null ? -1 : source.split(mutant.search).length - 1
  if (source === null) Object.assign(result, { status: 'file not found', detail: mutant.file })
  else if (count === 0) Object.assign(result, { status: 'search string not found', detail: `in ${mutant.file}: update the row` })
  else if (count > 1) Object.assign(result, { status: 'search string ambiguous', detail: `${count} matches in ${mutant.file}` })
  else if (missing.length > 0) Object.assign(result, { status: 'no test file', detail: missing.join(', ') })
  else if (mutant.tests.some((f) => baseline.has(f) && baseline.get(f).verdict !== 'passed')) {
    const f = mutant.tests.find((t) => baseline.get(t)?.verdict !== 'passed')
    Object.assign(result, { status: 'baseline fails', detail: `${f}: ${baseline.get(f).reason}` })
  }
  if (result.status !== '') {
    console.log(result.status)
    continue
  }

  const mutated = source.replace(mutant.search, () => mutant.replace)
  active = { mutant, path, before: source, mutated, gitClean: isCleanInGit(mutant.file) }
  let problem = null
  try {
    writeFileSync(path, mutated)
    const b = await build(mutant.pkg)
    if (!b.ok) {
      Object.assign(result, { status: 'build failed', detail: firstLines(b.output) })
    } else {
      const t = await runTests(mutant.tests, join(logDir, `${mutant.id}.log`))
      result.ms = t.ms
      if (t.verdict === 'passed') Object.assign(result, { status: 'survived', detail: 'the killer tests passed with the mutant in' })
      else if (t.verdict === 'timeout') Object.assign(result, { status: 'timeout', detail: `no failure within ${seconds(TIMEOUT_MS)}${t.reason ? `; printed: ${t.reason}` : ''}` })
      else if (t.verdict === 'no test file') Object.assign(result, { status: 'no test file', detail: mutant.tests.join(', ') })
      else Object.assign(result, { status: 'killed', detail: t.reason || `vitest exited with ${t.code}` })
    }
  } finally {
    problem = restore()
    const b = await build(mutant.pkg)
    if (!b.ok) problem = `${problem ?? ''}${problem ? '; ' : ''}rebuild of packages/${mutant.pkg} after restoring FAILED: ${firstLines(b.output)}`
  }
  if (problem !== null) result.restore = problem
  console.log(`${result.status}${result.ms ? ` in ${seconds(result.ms)}` : ''}${problem ? ` (restore: ${problem})` : ''}`)
}

// ---------------------------------------------------------------- report

const width = Math.max(...results.map((r) => r.mutant.id.length), 6)
console.log(`\n${'mutant'.padEnd(width)}  ${'status'.padEnd(24)} ${'time'.padStart(7)}  why / killed by`)
console.log(`${'-'.repeat(width)}  ${'-'.repeat(24)} ${'-'.repeat(7)}  ${'-'.repeat(40)}`)
for (const r of results) {
  console.log(`${r.mutant.id.padEnd(width)}  ${r.status.padEnd(24)} ${(r.ms ? seconds(r.ms) : '').padStart(7)}  ${r.detail}`)
  console.log(`${''.padEnd(width)}  ${r.mutant.description} [${r.mutant.file}]`)
  if (r.restore) console.log(`${''.padEnd(width)}  RESTORE: ${r.restore}`)
}
const count = (s) => results.filter((r) => r.status === s).length
const slow = results.filter((r) => r.status === 'killed' && r.ms > 30_000).map((r) => r.mutant.id)
console.log(`\n${count('killed')} killed, ${count('survived')} survived, ${count('timeout')} timed out, ${results.length - count('killed') - count('survived') - count('timeout')} not run (see status) of ${results.length}${slow.length ? `; killed but slower than 30 s: ${slow.join(', ')}` : ''}`)
const restoreProblems = results.filter((r) => r.restore)
if (restoreProblems.length > 0) console.log(`RESTORE PROBLEMS: ${restoreProblems.map((r) => r.mutant.id).join(', ')}: check those files`)
if (KEEP_LOGS) console.log(`test output of every run: ${logDir}`)
process.exitCode = results.every((r) => r.status === 'killed') && restoreProblems.length === 0 ? 0 : 1
