/**
 * One "host" of the two-hosts example: its own private bus and its own
 * NATS bridge, in its own process, as it would be on its own machine.
 * main.ts forks two and drives them (protocol.ts). East serves the address
 * book and publishes prices; west subscribes to the prices and asks the
 * address book, which it does not serve: the bridge carries both.
 *
 *   forked by main.js with: <east|west> <nats url>
 */
import { Bus, NoServer, RemoteError } from '@ipc/bus'
import { bridgeNats } from '@ipc/bridge-nats'
import { ENTRIES, SERVICE, TOPICS, type Command, type Event, type Price } from './protocol.js'

const [role = 'east', servers = 'nats://127.0.0.1:4222'] = process.argv.slice(2)
const say = (line: string): void => console.log(`[${role}] ${line}`)
const send = (event: Event): void => { process.send!(event) }

// Each host: a bus of its own, and a bridge that mirrors prices.* and the address book.
const bus = await Bus.create()
const bridge = await bridgeNats(bus, { servers, topics: TOPICS, services: [SERVICE], pollInterval: 50 })
bridge.on('status', ({ state }) => say(`NATS ${state}`))
bridge.on('error', (err) => say(`bridge error: ${String(err)}`))

if (role === 'east') {
  bus.serve(SERVICE, (name: string) => {
    const entry = ENTRIES[name]
    if (entry === undefined) throw Object.assign(new Error(`no entry for ${name}`), { code: 'E_NOT_FOUND' })
    return { name, entry, pid: process.pid }
  })
  // Ready once the bridge saw the server, so that west's first request finds it.
  while (bridge.stats().services[SERVICE] !== 'local') await new Promise((r) => setTimeout(r, 10))
}
say(`bus and bridge up (pid ${process.pid}; topics ${TOPICS.join(', ')}; service ${SERVICE} ${bridge.stats().services[SERVICE] === 'local' ? 'served here' : 'served elsewhere'})`)

process.on('message', (command: Command) => void run(command))
// main.js gone (killed, crashed): this host goes too rather than linger.
process.on('disconnect', () => { if (!exiting) process.exit(1) })
let exiting = false
send({ done: 'ready' })

async function run(c: Command): Promise<void> {
  switch (c.cmd) {
    case 'subscribe': {
      const seen = new Map<string, number>()
      let received = 0
      let inOrder = true
      for (const sym of c.symbols) {
        bus.subscribe(`prices.${sym}`, (p: Price) => {
          if (p.seq !== (seen.get(sym) ?? -1) + 1) inOrder = false
          seen.set(sym, p.seq)
          say(`prices.${sym} #${p.seq} ${p.px.toFixed(2)}`)
          if (++received === c.expect) send({ done: 'received', count: received, inOrder })
        })
      }
      return send({ done: 'subscribe' })
    }
    case 'publish': {
      for (let seq = 0; seq < c.count; seq++) {
        for (const sym of c.symbols) await bus.publish(`prices.${sym}`, { sym, seq, px: 100 + seq * 0.25 } satisfies Price)
      }
      say(`published ${c.count} prices for each of ${c.symbols.join(', ')}`)
      return send({ done: 'publish' })
    }
    case 'lookup': {
      let answered = 0
      for (const name of c.names) {
        try {
          const r = await bus.request<{ entry: string; pid: number }>(SERVICE, name, { timeout: 2000 })
          say(`${SERVICE} ${name} -> ${r.entry} (answered by pid ${r.pid})`)
          answered++
        } catch (err) {
          if (err instanceof RemoteError) {
            say(`${SERVICE} ${name} -> RemoteError ${err.remoteCode}: ${err.remote.message}`)
            answered++
          } else if (err instanceof NoServer) say(`${SERVICE} ${name} -> NoServer`)
          else throw err
        }
      }
      return send({ done: 'lookup', answered })
    }
    case 'exit': {
      exiting = true
      await bridge.close()
      await bus.close()
      send({ done: 'exit' })
      process.disconnect()
    }
  }
}
