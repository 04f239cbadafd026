/**
 * Benchmark runner: `node dist/run.js [workload ...]` runs the named
 * workloads (all when none is named), prints a table for each and writes its
 * results to results/<workload>.json. A workload is a module exporting
 * `run()` that returns rows of { name, messages, seconds, rate, note }.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'

interface Row { name: string; messages: number; seconds: number; rate: number; note: string }
interface Result { rows: Row[]; ceiling?: number }

const workloads: Record<string, () => Promise<{ run: () => Result | Promise<Result> }>> = {
  'core-lane': () => import('./core-lane.js'),
}

const wanted = process.argv.slice(2)
const names = wanted.length > 0 ? wanted : Object.keys(workloads)
for (const name of names) {
  const load = workloads[name]
  if (!load) {
    console.error(`unknown workload "${name}"; known: ${Object.keys(workloads).join(', ')}`)
    process.exit(2)
  }
  const result = await (await load()).run()
  print(name, result)
  const dir = new URL('../results/', import.meta.url)
  mkdirSync(dir, { recursive: true })
  const file = new URL(`${name}.json`, dir)
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
