/**
 * Two "hosts" on one machine, bridged through NATS (@ipc/bridge-nats): each
 * is a process with its own bus and its own bridge, as it would be on its
 * own machine. East serves an address book and publishes prices; west
 * subscribes to the prices and looks names up. Neither knows the other:
 * they meet through NATS.
 *
 *   node examples/dist/two-hosts/main.js [--servers nats://host:4222] [--count 5]
 *
 * Without --servers it starts a nats-server of its own on a free loopback
 * port (Debian's package `nats-server`) and stops it at the end.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { startLocalNatsServer } from '@ipc/bridge-nats/local-server'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { Command, Event } from './protocol.js'

const { values: args } = parseArgs({ options: { servers: { type: 'string' }, count: { type: 'string', default: '5' } } })
const COUNT = Number(args.count)
const SYMBOLS = ['ACME', 'INIT']
const hostPath = fileURLToPath(new URL('./host.js', import.meta.url))

/** A host process, and a way to send it a command and wait for the event that finishes it. */
function startHost(role: 'east' | 'west', url: string) {
  const child = fork(hostPath, [role, url], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const events: Event[] = []
  const waiting: Array<{ done: Event['done']; resolve: (e: Event) => void }> = []
  child.on('message', (e: Event) => {
    const i = waiting.findIndex((w) => w.done === e.done)
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(e)
    else events.push(e)
  })
  const next = (done: Event['done']): Promise<Event> => {
    const i = events.findIndex((e) => e.done === done)
    if (i >= 0) return Promise.resolve(events.splice(i, 1)[0]!)
    return new Promise((resolve, reject) => {
      waiting.push({ done, resolve })
      child.once('exit', (code) => reject(new Error(`${role} exited (${code}) before '${done}'`)))
    })
  }
  return { child, next, send: (c: Command) => child.send(c) }
}

let nats: ChildProcess | undefined
const hosts: ChildProcess[] = []
let status = 0
try {
  let url = args.servers
  if (url === undefined) {
    const started = await startLocalNatsServer().catch((err: Error) => {
      console.error(`two-hosts: ${err.message}, or give --servers nats://HOST:PORT`)
      process.exit(2)
    })
    nats = started.child
    url = started.url
    console.log(`nats-server started on ${url} (pid ${nats.pid})`)
  }
  const east = startHost('east', url)
  const west = startHost('west', url)
  hosts.push(east.child, west.child)
  await Promise.all([east.next('ready'), west.next('ready')])

  west.send({ cmd: 'subscribe', symbols: SYMBOLS, expect: COUNT * SYMBOLS.length })
  await west.next('subscribe')
  east.send({ cmd: 'publish', symbols: SYMBOLS, count: COUNT })
  await east.next('publish')
  const got = await west.next('received') as Extract<Event, { done: 'received' }>

  west.send({ cmd: 'lookup', names: ['Ada', 'Nobody'] })
  const asked = await west.next('lookup') as Extract<Event, { done: 'lookup' }>

  for (const h of [east, west]) h.send({ cmd: 'exit' })
  await Promise.all([east.next('exit'), west.next('exit')])
  console.log(`done: west received ${got.count}/${COUNT * SYMBOLS.length} prices from east${got.inOrder ? ', in order' : ', OUT OF ORDER'}; ${asked.answered}/2 lookups answered across the bridge`)
  if (!got.inOrder || asked.answered !== 2) status = 1
} catch (err) {
  console.error(`two-hosts: ${err instanceof Error ? err.message : String(err)}`)
  status = 1
} finally {
  for (const h of hosts) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL')
  if (nats !== undefined && nats.exitCode === null) {
    nats.kill('SIGTERM')
    await once(nats, 'exit')
  }
}
process.exit(status)
