/**
 * A real nats-server for tests (Debian's package `nats-server`), never a
 * mock. ensureNatsServer() installs it with apt-get when it is missing and
 * we are root (the bridge project's vitest globalSetup calls it), else
 * throws naming the package: a test that needs NATS never skips silently.
 *
 * startNats() runs one on a free loopback port (optionally a cluster node
 * with routes), resolves once it accepts clients, and registers it so that
 * stopAllNats() (call it in afterAll) and, as a last resort, this process's
 * exit kill it: no test leaves a server behind, pass or fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { findNatsServer, freePort } from '@ipc/bridge-nats/local-server'

export { findNatsServer, freePort }

const PACKAGE = 'nats-server'

/**
 * The nats-server binary: found, or installed with apt-get (update first if
 * the install fails: a fresh machine may have no package lists) when we are
 * root, as packages/native/scripts/prebuild.mjs installs its cross compiler.
 * Throws an Error naming the Debian package otherwise.
 */
export function ensureNatsServer(): string {
  const found = findNatsServer()
  if (found !== null) return found
  const isRoot = process.getuid?.() === 0
  if (isRoot && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0) {
    console.log(`tests: installing Debian's ${PACKAGE} (the NATS bridge tests run against a real server)`)
    const apt = (args: string[]): boolean => spawnSync('apt-get', args, {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status === 0
    if (!apt(['install', '-y', '--no-install-recommends', PACKAGE])) {
      apt(['update', '-q'])
      apt(['install', '-y', '--no-install-recommends', PACKAGE])
    }
    const installed = findNatsServer()
    if (installed !== null) return installed
  }
  throw new Error(`the NATS bridge tests need a real NATS server: install Debian's package ${PACKAGE} (apt-get install ${PACKAGE})${isRoot ? '' : ', or run the tests as root to have it installed'}`)
}

export interface NatsStartOptions {
  /** Default: a free one. Give the old one to restart a server where its clients reconnect. */
  port?: number
  /** Join a cluster: listen for routes on clusterPort, connect to `routes` (cluster ports of the others). */
  cluster?: { name: string; port: number; routes: readonly number[] }
  /** HTTP monitoring port (/routez ...). */
  monitorPort?: number
  /** Largest message the server accepts (bytes). Default: the server's (1 MiB). */
  maxPayload?: number
}

export interface RunningNats {
  readonly port: number
  readonly url: string
  readonly child: ChildProcess
  /** SIGKILL, as a crash: clients see the connection drop. */
  kill(): Promise<void>
}

const running = new Set<ChildProcess>()
process.once('exit', () => { for (const c of running) c.kill('SIGKILL') })

export async function startNats(options: NatsStartOptions = {}): Promise<RunningNats> {
  const binary = ensureNatsServer()
  const port = options.port ?? await freePort()
  const args = ['-a', '127.0.0.1', '-p', String(port)]
  if (options.cluster !== undefined) {
    args.push('--cluster_name', options.cluster.name, '--cluster', `nats://127.0.0.1:${options.cluster.port}`)
    if (options.cluster.routes.length > 0) args.push('--routes', options.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','))
  }
  if (options.monitorPort !== undefined) args.push('-m', String(options.monitorPort))
  let config: string | undefined
  if (options.maxPayload !== undefined) {
    // No command-line flag for it in nats-server 2.9: a config file of one line, read at start.
    config = join(mkdtempSync(join(tmpdir(), 'nats-test-')), 'server.conf')
    writeFileSync(config, `max_payload: ${options.maxPayload}\n`)
    args.push('-c', config)
  }
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  running.add(child)
  child.once('exit', () => running.delete(child))
  let log = ''
  child.stderr!.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`nats-server ${args.join(' ')} not ready within 10 s:\n${log}`)), 10_000)
    const onData = (d: string): void => {
      log += d
      if (log.includes('Server is ready')) done()
    }
    const onExit = (code: number | null): void => done(new Error(`nats-server ${args.join(' ')} exited (${code}):\n${log}`))
    const done = (err?: Error): void => {
      clearTimeout(timer)
      child.stderr!.off('data', onData)
      child.off('exit', onExit)
      child.stderr!.resume() // keep draining: a full pipe would block the server
      if (err === undefined) resolve()
      else reject(err)
    }
    child.stderr!.on('data', onData)
    child.once('exit', onExit)
  }).finally(() => {
    if (config !== undefined) rmSync(dirname(config), { recursive: true, force: true })
  })
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    child,
    kill: () => kill(child),
  }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

/** Kills every server this process started (afterAll). */
export async function stopAllNats(): Promise<void> {
  await Promise.all([...running].map(kill))
}
