/**
 * A message from parent to child through a pipe.
 *
 *   node examples/dist/pipe-to-child.js [--message "Hello, child!"]
 *
 * A pipe is a one-way byte stream inside the kernel with two file
 * descriptors: whatever is written to the write end can be read, once, from
 * the read end. It has no name, so only processes that inherit one of its
 * fds can use it: here the child gets the read end as its stdin.
 *
 * Steps (the classic exercise, with spawn instead of fork):
 *   1. pipe()                      -> [readFd, writeFd]
 *   2. spawn this same file with the role "child" and readFd as its stdin
 *   3. the parent closes its copy of readFd, writes, closes writeFd
 *   4. the child reads stdin to EOF and prints what it got
 *
 * What can go wrong:
 *  - EOF arrives only when EVERY copy of the write end is closed. Our pipe()
 *    sets close-on-exec, so the child never inherits the write end by
 *    accident (a classic fork() bug: the child keeps a write end open and
 *    waits forever for its own EOF). The parent must still close its own.
 *  - If the parent kept the read end open and the child died, writes would
 *    not fail with EPIPE; they would fill the pipe (64 KiB on Linux) and block.
 *  - Pipes carry bytes, not messages: a reader may get one write in several
 *    pieces or several writes in one piece. Reading to EOF sidesteps that.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pipe } from '@ipc/native'

async function parent(message: string): Promise<number> {
  const [readFd, writeFd] = pipe()
  // stdio[0] = readFd: the child gets a copy as fd 0 (without close-on-exec).
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'], {
    stdio: [readFd, 'inherit', 'inherit'],
  })
  closeSync(readFd) // the child has its own copy now
  console.log(`parent ${process.pid}: sending ${Buffer.byteLength(message)} bytes to child ${child.pid}`)
  writeSync(writeFd, message)
  closeSync(writeFd) // the child's read now ends with EOF
  const [code] = (await once(child, 'exit')) as [number | null]
  console.log(`parent: child exited with code ${code}`)
  return code ?? 1
}

async function child(): Promise<void> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer) // until EOF
  console.log(`child ${process.pid}: got "${Buffer.concat(chunks).toString('utf8')}"`)
}

const { values, positionals } = parseArgs({
  options: { message: { type: 'string', default: 'Hello, child!' } },
  allowPositionals: true,
})
if (positionals[0] === 'child') await child()
else process.exitCode = await parent(values.message)
