/**
 * A nats-server of one's own on a free loopback port, for examples,
 * benchmarks and trying the bridge on one machine (Debian's package
 * `nats-server`; in production, point the bridge at your NATS system).
 * Exported as `@ipc/bridge-nats/local-server`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'

export interface LocalNatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string
  readonly child: ChildProcess
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>
}

/** The nats-server binary on PATH or in Debian's places, or null. */
export function findNatsServer(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v nats-server'], { encoding: 'utf8' })
  if (which.status === 0 && which.stdout.trim() !== '') return which.stdout.trim()
  return ['/usr/bin/nats-server', '/usr/sbin/nats-server', '/usr/local/bin/nats-server'].find((p) => existsSync(p)) ?? null
}

/** A TCP port nobody listens on now, on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/**
 * Starts nats-server on a free loopback port and resolves once it accepts
 * clients. Throws an Error naming Debian's package when there is none.
 */
export async function startLocalNatsServer(): Promise<LocalNatsServer> {
  const binary = findNatsServer()
  if (binary === null) throw new Error("no nats-server here: install Debian's package nats-server (apt-get install nats-server)")
  const port = await freePort()
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: string) => { log += d; if (log.includes('Server is ready')) resolve() })
    child.once('exit', (code) => reject(new Error(`nats-server exited (${code}): ${log}`)))
  })
  child.stderr!.resume()
  const exited = once(child, 'exit')
  return {
    url: `nats://127.0.0.1:${port}`,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}
