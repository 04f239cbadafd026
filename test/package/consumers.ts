// The consumer programs of tarballs.test.ts, written into a project outside
// the workspace that installed the packed tarballs.

/** The README's first quick start (the ```js block under "## Quick start"), plus a line printing the parent's pid. */
export function quickStart(readme: string): string {
  const section = readme.slice(readme.indexOf('## Quick start'))
  const block = /```js\n([\s\S]*?)```/.exec(section)
  if (block === null) throw new Error('README.md: no ```js block under "## Quick start"')
  return `if (process.argv[2] !== 'worker') console.log('pid ' + process.pid)\n${block[1]}`
}

const esm = `
import { once } from 'node:events'
import { Bus } from '@ipc/bus'

const N = 100
if (process.argv[2] !== 'child') {
  const bus = await Bus.create()
  const down = bus.channel('down')
  const up = bus.channel('up')
  const child = bus.fork(new URL(import.meta.url), ['child'])
  for (let i = 0; i < N; i++) await down.send({ i, bytes: new Uint8Array([i, i + 1]) })
  let fromChild = 0
  let childPid = 0
  for await (const m of up) {
    if (m.i !== fromChild) throw new Error('out of order: ' + m.i + ' after ' + fromChild)
    childPid = m.pid
    if (++fromChild === N) break
  }
  const [code] = await once(child, 'exit')
  await bus.close()
  if (code !== 0) throw new Error('child exited with ' + code)
  console.log(JSON.stringify({ toChild: N, fromChild, pids: [process.pid, childPid] }))
} else {
  const bus = await Bus.attach()
  const up = bus.channel('up')
  let n = 0
  for await (const m of bus.channel('down')) {
    if (m.i !== n || m.bytes[1] !== n + 1) throw new Error('bad message ' + JSON.stringify(m))
    await up.send({ i: n, pid: process.pid })
    if (++n === N) break
  }
  await bus.close()
}
`

const cjs = `
const { Bus } = require('@ipc/bus')
;(async () => {
  const bus = await Bus.create()
  const ch = bus.channel('cjs')
  const got = new Promise((resolve) => ch.once('message', resolve))
  ch.trySend({ hello: 'cjs' })
  const message = await got
  await bus.close()
  console.log(JSON.stringify({ bus: typeof Bus, got: message }))
})().catch((err) => { console.error(err); process.exit(1) })
`

const ts = `
import { Bus, Channel, IpcError, type ChannelOptions } from '@ipc/bus'
import { shmget, IPC_PRIVATE } from '@ipc/native'

interface Tick { id: number; px: number }

const options: ChannelOptions = { ringBytes: '64 KiB' }
const bus: Bus = await Bus.create()
const ticks: Channel<Tick> = bus.channel<Tick>('ticks', options)
const sent: boolean = ticks.trySend({ id: 1, px: 2.5 })
// @ts-expect-error a Tick has no 'name'
ticks.trySend({ id: 1, name: 'x' })
// @ts-expect-error internal members are not part of the published types
ticks.trySendEncoded(new Uint8Array(1))
// @ts-expect-error internal members are not part of the published types
void ticks.hasUnread
for await (const tick of ticks) {
  const id: number = tick.id
  void id
  break
}
const err: unknown = new Error('x')
if (err instanceof IpcError) { const code: string = err.code; void code }
void shmget(IPC_PRIVATE, 4096)
void sent
await bus.close()
`

function tsconfig(resolution: 'node16' | 'bundler'): string {
  return JSON.stringify({
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      module: resolution === 'node16' ? 'node16' : 'esnext',
      moduleResolution: resolution,
      lib: ['ES2023'],
      types: ['node'],
      noEmit: true,
      skipLibCheck: false,
    },
    files: ['consumer.ts'],
  }, null, 2)
}

// A named bus with a backlog, held open until stdin closes: what the
// installed `ipc-bus` command inspects.
const cliPeer = `
import { Bus } from '@ipc/bus'
const bus = await Bus.create(process.argv[2], { ringBytes: '64 KiB' })
const orders = bus.channel('orders')
for (let i = 0; i < 5; i++) await orders.sendBytes(new Uint8Array(100).fill(i))
console.log('ready')
process.stdin.resume()
process.stdin.on('end', () => { bus.close().then(() => process.exit(0), () => process.exit(1)) })
`

export const consumerFiles: Record<string, string> = {
  'esm.mjs': esm,
  'cli-peer.mjs': cliPeer,
  'cjs.cjs': cjs,
  'consumer.ts': ts,
  'tsconfig.node16.json': tsconfig('node16'),
  'tsconfig.bundler.json': tsconfig('bundler'),
}
