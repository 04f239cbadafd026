/**
 * Plain-text tables and units for the command line: columns padded with
 * spaces, numbers right-aligned, nothing but ASCII and no escape sequences
 * (they read the same in a terminal, in tmux, piped or in a log).
 */

/** A column: its heading and whether its cells align right (numbers). */
export interface Column {
  head: string
  right?: boolean
}

/** The rows under the headings, each column as wide as its widest cell, two spaces apart. */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.head.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    columns.map((c, i) => {
      const cell = cells[i] ?? ''
      return c.right ? cell.padStart(widths[i]!) : i === columns.length - 1 ? cell : cell.padEnd(widths[i]!)
    }).join('  ').trimEnd()
  return [line(columns.map((c) => c.head)), ...rows.map(line)].join('\n')
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

/** 512 B, 1.5 KiB, 64 MiB. */
export function bytes(n: number): string {
  let value = n
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value >= 100 || Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`
}

/** 950, 12.3k, 4.56M: for rates. */
export function count(n: number): string {
  if (!Number.isFinite(n)) return '-'
  const a = Math.abs(n)
  if (a < 1000) return a >= 100 || Number.isInteger(n) ? n.toFixed(0) : n.toFixed(1)
  if (a < 1e6) return `${(n / 1e3).toFixed(a < 1e4 ? 2 : 1)}k`
  if (a < 1e9) return `${(n / 1e6).toFixed(a < 1e7 ? 2 : 1)}M`
  return `${(n / 1e9).toFixed(2)}G`
}

/** An exact integer count with thin grouping: 1234567 -> 1,234,567. */
export function exact(n: number): string {
  return Number.isSafeInteger(n) ? n.toLocaleString('en-US') : String(n)
}

/** A local date and time, to the second: 2026-11-21 14:03:07. */
export function localTime(iso: string | number): string {
  const d = new Date(iso)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** A process for a table cell: '4711', '4711 (dead)', or '-' for nobody. */
export function pid(who: { pid: number; alive: boolean } | null): string {
  return who === null ? '-' : who.alive ? String(who.pid) : `${who.pid} (dead)`
}
