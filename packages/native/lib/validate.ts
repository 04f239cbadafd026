/** Argument checks shared by the wrappers: they throw before any system call. */

export function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${typeof value === 'number' ? value : typeof value}`)
  }
  if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`)
  return value
}

export const INT32_MIN = -0x8000_0000
export const INT32_MAX = 0x7fff_ffff

export function checkPid(name: string, value: unknown): number {
  return checkInt(name, value, INT32_MIN, INT32_MAX)
}

export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`)
  if (value.includes('\0')) throw new TypeError(`${name} must not contain NUL bytes`)
  return value
}
