/**
 * What main.ts and its two "hosts" (host.ts) say to each other over the
 * fork IPC channel, and what the hosts share: the topics, the service, and
 * the address book east serves.
 */

/** main -> host. */
export type Command =
  | { cmd: 'subscribe'; symbols: string[]; expect: number }
  | { cmd: 'publish'; symbols: string[]; count: number }
  | { cmd: 'lookup'; names: string[] }
  | { cmd: 'exit' }

/** host -> main: the command it finished (and, for lookups, how many crossed the bridge). */
export type Event =
  | { done: 'ready' }
  | { done: 'subscribe' | 'publish' | 'exit' }
  | { done: 'received'; count: number; inOrder: boolean }
  | { done: 'lookup'; answered: number }

export const TOPICS = ['prices.*']
export const SERVICE = 'addressbook'

export interface Price {
  sym: string
  seq: number
  px: number
}

/** East's address book. */
export const ENTRIES: Record<string, string> = {
  Ada: '12 Analytical Row, London',
  Grace: '1 Compiler Lane, Arlington',
}
