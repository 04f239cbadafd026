/**
 * The address book's requests and replies, shared by server.ts and
 * client.ts. An entry is what the seed's menu asks for: house number,
 * street, town and phone, keyed by name. Requests go to the service
 * 'addressbook' with bus.request(); every reply says ok or not and carries
 * the text the seed's server answered ("Added entry for ...").
 */
export const SERVICE = 'addressbook'

export interface Entry {
  house: string
  street: string
  town: string
  phone: string
}

export type Request =
  | { op: 'add'; name: string; entry: Entry }
  | { op: 'remove'; name: string }
  | { op: 'find'; name: string }
  | { op: 'list' }

export interface Reply {
  ok: boolean
  message: string
  entry?: Entry
  entries?: Array<[string, Entry]>
}

/** "NAME : HOUSE, STREET, TOWN, PHONE", as the seed's findEntry printed it. */
export function formatEntry(name: string, e: Entry): string {
  return `${name} : ${e.house}, ${e.street}, ${e.town}, ${e.phone}`
}
