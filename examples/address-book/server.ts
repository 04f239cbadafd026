/**
 * The address-book server: started on its own, reached by any number of
 * clients started separately, by bus name (the seed's big snag, "the server
 * can only talk to the client that started it", gone).
 *
 *   node examples/dist/address-book/server.js --bus NAME --file PATH
 *
 * It creates (or joins) the bus NAME, loads the entries from PATH (a JSON
 * file; missing means empty), and serves 'addressbook' requests: add,
 * remove, find, list. Every change is written atomically: to a temporary
 * file in the same directory, flushed (fsync), then renamed over PATH, so a
 * crash at any moment leaves either the old or the new book, never half of
 * one. Requests are handled one at a time (concurrency 1): the file is
 * written in the order the changes were made. SIGINT / SIGTERM close the bus
 * and exit 0; a restart reloads the file.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Bus, BusExists } from '@ipc/bus'
import { SERVICE, type Entry, type Reply, type Request } from './protocol.js'

const { values } = parseArgs({ options: { bus: { type: 'string', default: 'addressbook' }, file: { type: 'string', default: 'addressbook.json' } } })
const busName = values.bus!
const file = values.file!

function load(): Map<string, Entry> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
    throw err
  }
  const data = JSON.parse(text) as { entries: Record<string, Entry> }
  return new Map(Object.entries(data.entries))
}

function save(book: Map<string, Entry>): void {
  const tmp = `${file}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, JSON.stringify({ entries: Object.fromEntries(book) }, null, 2) + '\n')
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file) // atomic: readers see the old file or the new one
}

function isEntry(e: unknown): e is Entry {
  const x = e as Entry
  return typeof x === 'object' && x !== null && [x.house, x.street, x.town, x.phone].every((f) => typeof f === 'string')
}

const book = load()

function handle(req: Request): Reply {
  switch (req?.op) {
    case 'add':
      if (typeof req.name !== 'string' || req.name === '' || !isEntry(req.entry)) return { ok: false, message: 'ERROR: add needs a name, house, street, town and phone' }
      book.set(req.name, { house: req.entry.house, street: req.entry.street, town: req.entry.town, phone: req.entry.phone })
      save(book)
      return { ok: true, message: `Added entry for ${req.name}` }
    case 'remove':
      if (!book.delete(req.name)) return { ok: false, message: `Sorry, no entry for: ${req.name}` }
      save(book)
      return { ok: true, message: `Deleted entry for ${req.name}` }
    case 'find': {
      const entry = book.get(req.name)
      return entry === undefined ? { ok: false, message: `Sorry, no entry for: ${req.name}` } : { ok: true, message: 'found', entry }
    }
    case 'list':
      return { ok: true, message: `${book.size} entries`, entries: [...book].sort(([a], [b]) => a.localeCompare(b)) }
    default:
      return { ok: false, message: `ERROR: Unrecognized command: ${String((req as { op?: unknown })?.op)}` }
  }
}

let bus: Bus
try {
  bus = await Bus.create(busName)
} catch (err) {
  if (!(err instanceof BusExists)) throw err
  bus = await Bus.open(busName) // clients are still attached: join them
}
bus.serve<Request, Reply>(SERVICE, handle, { concurrency: 1, maxSenders: 32, ringBytes: '64 KiB' })
console.log(`address-book server pid ${process.pid} serving '${SERVICE}' on bus '${busName}' (${book.size} entries from ${file})`)

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void bus.close().then(() => {
      console.log(`address-book server pid ${process.pid} stopped (${sig})`)
      process.exit(0)
    })
  })
}
