/** Where a command prints: stdout for results, stderr for diagnostics. */
export interface Output {
  print(text: string): void
  warn(text: string): void
  /** Whether stdout is a terminal (top clears the screen between refreshes only then). */
  readonly tty: boolean
}

export const stdio: Output = {
  print: (text) => { process.stdout.write(`${text}\n`) },
  warn: (text) => { process.stderr.write(`${text}\n`) },
  get tty() { return process.stdout.isTTY === true },
}
