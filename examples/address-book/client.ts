/**
 * An address-book client: attaches to the bus by name and asks the server
 * (server.ts) with bus.request(). Start as many as you like, each on its own.
 *
 *   node examples/dist/address-book/client.js --bus NAME                  the menu, reading stdin
 *   node examples/dist/address-book/client.js --bus NAME add NAME HOUSE STREET TOWN PHONE
 *   node examples/dist/address-book/client.js --bus NAME find NAME
 *   node examples/dist/address-book/client.js --bus NAME delete NAME
 *   node examples/dist/address-book/client.js --bus NAME list
 *
 * The menu is the seed's: 1) Add Entry 2) Delete Entry 3) Find Entry 4) Quit,
 * one answer per line on stdin (end of input quits too). Every answer is
 * printed as "RESULT: ...". Exit status: 0, or 1 when a one-shot command
 * found no entry, 2 for a usage error or when the bus or server is missing.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Bus, NoServer, NoSuchBus, PeerGone, RequestTimeout } from '@ipc/bus'
import { SERVICE, formatEntry, type Reply, type Request } from './protocol.js'

const { values, positionals } = parseArgs({ options: { bus: { type: 'string', default: 'addressbook' } }, allowPositionals: true })
const busName = values.bus!

const MENU = `
1) Add Entry
2) Delete Entry
3) Find Entry

4) Quit
`

/** The server's answer as text (and whether it was a success). */
async function ask(bus: Bus, req: Request): Promise<{ ok: boolean; text: string }> {
  try {
    const reply = await bus.request<Reply>(SERVICE, req, { timeout: 5000 })
    if (reply.entry !== undefined && req.op === 'find') return { ok: true, text: formatEntry(req.name, reply.entry) }
    if (reply.entries !== undefined) return { ok: true, text: [reply.message, ...reply.entries.map(([n, e]) => formatEntry(n, e))].join('\n') }
    return { ok: reply.ok, text: reply.message }
  } catch (err) {
    if (err instanceof NoServer) return { ok: false, text: `ERROR: no address-book server is running on bus '${busName}'` }
    if (err instanceof RequestTimeout) return { ok: false, text: 'ERROR: the server did not answer within 5 s' }
    if (err instanceof PeerGone) return { ok: false, text: 'ERROR: the server went away before answering' }
    throw err
  }
}

function usage(): never {
  console.error('usage: client.js --bus NAME [add NAME HOUSE STREET TOWN PHONE | find NAME | delete NAME | list]')
  process.exit(2)
}

function oneShot(args: string[]): Request {
  const [cmd, ...rest] = args
  if (cmd === 'add' && rest.length === 5) {
    const [name, house, street, town, phone] = rest as [string, string, string, string, string]
    return { op: 'add', name, entry: { house, street, town, phone } }
  }
  if ((cmd === 'find' || cmd === 'delete') && rest.length === 1) return { op: cmd === 'find' ? 'find' : 'remove', name: rest[0]! }
  if (cmd === 'list' && rest.length === 0) return { op: 'list' }
  return usage()
}

async function menu(bus: Bus): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]()
  const input = async (prompt: string): Promise<string | null> => {
    process.stdout.write(prompt)
    const next = await lines.next()
    return next.done === true ? null : next.value.trim()
  }
  for (;;) {
    process.stdout.write(MENU)
    const answer = await input('Choose an option[1-4] ')
    if (answer === null) break
    const choice = Number.parseInt(answer, 10)
    if (!Number.isInteger(choice)) continue
    let req: Request
    if (choice === 1) {
      const name = await input('Enter the name: ')
      const house = await input('Enter the House number: ')
      const street = await input('Enter the Street name: ')
      const town = await input('Enter the Town: ')
      const phone = await input('Enter the Phone number: ')
      if (name === null || house === null || street === null || town === null || phone === null) break
      req = { op: 'add', name, entry: { house, street, town, phone } }
    } else if (choice === 2 || choice === 3) {
      const name = await input('Enter the name: ')
      if (name === null) break
      req = { op: choice === 2 ? 'remove' : 'find', name }
    } else if (choice === 4) {
      break
    } else {
      console.log('Invalid choice, must be between 1 and 4.')
      continue
    }
    console.log(`\nRESULT: ${(await ask(bus, req)).text}`)
  }
}

const request = positionals.length > 0 ? oneShot(positionals) : null
let bus: Bus
try {
  bus = await Bus.open(busName)
} catch (err) {
  if (!(err instanceof NoSuchBus)) throw err
  console.error(`ERROR: no bus '${busName}': start the server first (server.js --bus ${busName} --file PATH) [${err.message}]`)
  process.exit(2)
}
let status = 0
try {
  if (request === null) {
    await menu(bus)
  } else {
    const { ok, text } = await ask(bus, request)
    console.log(`RESULT: ${text}`)
    if (!ok) status = text.startsWith('ERROR') ? 2 : 1
  }
} finally {
  await bus.close()
}
process.exit(status)
