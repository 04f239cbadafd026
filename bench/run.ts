/**
 * Benchmark entry.
 *
 *   node dist/run.js [--quick] [--pin] [--runs=N] [--only=w1,w2] [--systems=s1,s2] [--readme]
 *       the suite (issue 6): every workload on every system, each between
 *       separate processes; writes results/latest.json (and a copy in
 *       results/runs/<date>.json: local history, not committed),
 *       results/latest.svg and the README table. --pin: the same, pinned,
 *       to results/pinned.* and a README block of its own (the computed
 *       tables) below the unpinned one. --quick: a ~1 minute smoke
 *       run (results/quick.*); --only/--systems: a partial run
 *       (results/partial.*); neither touches the README unless --readme.
 *   node dist/run.js report [results.json]
 *       re-renders the SVG and README table from a results file (default
 *       results/latest.json; a quick run's re-renders to results/quick.*,
 *       a partial run's to results/partial.*, neither touching the README).
 *   node --cpu-prof --cpu-prof-dir=DIR dist/run.js --only=objects --systems=bus
 *       profiles: the runner, each cell's host and its workers all inherit
 *       --cpu-prof and exit cleanly, so DIR gets one profile per process.
 *   node dist/run.js core-lane
 *       the single-process lane benchmark (results/core-lane.json).
 *   node dist/run.js --only=bridge [--runs=N] [--quick]
 *       the NATS bridge against plain NATS (suite/bridge.ts,
 *       results/bridge.json); not part of the full suite (it needs a
 *       nats-server), and not combined with other workloads.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import type { SystemId } from './suite/cell.js'
import { markdown, pinnedMarkdown, resultsName, splicePinned, spliceReadme, targets } from './suite/report.js'
import { runSuite, type Results } from './suite/runner.js'
import { svg } from './suite/svg.js'
import { SYSTEMS, WORKLOADS } from './suite/workloads.js'
import { BRIDGE_ID, runBridgeBench } from './suite/bridge.js'

interface Row { name: string; messages: number; seconds: number; rate: number; note: string }
interface Result { rows: Row[]; ceiling?: number }

const RESULTS = new URL('../results/', import.meta.url)
const README = new URL('../../README.md', import.meta.url)

const single: Record<string, () => Promise<{ run: () => Result | Promise<Result> }>> = {
  'core-lane': () => import('./core-lane.js'),
  patterns: () => import('./patterns.js'),
}

const args = process.argv.slice(2)
const flags = new Map<string, string>()
const words: string[] = []
for (const a of args) {
  if (a === '--') continue
  const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a)
  if (m) flags.set(m[1]!, m[2] ?? 'true')
  else words.push(a)
}
const known = new Set(['quick', 'pin', 'runs', 'only', 'systems', 'readme'])
for (const f of flags.keys()) {
  if (!known.has(f)) {
    console.error(`unknown flag --${f}; known: ${[...known].map((k) => `--${k}`).join(' ')}`)
    process.exit(2)
  }
}

mkdirSync(RESULTS, { recursive: true })
if (words[0] === 'report') {
  // Re-render from a results file: a full run's go to latest.* (pinned.*) and the README, a quick one's to quick.*.
  const file = words[1] ?? fileURLToPath(new URL('latest.json', RESULTS))
  const results = JSON.parse(readFileSync(file, 'utf8')) as Results
  const name = resultsName(results)
  publish(results, name, name === 'latest' || name === 'pinned' || flags.has('readme'))
} else if (words.length > 0) {
  for (const name of words) await runSingle(name)
} else {
  await suite()
}

async function suite(): Promise<void> {
  const list = (name: string): string[] | null => (flags.has(name) ? flags.get(name)!.split(',').filter((s) => s.length > 0) : null)
  const only = list('only')
  if (only?.includes(BRIDGE_ID)) {
    if (only.length > 1 || flags.has('systems')) fail(`--only=${BRIDGE_ID} runs alone (its systems are the bridge and plain NATS)`)
    const runs = Number(flags.get('runs') ?? (flags.has('quick') ? 1 : 3))
    if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got ${flags.get('runs')}`)
    return runBridgeBench({ runs, quick: flags.has('quick') })
  }
  const systems = list('systems') as SystemId[] | null
  for (const w of only ?? []) if (!WORKLOADS.some((x) => x.id === w)) fail(`unknown workload '${w}'; known: ${WORKLOADS.map((x) => x.id).join(', ')}`)
  for (const s of systems ?? []) if (!SYSTEMS.some((x) => x.id === s)) fail(`unknown system '${s}'; known: ${SYSTEMS.map((x) => x.id).join(', ')}`)
  const quick = flags.has('quick')
  const runs = Number(flags.get('runs') ?? (quick ? 1 : 3))
  if (!Number.isInteger(runs) || runs < 1) fail(`--runs must be a positive integer, got ${flags.get('runs')}`)
  const results = await runSuite({ quick, runs, pin: flags.has('pin'), only, systems })
  const name = resultsName(results)
  const full = name === 'latest' || name === 'pinned'
  if (full) {
    mkdirSync(new URL('runs/', RESULTS), { recursive: true })
    write(new URL(`runs/${results.date.replace(/[:.]/g, '-')}.json`, RESULTS), JSON.stringify(results, null, 2) + '\n')
  }
  publish(results, name, full || flags.has('readme'))
}

/** Writes <name>.json and <name>.svg, prints the table and targets, and updates the README if asked. */
function publish(results: Results, name: string, readme: boolean): void {
  write(new URL(`${name}.json`, RESULTS), JSON.stringify(results, null, 2) + '\n')
  write(new URL(`${name}.svg`, RESULTS), svg(results))
  const block = markdown(results)
  console.log('\n' + block + '\n')
  if (readme) {
    // A pinned run's block sits below the unpinned one's (report.ts).
    const text = readFileSync(README, 'utf8')
    const next = name === 'pinned' ? splicePinned(text, pinnedMarkdown(results)) : spliceReadme(text, block)
    if (next !== text) write(README, next)
  }
  const missed = targets(results).filter((t) => t.met === false).length
  console.log(`${missed} target(s) missed`)
}

function write(url: URL, text: string): void {
  writeFileSync(url, text)
  console.log(`wrote ${fileURLToPath(url)}`)
}

function fail(message: string): never {
  console.error(message)
  process.exit(2)
}

async function runSingle(name: string): Promise<void> {
  const load = single[name]
  if (!load) fail(`unknown benchmark "${name}"; known: ${Object.keys(single).join(', ')}, report, or no name for the suite`)
  const result = await (await load()).run()
  print(name, result)
  const file = new URL(`${name}.json`, RESULTS)
  writeFileSync(file, JSON.stringify({
    workload: name, date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, ...result,
  }, null, 2) + '\n')
  console.log(`results written to ${file.pathname}`)
}

function print(name: string, { rows, ceiling }: Result): void {
  const table = rows.map((r) => ({
    case: r.name,
    'M msgs/s': (r.rate / 1e6).toFixed(2),
    ...(ceiling ? { 'x ceiling': (r.rate / ceiling).toFixed(2) } : {}),
    'ns/msg': (1e9 / r.rate).toFixed(0),
    note: r.note,
  }))
  console.log(`\n${name} (median of runs, ${rows[0]?.messages ?? 0} messages each)`)
  console.table(table)
}
