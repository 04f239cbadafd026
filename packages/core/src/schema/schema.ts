/**
 * Schema records: a fixed list of typed fields, encoded by generated code
 * straight into a ring and decoded straight out of it, in the spirit of
 * Simple Binary Encoding (Aeron's companion). No intermediate buffer, no
 * per-message allocation but the delivered object (or none, with a view).
 *
 * Declaration: an object whose key order is the field order, each a type
 * name: `{ id: 'u32', ts: 'f64', kind: 'string', px: 'f64', qty: 'u32' }`,
 * optionally wrapped as `{ version: 2, fields: {...} }` (version 1 when
 * omitted). Its canonical text (defineSchema().text) is what a channel
 * segment stores, so every process agrees or gets a clear mismatch.
 *
 * Record layout (little-endian, packed, no padding):
 *
 *   [fixed fields, in declared order, at fixed offsets][var fields]
 *   u8 / i8: 1   u16 / i16: 2   u32 / i32 / f32: 4   f64 / i64 / u64: 8
 *   bool: 1 (0 or 1)   string: u16 byte length + UTF-8 bytes, after every
 *   fixed field, in declared order (so the fixed part never moves)
 */
import { MessageTooLarge, Unserializable } from '../errors.js'
import { compileDecoder, compileEncoder, compileView, type Decoder, type Encoder, type ViewClass } from './codegen.js'

/** Field types and their fixed sizes (0: variable, after the fixed part). */
export const FIELD_BYTES = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8, i64: 8, u64: 8, bool: 1, string: 0,
} as const

export type FieldType = keyof typeof FIELD_BYTES

/** The declaration a user writes. */
export type SchemaFields = Record<string, FieldType>
export type SchemaDeclaration = SchemaFields | { version?: number; fields: SchemaFields }

/** The value type a schema describes (for `bus.channel<SchemaValue<typeof decl>>`). */
export type SchemaValue<D extends SchemaDeclaration> = D extends { fields: infer F extends SchemaFields } ? FieldValues<F> : D extends SchemaFields ? FieldValues<D> : never
type FieldValues<F extends SchemaFields> = { -readonly [K in keyof F]: F[K] extends 'string' ? string : F[K] extends 'bool' ? boolean : F[K] extends 'i64' | 'u64' ? bigint : number }

/** Longest string field value in UTF-8 bytes (its length is a u16). */
export const MAX_STRING_BYTES = 0xffff
/** Most fields one schema may have. */
export const MAX_FIELDS = 256

export interface Field {
  name: string
  type: FieldType
  /** Offset in the fixed part; -1 for a string. */
  offset: number
}

const NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/
/** Names a view or a plain object already gives a meaning to. */
const RESERVED = new Set(['wrap', 'toJSON', 'constructor', '__proto__', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'])

/** A compiled schema: its canonical text and the generated encoder, decoder and view class. */
export class Schema {
  readonly version: number
  readonly fields: readonly Field[]
  /** Bytes of the fixed part. */
  readonly fixedBytes: number
  /** Canonical text: what a channel segment stores and compares. */
  readonly text: string
  /** Names of the string fields, in order. */
  readonly strings: readonly string[]
  private readonly encoder: Encoder
  private readonly decoder: Decoder
  private readonly viewClass: ViewClass

  constructor(version: number, fields: Field[]) {
    this.version = version
    this.fields = fields
    this.fixedBytes = fields.reduce((n, f) => n + FIELD_BYTES[f.type], 0)
    this.strings = fields.filter((f) => f.type === 'string').map((f) => f.name)
    this.text = JSON.stringify({ v: version, f: fields.map((f) => [f.name, f.type]) })
    this.encoder = compileEncoder(this)
    this.decoder = compileDecoder(this)
    this.viewClass = compileView(this, this.decoder)
  }

  /**
   * An upper bound of `value`'s encoded size (exact when it has no string),
   * after checking its shape: Unserializable names the first field that is
   * missing or of the wrong type.
   */
  bound(value: unknown): number {
    if (value === null || typeof value !== 'object') throw new Unserializable(`a ${typeof value} as a schema record (expected an object with ${this.fields.map((f) => f.name).join(', ')})`)
    return this.encoder.bound(value as Record<string, unknown>)
  }

  /**
   * The bytes to reserve for `value` in a record of at most `max` bytes: its
   * bound, or, when the bound (loose for strings) is over `max`, its exact
   * size; MessageTooLarge when even that is over. Checks the shape first
   * (Unserializable), so nothing is reserved for a bad value.
   */
  roomFor(value: unknown, max: number): number {
    const bound = this.bound(value)
    if (bound <= max) return bound
    const exact = this.encodeToBuffer(value).length
    if (exact > max) throw new MessageTooLarge(exact, max)
    return exact
  }

  /** Encodes value (checked by bound() first) at data[at]; returns the bytes written. */
  encode(value: unknown, view: DataView, data: Uint8Array, at: number): number {
    return this.encoder.encode(value as Record<string, unknown>, view, data, at)
  }

  /** Encodes value into a new Buffer of its exact size (for a send that must wait for room). */
  encodeToBuffer(value: unknown): Buffer {
    const bound = this.bound(value)
    const buffer = Buffer.allocUnsafe(bound)
    const length = this.encode(value, new DataView(buffer.buffer, buffer.byteOffset, bound), buffer, 0)
    return buffer.subarray(0, length)
  }

  /** A new object with the record's fields. `data` and `view` cover the same bytes. */
  decode(data: Buffer, view: DataView, start: number, end: number): Record<string, unknown> {
    return this.decoder(data, view, start, end)
  }

  /** A reusable view: point it at a record with view.wrap(data, dataView, start, end); its getters read the ring. */
  newView(): SchemaView {
    return new this.viewClass()
  }
}

/** A flyweight over one record at a time (Schema.newView()). */
export interface SchemaView {
  wrap(data: Buffer, view: DataView, start: number, end: number): this
  /** A plain object copy of the current record. */
  toJSON(): Record<string, unknown>
  [field: string]: unknown
}

/**
 * Validates a declaration and compiles it. RangeError (with the field) for
 * an unknown type, a bad or duplicate name, no fields, too many, or a bad
 * version.
 */
export function defineSchema(declaration: SchemaDeclaration): Schema {
  if (declaration === null || typeof declaration !== 'object' || Array.isArray(declaration)) throw new RangeError('a schema is an object of field: type (or { version, fields })')
  const wrapped = 'fields' in declaration && typeof declaration.fields === 'object' && declaration.fields !== null
  const fields = (wrapped ? declaration.fields : declaration) as Record<string, unknown>
  const version = wrapped ? (declaration as { version?: unknown }).version ?? 1 : 1
  if (!Number.isInteger(version) || (version as number) < 1 || (version as number) > 0xffff) throw new RangeError(`schema version must be an integer from 1 to 65535, got ${String(version)}`)
  const names = Object.keys(fields)
  if (names.length === 0) throw new RangeError('a schema needs at least one field')
  if (names.length > MAX_FIELDS) throw new RangeError(`a schema has at most ${MAX_FIELDS} fields, got ${names.length}`)
  const out: Field[] = []
  let offset = 0
  for (const name of names) {
    if (!NAME.test(name)) throw new RangeError(`schema field name '${name}' must be a JavaScript identifier`)
    if (RESERVED.has(name) || name.startsWith('$$')) throw new RangeError(`schema field name '${name}' is reserved (wrap, toJSON, constructor, __proto__ and names starting with $$)`)
    const type = fields[name]
    if (typeof type !== 'string' || !Object.hasOwn(FIELD_BYTES, type)) {
      throw new RangeError(`schema field '${name}' has type ${JSON.stringify(type)}; one of ${Object.keys(FIELD_BYTES).join(', ')}`)
    }
    const bytes = FIELD_BYTES[type as FieldType]
    out.push({ name, type: type as FieldType, offset: bytes === 0 ? -1 : offset })
    offset += bytes
  }
  return new Schema(version as number, out)
}

/** Compiles a schema from its canonical text (as stored in a segment); null if the text is not one. */
export function schemaFromText(text: string): Schema | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return null
  }
  const p = parsed as { v?: unknown; f?: unknown }
  if (p === null || typeof p !== 'object' || !Array.isArray(p.f)) return null
  const fields: SchemaFields = {}
  for (const entry of p.f) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'string') return null
    fields[entry[0]] = entry[1] as FieldType
  }
  try {
    const schema = defineSchema({ version: p.v as number, fields })
    return schema.text === text ? schema : null
  } catch {
    return null
  }
}
