/** The machine a run was measured on. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'

export interface Machine {
  cpu: string
  cores: number
  node: string
  kernel: string
  platform: string
  memoryGiB: number
  /** Load average (1 min) when the run started: a busy machine makes every number worse. */
  loadAtStart: number
  taskset: boolean
  compiler: string | null
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) return m[1]!.trim()
  } catch { /* not Linux */ }
  return os.cpus()[0]?.model ?? 'unknown'
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export function machine(compiler: string | null): Machine {
  return {
    cpu: cpuModel(),
    cores: os.cpus().length,
    node: process.version,
    kernel: os.release(),
    platform: `${os.type()} ${os.arch()}`,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAtStart: Math.round(os.loadavg()[0]! * 100) / 100,
    taskset: hasTaskset(),
    compiler,
  }
}
