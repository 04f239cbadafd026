/**
 * A FIFO (named pipe) between two unrelated processes.
 *
 *   node examples/dist/fifo.js reader <path>
 *   node examples/dist/fifo.js writer <path> <message...>     (in another terminal)
 *
 * An anonymous pipe has no name, so only a child that inherits it can use
 * it. A FIFO is a pipe with a name in the file system: any process allowed
 * to open the path can join, no common parent needed. The data still goes
 * through the kernel; nothing is stored in the file.
 *
 * The reader creates the FIFO with mkfifo() if it is missing, opens it for
 * reading, prints every line, and at EOF removes the FIFO it created. The
 * writer opens the existing FIFO and writes one line per message.
 *
 * What can go wrong:
 *  - open() blocks: a reader waits in open() until some writer opens the
 *    FIFO, and a writer waits until some reader does (with O_NONBLOCK a
 *    writer fails with ENXIO instead, a reader gets immediate EOF).
 *  - EOF comes when the last writer closes. Two writers may come and go
 *    one after the other; a reader that opened once sees EOF after the
 *    first one leaves if the second has not yet opened.
 *  - Writes of at most PIPE_BUF (4096) bytes are atomic: lines from two
 *    writers never interleave within a line up to that size; longer ones may.
 *  - A FIFO outlives its processes as a file: remove it when done (the
 *    reader does, even on Ctrl-C), or a later mkfifo() fails with EEXIST.
 */
import { createReadStream, createWriteStream, lstatSync, unlinkSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { kill, mkfifo, onSignal, type SignalInfo } from '@ipc/native'

function isFifo(path: string): boolean | undefined {
  try {
    return lstatSync(path).isFIFO()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

async function reader(path: string): Promise<void> {
  const existing = isFifo(path)
  if (existing === false) throw new Error(`${path} exists and is not a FIFO`)
  const created = existing === undefined
  if (created) mkfifo(path, 0o600)
  const removeFifo = (): void => {
    if (created && isFifo(path) === true) unlinkSync(path)
  }
  // Ctrl-C (or SIGTERM) while we wait in open() or read(): remove the FIFO,
  // then put the default action back and send the signal to ourselves, so we
  // die of it as we would have without a handler (the classic "clean up and
  // re-raise"). process.exit() would not do here: at exit Node waits for its
  // thread pool, and one of its threads is stuck in open() on the FIFO.
  const stopCatching: Array<() => void> = []
  const cleanUpAndDie = (info: SignalInfo): void => {
    removeFifo()
    for (const stop of stopCatching) stop() // back to the default action
    kill(process.pid, info.signo)
  }
  stopCatching.push(onSignal('SIGINT', cleanUpAndDie), onSignal('SIGTERM', cleanUpAndDie))
  try {
    console.log(`reader ${process.pid}: ${created ? 'created' : 'opened'} FIFO ${path}, waiting for a writer`)
    // createReadStream opens and reads in Node's thread pool, so the
    // blocking open() and read() do not block the event loop (and the signal
    // handlers above still run).
    const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
    let n = 0
    for await (const line of lines) {
      console.log(`reader got: ${line}`)
      n++
    }
    console.log(`reader: EOF after ${n} line${n === 1 ? '' : 's'} (the last writer closed)`)
  } finally {
    for (const stop of stopCatching) stop()
    removeFifo()
    if (created) console.log(`reader: removed ${path}`)
  }
}

async function writer(path: string, messages: string[]): Promise<void> {
  if (isFifo(path) !== true) {
    // Without this check createWriteStream would create a regular file.
    console.error(`writer: ${path} is not a FIFO; start the reader first (node fifo.js reader ${path})`)
    process.exitCode = 1
    return
  }
  const out = createWriteStream(path) // blocks (in the thread pool) until a reader has it open
  for (const message of messages) out.write(`${message}\n`)
  out.end()
  await new Promise<void>((resolve, reject) => out.on('finish', resolve).on('error', reject))
  console.log(`writer ${process.pid}: wrote ${messages.length} line${messages.length === 1 ? '' : 's'} to ${path}`)
}

const [role, path, ...messages] = process.argv.slice(2)
if (role === 'reader' && path !== undefined) {
  await reader(path)
} else if (role === 'writer' && path !== undefined && messages.length > 0) {
  await writer(path, messages)
} else {
  console.error('usage: fifo.js reader <path>\n       fifo.js writer <path> <message...>')
  process.exitCode = 2
}
