/**
 * The benchmark suite's report, from a fixture results file: the README
 * table and targets are well-formed, the README splice touches only the
 * text between the markers, and the SVG is well-formed. Plus one tiny real
 * run of the suite (few messages, two systems), with no timing assertions.
 */
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { END, HEADING, PINNED_END, PINNED_HEADING, PINNED_START, START, ceilings, markdown, pinnedMarkdown, resultsName, splicePinned, spliceReadme, targets } from '../../bench/suite/report.js'
import type { Results } from '../../bench/suite/runner.js'
import { svg } from '../../bench/suite/svg.js'

const fixture = JSON.parse(readFileSync(new URL('./fixtures/results.json', import.meta.url), 'utf8')) as Results

function tableRows(md: string): string[][] {
  return md.split('\n').filter((l) => l.startsWith('| ')).map((l) => l.slice(2, -2).split(/(?<!\\) \| /))
}

/** Tags balance and attributes hold no NaN/undefined; text has no bare '&' or '<'. */
function checkXml(text: string): void {
  const stack: string[] = []
  const tag = /<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g
  let last = 0
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) {
    const between = text.slice(last, m.index)
    expect(between).not.toMatch(/<|&(?!amp;|lt;|gt;|quot;)/)
    last = tag.lastIndex
    const [, close, name, attrs, selfClose] = m
    expect(attrs).not.toMatch(/NaN|undefined|Infinity/)
    if (close === '/') expect(stack.pop()).toBe(name)
    else if (selfClose !== '/') stack.push(name!)
  }
  expect(stack).toEqual([])
}

describe('bench report', () => {
  it('renders a table with one column per system and the same width on every row', () => {
    const md = markdown(fixture)
    const rows = tableRows(md)
    const header = rows[0]!
    const systems = fixture.systems.filter((s) => fixture.cells.some((c) => c.system === s.id))
    expect(header).toEqual(['workload', ...systems.map((s) => s.label)])
    const main = rows.slice(0, rows.findIndex((r) => r[0] === 'target'))
    for (const row of main) expect(row.length).toBe(header.length)
    expect(md).not.toMatch(/NaN|undefined/)
    // every measured cell shows "median (min–max)"
    expect(md).toMatch(/\| \d[\d.]* \(\d[\d.]*–\d[\d.]*\) \|/)
    // round trips get p50, p99 and p99.9 rows
    expect(md).toMatch(/p50 \(µs\)/)
    expect(md).toMatch(/p99\.9 \(µs\)/)
  })

  it('computes every target of issue 6 and marks each met or missed, never hiding a miss', () => {
    const ts = targets(fixture)
    expect(ts).toHaveLength(8)
    for (const t of ts) expect(typeof t.met).toBe('boolean')
    const md = markdown(fixture)
    const verdicts = tableRows(md).filter((r) => r.length === 4 && r[0] !== 'target' && r[0] !== '---')
    expect(verdicts).toHaveLength(8)
    for (const [i, row] of verdicts.entries()) expect(row[3]).toMatch(ts[i]!.met ? /^\*\*met\*\*/ : /^\*\*missed\*\*/)
  })

  it('marks a target not measured when its cell failed', () => {
    const broken: Results = { ...fixture, cells: fixture.cells.map((c) => (c.workload === 'objects' && c.system === 'bus' ? { ...c, error: 'boom' } : c)) }
    const t = targets(broken)[0]!
    expect(t.met).toBeNull()
    expect(markdown(broken)).toMatch(/failed/)
  })

  it('appends a Benchmarks section with the markers when the README has none, and then replaces only between them', () => {
    const readme = '# project\n\nintro\n\n## Other\n\ntext\n'
    const once = spliceReadme(readme, 'TABLE 1')
    expect(once.startsWith(readme)).toBe(true)
    expect(once).toContain(`${HEADING}\n\n${START}\nTABLE 1\n${END}\n`)
    const edited = once.replace('intro', 'intro, edited by someone else') + '\n## Later section\n'
    const twice = spliceReadme(edited, 'TABLE 2')
    expect(twice).toBe(edited.replace('TABLE 1', 'TABLE 2'))
    expect(twice.match(/## Benchmarks/g)).toHaveLength(1)
  })

  it('puts a pinned run in a block of its own below the unpinned one, each splice touching only its own block', () => {
    const pinned: Results = { ...fixture, pinned: true, partial: undefined, quick: false }
    expect(resultsName(pinned)).toBe('pinned')
    expect(resultsName({ ...pinned, pinned: false })).toBe('latest')
    expect(resultsName({ ...pinned, quick: true })).toBe('quick')
    expect(resultsName({ ...pinned, partial: true })).toBe('partial')
    const block = pinnedMarkdown(pinned)
    expect(block).toContain('processes pinned with taskset')
    expect(block).toContain('bench/results/pinned.json')
    expect(block).toContain('bench/results/pinned.svg')
    expect(block).not.toMatch(/NaN|undefined/)
    // the computed tables, the same verdicts as in the unpinned rendering; not the big table
    const verdicts = tableRows(block).filter((r) => r.length === 4 && r[0] !== 'target' && r[0] !== '---')
    expect(verdicts).toHaveLength(targets(pinned).length)
    expect(tableRows(block).some((r) => r[0] === 'workload')).toBe(false)

    const readme = '# project\n\nintro\n\n## Benchmarks\n\n' + `${START}\nMAIN\n${END}\n\n## Later\n\ntext\n`
    const once = splicePinned(readme, 'PINNED 1')
    expect(once).toBe(readme.replace(`${END}\n`, `${END}\n\n${PINNED_HEADING}\n\n${PINNED_START}\nPINNED 1\n${PINNED_END}\n`))
    const twice = splicePinned(spliceReadme(once, 'MAIN 2'), 'PINNED 2')
    expect(twice).toBe(once.replace('MAIN', 'MAIN 2').replace('PINNED 1', 'PINNED 2'))
    expect(twice.match(new RegExp(PINNED_HEADING, 'g'))).toHaveLength(1)
    // no unpinned block yet: the section and its (empty) block come first
    const bare = splicePinned('# project\n', 'P')
    expect(bare.indexOf(START)).toBeGreaterThan(bare.indexOf(HEADING))
    expect(bare.indexOf(PINNED_START)).toBeGreaterThan(bare.indexOf(END))
    expect(spliceReadme(bare, 'M')).toContain(`${START}\nM\n${END}\n\n${PINNED_HEADING}`)
  })

  it('reads raw64 and objects against their ceilings in the same run, and says nothing of a ceiling not measured', () => {
    const at = (workload: string, system: string, median: number): Results['cells'][number] =>
      ({ workload, system: system as never, unit: 'M msgs/s', values: [median], median, min: median, max: median, messages: 1, runs: [] })
    const base = { ...fixture, cells: [at('raw64', 'bus', 24), at('raw64', 'unix-socket', 13.5), at('raw64', 'c-ring', 27)] }
    // objects has no encode-only cell: only raw64's line
    expect(ceilings(base)).toEqual([
      '', expect.stringMatching(/^\*\*Ceilings in this run\*\*/), '',
      '- raw 64 B: C SPSC ring 27.0 M msgs/s; the bus reached 88.9 % of it, 2x the socket asks for 100 %.',
    ])
    const withEncode: Results = {
      ...base,
      systems: [...fixture.systems, { id: 'msgpack-encode' as never, label: 'msgpack encode alone', note: 'ceiling' }],
      cells: [...base.cells, at('objects', 'bus', 4.8), at('objects', 'unix-socket', 3.5), at('objects', 'msgpack-encode', 6.4)],
    }
    const lines = ceilings(withEncode)
    expect(lines.at(-1)).toBe('- objects: msgpack encode alone 6.40 M msgs/s; the bus reached 75.0 % of it, 1.5x the socket asks for 82.0 %.')
    expect(markdown(withEncode)).toContain(lines.at(-1))
    expect(ceilings({ ...fixture, cells: [] })).toEqual([])
  })

  it('draws a well-formed SVG with a bar per measured cell', () => {
    const text = svg(fixture)
    expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(text.trimEnd().endsWith('</svg>')).toBe(true)
    checkXml(text)
    const measured = fixture.cells.filter((c) => c.error === undefined && c.unit !== '% CPU').length
    const bars = text.match(/<rect [^>]*><title>/g) ?? []
    expect(bars).toHaveLength(measured)
  })
})

const runner = new URL('../../bench/dist/suite/runner.js', import.meta.url)

describe.skipIf(!existsSync(fileURLToPath(runner)))('bench suite, a tiny real run', () => {
  it('measures objects and idle round trips on the bus and a Unix socket, leaving no process behind', async () => {
    const { runSuite } = (await import(runner.href)) as typeof import('../../bench/suite/runner.js')
    const lines: string[] = []
    const r = await runSuite({ quick: true, runs: 1, pin: false, only: ['objects', 'rtt-idle'], systems: ['bus', 'unix-socket'] }, (l) => lines.push(l))
    expect(r.cells.map((c) => [c.workload, c.system, c.error])).toEqual([
      ['objects', 'bus', undefined], ['objects', 'unix-socket', undefined],
      ['rtt-idle', 'bus', undefined], ['rtt-idle', 'unix-socket', undefined],
    ])
    for (const c of r.cells) expect(c.median).toBeGreaterThan(0)
    expect(r.leakedSegments).toEqual([])
    expect(markdown(r)).toContain('@ipc/bus')
  })
})
