/**
 * The address-book example as its users run it: a server started on its
 * own, several clients started separately and at the same time (one driven
 * through its interactive menu over stdin, the others one-shot commands),
 * every answer checked; then the server is restarted and the entries are
 * found again, by the interactive client that stayed attached throughout
 * and by new one-shot clients. Children are tracked and killed after the
 * test; the book's directory is removed; the bus name is cleared.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test } from 'vitest'
import { finish, track } from '../support/children.js'
import { uniqueName } from '../support/buses.js'

const dir = (name: string) => fileURLToPath(new URL(`../../examples/dist/address-book/${name}.js`, import.meta.url))

interface Running { child: ChildProcess; out: { text: string }; cursor: number }

function start(name: 'server' | 'client', args: string[]): Running {
  const child = track(spawn(process.execPath, [dir(name), ...args], { stdio: ['pipe', 'pipe', 'pipe'] }))
  const out = { text: '' }
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out.text += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out.text += d })
  return { child, out, cursor: 0 }
}

/** Waits until `needle` appears after the cursor, moves the cursor past it, and returns the text in between. */
async function expectOut(r: Running, needle: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const at = r.out.text.indexOf(needle, r.cursor)
    if (at >= 0) {
      const between = r.out.text.slice(r.cursor, at)
      r.cursor = at + needle.length
      return between
    }
    if (Date.now() > deadline || r.child.exitCode !== null) throw new Error(`no "${needle}" in output:\n${r.out.text.slice(r.cursor)}`)
    await new Promise((res) => setTimeout(res, 5))
  }
}

/** Runs a one-shot client command; its status and output. */
async function oneShot(bus: string, ...args: string[]): Promise<{ code: number | null; out: string }> {
  const r = start('client', ['--bus', bus, ...args])
  r.child.stdin!.end()
  const { code } = await finish(r.child, 15_000)
  return { code, out: r.out.text }
}

let tmp: string | null = null
afterEach(() => {
  if (tmp !== null) rmSync(tmp, { recursive: true, force: true })
  tmp = null
})

describe('address book (examples/address-book)', () => {
  test('a server, an interactive client and one-shot clients started separately; entries survive a server restart', async () => {
    expect(existsSync(dir('server'))).toBe(true)
    tmp = mkdtempSync(join(tmpdir(), 'address-book-'))
    const file = join(tmp, 'book.json')
    const bus = uniqueName('book')

    // No server yet: a client says so.
    expect(await oneShot(bus, 'list')).toMatchObject({ code: 2, out: expect.stringContaining(`no bus '${bus}'`) })

    const server = start('server', ['--bus', bus, '--file', file])
    await expectOut(server, `serving 'addressbook' on bus '${bus}' (0 entries from ${file})`)

    // The interactive client and four one-shot clients, all at once.
    const menu = start('client', ['--bus', bus])
    const say = (line: string) => menu.child.stdin!.write(`${line}\n`)
    const people = [
      ['Ada', '12', 'Analytical Row', 'London', '555-0101'],
      ['Brian', '7', 'Pipe Lane', 'Murray Hill', '555-0102'],
      ['Ken', '1', 'Unix Way', 'Berkeley', '555-0103'],
      ['Linus', '42', 'Kernel St', 'Helsinki', '555-0104'],
    ] as const
    const adding = Promise.all(people.map((p) => oneShot(bus, 'add', ...p)))
    const interactive = (async () => {
      await expectOut(menu, '1) Add Entry\n2) Delete Entry\n3) Find Entry\n\n4) Quit\n')
      await expectOut(menu, 'Choose an option[1-4] '); say('1')
      await expectOut(menu, 'Enter the name: '); say('Grace')
      await expectOut(menu, 'Enter the House number: '); say('99')
      await expectOut(menu, 'Enter the Street name: '); say('Compiler Ave')
      await expectOut(menu, 'Enter the Town: '); say('Arlington')
      await expectOut(menu, 'Enter the Phone number: '); say('555-0199')
      await expectOut(menu, 'RESULT: Added entry for Grace\n')
      await expectOut(menu, 'Choose an option[1-4] '); say('9')
      await expectOut(menu, 'Invalid choice, must be between 1 and 4.\n')
      await expectOut(menu, 'Choose an option[1-4] '); say('3')
      await expectOut(menu, 'Enter the name: '); say('Grace')
      await expectOut(menu, 'RESULT: Grace : 99, Compiler Ave, Arlington, 555-0199\n')
      await expectOut(menu, 'Choose an option[1-4] '); say('3')
      await expectOut(menu, 'Enter the name: '); say('Nobody')
      await expectOut(menu, 'RESULT: Sorry, no entry for: Nobody\n')
    })()
    const [added] = await Promise.all([adding, interactive])
    added.forEach((r, i) => expect(r).toEqual({ code: 0, out: `RESULT: Added entry for ${people[i]![0]}\n` }))

    // Everyone sees everyone's entries.
    for (const [name, house, street, town, phone] of people) {
      expect(await oneShot(bus, 'find', name)).toEqual({ code: 0, out: `RESULT: ${name} : ${house}, ${street}, ${town}, ${phone}\n` })
    }
    await expectOut(menu, 'Choose an option[1-4] '); say('3')
    await expectOut(menu, 'Enter the name: '); say('Ken')
    await expectOut(menu, 'RESULT: Ken : 1, Unix Way, Berkeley, 555-0103\n')
    await expectOut(menu, 'Choose an option[1-4] '); say('2')
    await expectOut(menu, 'Enter the name: '); say('Brian')
    await expectOut(menu, 'RESULT: Deleted entry for Brian\n')
    expect(await oneShot(bus, 'find', 'Brian')).toEqual({ code: 1, out: 'RESULT: Sorry, no entry for: Brian\n' })
    expect(await oneShot(bus, 'delete', 'Brian')).toEqual({ code: 1, out: 'RESULT: Sorry, no entry for: Brian\n' })
    expect(await oneShot(bus, 'list')).toEqual({
      code: 0,
      out: 'RESULT: 4 entries\nAda : 12, Analytical Row, London, 555-0101\nGrace : 99, Compiler Ave, Arlington, 555-0199\n'
        + 'Ken : 1, Unix Way, Berkeley, 555-0103\nLinus : 42, Kernel St, Helsinki, 555-0104\n',
    })
    expect(await oneShot(bus, 'frobnicate')).toMatchObject({ code: 2 })

    // Restart the server; the interactive client stays attached meanwhile.
    server.child.kill('SIGTERM')
    expect(await finish(server.child)).toMatchObject({ code: 0 })
    expect(readdirSync(tmp)).toEqual(['book.json']) // no temp file left behind
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8')).entries).sort()).toEqual(['Ada', 'Grace', 'Ken', 'Linus'])
    await expectOut(menu, 'Choose an option[1-4] '); say('3')
    await expectOut(menu, 'Enter the name: '); say('Ada')
    await expectOut(menu, `RESULT: ERROR: no address-book server is running on bus '${bus}'\n`)

    const again = start('server', ['--bus', bus, '--file', file])
    await expectOut(again, `serving 'addressbook' on bus '${bus}' (4 entries from ${file})`)
    await expectOut(menu, 'Choose an option[1-4] '); say('3')
    await expectOut(menu, 'Enter the name: '); say('Ada')
    await expectOut(menu, 'RESULT: Ada : 12, Analytical Row, London, 555-0101\n')
    expect(await oneShot(bus, 'find', 'Linus')).toEqual({ code: 0, out: 'RESULT: Linus : 42, Kernel St, Helsinki, 555-0104\n' })
    await expectOut(menu, 'Choose an option[1-4] '); say('4')
    expect(await finish(menu.child)).toMatchObject({ code: 0 })
    again.child.kill('SIGINT')
    expect(await finish(again.child)).toMatchObject({ code: 0 })
  }, 60_000)
})
