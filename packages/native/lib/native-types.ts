/** The raw addon surface (src/*.cc). Use the typed wrappers in the other modules. */

/** What IPC_STAT reports about a segment (times in seconds since the epoch, 0 = never). */
export interface ShmStat {
  /** The key it was created with (0 = IPC_PRIVATE). */
  key: number
  /** Size in bytes as requested at creation. */
  size: number
  /** Permission bits, e.g. 0o600. */
  mode: number
  /** Marked for removal (IPC_RMID while still attached). */
  dest: boolean
  /** Locked in memory (SHM_LOCK). */
  locked: boolean
  uid: number
  gid: number
  cuid: number
  cgid: number
  /** Creator's pid. */
  cpid: number
  /** Pid of the last shmat/shmdt. */
  lpid: number
  /** Number of current attachments. */
  nattch: number
  atime: number
  dtime: number
  ctime: number
}

/** An opaque native handle (napi External) for a SHM_RDONLY attachment. */
export type ReadOnlyHandle = { readonly __brand: 'ReadOnlyHandle' }

/** A readable-fd watcher on this thread's event loop (src/Watch.cc). */
export interface NativeFdWatcher {
  ref(): void
  unref(): void
  close(): void
}

/** The large-Buffer pool's state (pool.ts). */
export interface PoolStats {
  /** Bytes of free blocks kept for reuse. */
  pooledBytes: number
  freeBlocks: number
  /** Blocks taken from malloc, and from the free lists, since the process started. */
  allocated: number
  reused: number
  /** Smallest and largest block (bytes), and the most free bytes kept. */
  minBlock: number
  maxBlock: number
  maxPooled: number
}

export interface NativeBinding {
  FdWatcher: new (fd: number, buffer: ArrayBuffer | null, onData: (n: number) => void) => NativeFdWatcher
  pidfdOpen(pid: number): number
  ftok(path: string, projId: number): number
  shmget(key: number, size: number, flags: number): number
  shmat(shmid: number): ArrayBuffer
  shmdt(buffer: ArrayBuffer): boolean
  prefault(view: ArrayBufferView): boolean
  shmatReadOnly(shmid: number): ReadOnlyHandle
  readOnlyRead(handle: ReadOnlyHandle, offset: number, length: number): Buffer
  readOnlyDetach(handle: ReadOnlyHandle): boolean
  shmctl(shmid: number, cmd: number, set?: { uid?: number; gid?: number; mode?: number }): ShmStat | undefined

  kill(pid: number, sig: number): void
  killpg(pgrp: number, sig: number): void
  sigqueue(pid: number, sig: number, value: number): void
  tgkill(pid: number, tid: number, sig: number): void
  tgsigqueue(pid: number, tid: number, sig: number, value: number, uid: number | undefined): void
  getpgid(pid: number): number
  setpgid(pid: number, pgid: number): void
  gettid(): number
  signalPipe(): number
  signalFdAdd(sig: number): number
  signalFdRemove(sig: number): void
  SIGNALFD_RECORD_BYTES: number
  installHandler(sig: number): void
  restoreHandler(sig: number): void
  signalOverflowCount(): number
  sigprocmask(how: number, signals: number[]): number[]
  sigpending(): number[]
  SIGRTMIN: number
  SIGRTMAX: number
  SIGNAL_RECORD_BYTES: number

  allocPooled(size: number): Buffer | undefined
  poolStats(): PoolStats

  pipe(nonBlocking: boolean): [number, number]
  mkfifo(path: string, mode: number): void
  ringFd(fd: number): boolean

  constants: {
    IPC_PRIVATE: number
    IPC_CREAT: number
    IPC_EXCL: number
    IPC_STAT: number
    IPC_SET: number
    IPC_RMID: number
    SHM_DEST: number
    SIG_BLOCK: number
    SIG_UNBLOCK: number
    SIG_SETMASK: number
    SI_USER: number
    SI_KERNEL: number
    SI_QUEUE: number
    SI_TKILL: number
    SIGRTMIN: number
    SIGRTMAX: number
  }
}
