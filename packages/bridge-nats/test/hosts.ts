/**
 * "Hosts" for the bridge tests: a bus with its own bridge, in this process
 * (localHost) or in a process of its own (remoteHost, fixtures/host.ts, whose
 * bus this process joins to publish and subscribe there). Buses are tracked
 * (closed, names cleared after each test), processes tracked (killed after
 * each test), bridges closed after each test: pass or fail, nothing stays.
 */
import type { ChildProcess } from 'node:child_process'
import { afterEach, vi } from 'vitest'
import { Bus } from '@ipc/bus'
import { bridgeNats, type BridgeOptions, type NatsBridge } from '@ipc/bridge-nats'
import { privateBus, trackBus, uniqueName } from '../../../test/support/buses.js'
import { finish, startFixture, waitForLine } from '../../../test/support/children.js'

const bridges = new Set<NatsBridge>()
const hosts = new Set<ChildProcess>()

afterEach(async () => {
  for (const b of bridges) await b.close().catch(() => {})
  bridges.clear()
  // A graceful end first (the host closes its bridge and bus); the children helper SIGKILLs whatever is left.
  await Promise.all([...hosts].map(async (child) => {
    child.stdin?.end()
    await finish(child, 5_000).catch(() => {})
  }))
  hosts.clear()
})

export const until = (what: () => boolean, timeout = 10_000): Promise<unknown> => vi.waitUntil(what, { timeout, interval: 5 })
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Fast polling and reconnecting, for tests. */
const FAST = { pollInterval: 50, reconnectWait: 100 } as const

export interface LocalHost {
  bus: Bus
  bridge: NatsBridge
}

/** A private bus in this process with a bridge. */
export async function localHost(options: BridgeOptions): Promise<LocalHost> {
  const bus = await privateBus()
  const bridge = await bridgeNats(bus, { ...FAST, ...options })
  bridges.add(bridge)
  return { bus, bridge }
}

/** Tracks a bridge made some other way, for closing after the test. */
export function trackBridge(bridge: NatsBridge): NatsBridge {
  bridges.add(bridge)
  return bridge
}

export interface RemoteHost {
  /** This process's member of the host's bus: publishing and subscribing here is "on that host". */
  bus: Bus
  child: ChildProcess
  pid: number
  /** Lines the host printed since it started, on stdout and on stderr. */
  lines: string[]
  stderr(): string
}

export interface RemoteConfig {
  servers: string
  prefix?: string
  topics?: string[]
  services?: string[]
  serve?: string
}

/** A host in its own process (fixtures/host.ts) with its bus and bridge, and optionally a server. */
export async function remoteHost(config: RemoteConfig, env: Record<string, string> = {}): Promise<RemoteHost> {
  const name = uniqueName('bridge')
  const child = startFixture('bridge-nats', 'host', [JSON.stringify({ bus: name, ...config })], { env: { ...process.env, ...env } })
  hosts.add(child)
  const lines: string[] = []
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const ready = waitForLine(child, /^\{"ready":(\d+)\}$/, 15_000).catch((err: Error) => {
    throw new Error(`${err.message}\nstderr: ${stderr}`)
  })
  let buffered = ''
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString()
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    lines.push(...parts)
  })
  const m = await ready
  const bus = trackBus(await Bus.open(name))
  return { bus, child, pid: Number(m[1]), lines, stderr: () => stderr }
}
