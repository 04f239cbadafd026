/**
 * A child "Ni!" server over two pipes, with length-prefixed framing.
 *
 *   node examples/dist/ni-server.js [line ...]
 *
 * The parent starts a child server, sends it each line (default: three
 * lines of its own), and the server replies with the line wrapped in
 * "Ni!": 'Ni!\n' + line + '\nNi!'. Pipe A carries requests (child fd 3),
 * pipe B replies (child fd 4).
 *
 * Framing. A pipe is a byte stream: the kernel does not keep the
 * boundaries between writes. The course version reads up to 1024 bytes and
 * treats that as one message; it works only while every message is short,
 * arrives in one piece and is read before the next one is written. None of
 * that is promised (a reply may be split, two may arrive in one read). Our
 * replies contain newlines, so "one line per message" is out too. Instead
 * every message is a frame:
 *
 *   0        4                    4+length
 *   +--------+--------------------+
 *   | length | UTF-8 bytes        |   length: uint32, big-endian
 *   +--------+--------------------+
 *
 * and the reader collects bytes until it has a whole frame, however the
 * bytes were chopped up on the way.
 *
 * Shutdown. The parent closes pipe A; the server sees EOF after the last
 * whole frame and exits. (The course version kills the server with
 * kill(pid, SIGTERM) instead: that also works, but it can cut the server off
 * in the middle of a reply, and it needs the pid. EOF is an orderly "no more
 * requests", and the server finishes everything it was sent.)
 *
 * What can go wrong:
 *  - A stream that ends inside a frame: the peer died or wrote garbage;
 *    report it, do not treat the fragment as a message.
 *  - A corrupt length (say 0x4e69210a, which is "Ni!\n" read as a length)
 *    would make the reader wait for a gigabyte; cap frame sizes.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, createReadStream, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { pipe } from '@ipc/native'

const MAX_FRAME_BYTES = 1 << 20

/** Writes one frame: 4-byte big-endian length, then the UTF-8 bytes. */
function writeFrame(fd: number, text: string): void {
  const body = Buffer.from(text, 'utf8')
  if (body.length > MAX_FRAME_BYTES) throw new RangeError(`message of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`)
  const frame = Buffer.alloc(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, 4)
  writeSync(fd, frame) // a blocking pipe: writeSync writes it all
}

/** Yields each whole frame's text from fd until EOF; throws on a truncated or oversized frame. */
async function* readFrames(fd: number): AsyncGenerator<string> {
  let pending = Buffer.alloc(0)
  for await (const chunk of createReadStream('', { fd })) {
    pending = Buffer.concat([pending, chunk as Buffer])
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0)
      if (length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`)
      if (pending.length < 4 + length) break // wait for the rest
      yield pending.toString('utf8', 4, 4 + length)
      pending = pending.subarray(4 + length)
    }
  }
  if (pending.length > 0) throw new Error(`stream ended inside a frame (${pending.length} bytes left over)`)
}

async function parent(lines: string[]): Promise<number> {
  const [aRead, aWrite] = pipe() // requests
  const [bRead, bWrite] = pipe() // replies
  const server = spawn(process.execPath, [fileURLToPath(import.meta.url), 'server'], {
    stdio: ['ignore', 'inherit', 'inherit', aRead, bWrite],
  })
  closeSync(aRead)
  closeSync(bWrite)
  const replies = readFrames(bRead)
  for (const line of lines) {
    console.log(`> ${line}`)
    writeFrame(aWrite, line)
    const reply = await replies.next()
    if (reply.done === true) throw new Error('the server closed its pipe early')
    console.log(reply.value)
  }
  closeSync(aWrite) // no more requests: the server exits on EOF
  if ((await replies.next()).done !== true) throw new Error('unexpected extra reply')
  const [code] = (await once(server, 'exit')) as [number | null]
  console.log(`server exited with code ${code}`)
  return code ?? 1
}

async function server(): Promise<void> {
  for await (const line of readFrames(3)) writeFrame(4, `Ni!\n${line}\nNi!`)
  closeSync(4)
}

const args = process.argv.slice(2)
if (args[0] === 'server') {
  await server()
} else {
  const lines = args.length > 0 ? args : ['We are the knights who say...', 'a shrubbery!', 'one that looks nice, and not too expensive']
  process.exitCode = await parent(lines)
}
