/**
 * Bidirectional talk over two pipes, A (parent -> child) and B (child -> parent).
 *
 *   node examples/dist/two-pipes.js [--rounds 3]
 *
 * A pipe goes one way only, so a conversation needs two. The child inherits
 * A's read end as fd 3 and B's write end as fd 4; the parent keeps A's write
 * end and B's read end and closes the other two (the classic "close the
 * reader of A and the writer of B in the parent, the reverse in the child";
 * with spawn the child simply never receives the ends it must not hold).
 *
 * The protocol is one line per message, in lock step: the parent writes a
 * line on A, the child answers with one line on B, the parent reads it,
 * and so on. Shutdown: the parent closes A; the child sees EOF, closes B and
 * exits; the parent sees EOF on B.
 *
 * What can go wrong:
 *  - Deadlock: if both sides wait to read before writing, nobody writes.
 *    Agree who speaks first (here the parent) and stick to it.
 *  - Pipes are buffered: a line written with a buffered writer may sit in
 *    the writer's memory; writeSync() hands it to the kernel at once.
 *  - A pipe carries bytes, not messages: the newline is our framing, so a
 *    message must not contain one (see ni-server.ts for length prefixes).
 *  - Any end left open keeps the other side from ever seeing EOF.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, createReadStream, writeSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pipe } from '@ipc/native'

/** Lines read from fd, one per next() call; null at EOF. */
function lineReader(fd: number): () => Promise<string | null> {
  const lines = createInterface({ input: createReadStream('', { fd }), crlfDelay: Infinity })[Symbol.asyncIterator]()
  return async () => {
    const next = await lines.next()
    return next.done === true ? null : next.value
  }
}

async function parent(rounds: number): Promise<number> {
  const [aRead, aWrite] = pipe() // A: parent -> child
  const [bRead, bWrite] = pipe() // B: child -> parent
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'], {
    stdio: ['ignore', 'inherit', 'inherit', aRead, bWrite], // child fd 3 = A's reader, fd 4 = B's writer
  })
  closeSync(aRead)
  closeSync(bWrite)
  const readReply = lineReader(bRead)
  for (let i = 1; i <= rounds; i++) {
    const question = `question ${i} from parent ${process.pid}`
    console.log(`parent sends on A: ${question}`)
    writeSync(aWrite, `${question}\n`)
    const reply = await readReply()
    if (reply === null) throw new Error('child closed pipe B early')
    console.log(`parent got on B:   ${reply}`)
  }
  closeSync(aWrite) // EOF on A: the child's cue to finish
  if ((await readReply()) !== null) throw new Error('child said more than it was asked')
  const [code] = (await once(child, 'exit')) as [number | null]
  console.log(`parent: pipe B closed, child exited with code ${code}`)
  return code ?? 1
}

async function child(): Promise<void> {
  const readQuestion = lineReader(3)
  let n = 0
  for (let line = await readQuestion(); line !== null; line = await readQuestion()) {
    n++
    console.log(`child got on A:    ${line}`)
    writeSync(4, `answer ${n} from child ${process.pid}\n`)
  }
  closeSync(4) // EOF on B for the parent
}

const { values, positionals } = parseArgs({
  options: { rounds: { type: 'string', default: '3' } },
  allowPositionals: true,
})
if (positionals[0] === 'child') {
  await child()
} else {
  const rounds = Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 0) throw new RangeError(`--rounds must be a whole number, got ${values.rounds}`)
  process.exitCode = await parent(rounds)
}
