/** Anonymous pipes and FIFOs. */
import { native } from './binding.js'
import { checkInt, checkString } from './validate.js'

export interface PipeOptions {
  /** O_NONBLOCK on both ends. Default false (a child's stdio expects blocking fds). */
  nonBlocking?: boolean
}

/**
 * pipe2(2): [readFd, writeFd], both close-on-exec. Usable as a child's stdio
 * (spawn(cmd, args, {stdio: [readFd, 'inherit', 'inherit']}): the child gets
 * a dup without close-on-exec); close your own copies with fs.closeSync.
 */
export function pipe(options: PipeOptions = {}): [readFd: number, writeFd: number] {
  return native.pipe(options.nonBlocking === true)
}

/** mkfifo(3): a named pipe at path (mode is filtered by the umask). */
export function mkfifo(path: string, mode = 0o600): void {
  native.mkfifo(checkString('path', path), checkInt('mode', mode, 0, 0o7777))
}
