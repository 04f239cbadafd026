/** Copies src[start, end) to dst at `at`: short copies by hand (a native call costs more than the bytes), long ones with set(). */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  if (end - start <= 64) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!
  } else {
    dst.set(start === 0 && end === src.length ? src : src.subarray(start, end), at)
  }
}
