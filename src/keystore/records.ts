/**
 * Record hygiene shared by every store: validation, defensive copies,
 * freezing, and redaction of secrets from `JSON.stringify` / `util.inspect`.
 *
 * Records handed out by a store are frozen (the tags array and nested objects
 * too). `Uint8Array` contents cannot be frozen by JavaScript; the store owns
 * those buffers and callers must treat them as read-only. The same record
 * object is returned until that key changes, so callers may cache derived
 * state (e.g. a prepared MAC key) in a `WeakMap` keyed by the record.
 */
import { inspect } from 'node:util';
import { KeyStoreError } from './errors.js';
import type { AliasRecord, KeyRecord } from './types.js';

export const REDACTED = '[REDACTED]';

/**
 * Joins a key id or alias name to the Region that qualifies it in a store id.
 * Neither key ids, alias names (model pattern) nor Region names contain it.
 */
const ID_REGION_SEPARATOR = '@';

/** The store id of the record named `id` that carries `idRegion`. */
export function qualifiedId(id: string, idRegion: string | undefined): string {
  return idRegion === undefined ? id : `${id}${ID_REGION_SEPARATOR}${idRegion}`;
}

/**
 * A key's identity in every store: its key id, which is unique for a
 * single-Region key and for the first Region's record of a multi-Region key
 * (so every record written before replicas existed keeps its id); a replica
 * created while that id is taken is `keyId@region`.
 */
export function keyStoreId(rec: Pick<KeyRecord, 'keyId' | 'idRegion'>): string {
  return qualifiedId(rec.keyId, rec.idRegion);
}

/** An alias's identity in every store: its name, or `name@region` for a second Region's alias of that name. */
export function aliasStoreId(rec: Pick<AliasRecord, 'aliasName' | 'idRegion'>): string {
  return qualifiedId(rec.aliasName, rec.idRegion);
}

/** Paths of secret fields (encrypted at rest, redacted in output). */
export const SECRET_FIELDS = ['keyMaterial', 'importParameters.privateKey'] as const;

/**
 * A secret decrypted on first read. An encrypted store loads its records
 * with these in place of the secret bytes: opening a store of 100,000 keys
 * then costs no decryption at all, a key's material is decrypted when the
 * key is first used, and material never used stays sealed in memory too.
 * The record's field is an accessor that opens it once and keeps the bytes.
 */
export class LazySecret {
  #open: (() => Uint8Array) | undefined;
  #value: Uint8Array | undefined;
  constructor(open: () => Uint8Array) {
    this.#open = open;
  }
  get value(): Uint8Array {
    if (this.#value === undefined) {
      this.#value = this.#open!();
      this.#open = undefined;
    }
    return this.#value;
  }
  /** The bytes if already opened (nothing is decrypted to wipe or redact). */
  get opened(): Uint8Array | undefined {
    return this.#value;
  }
}

/** The lazy secret behind a field of a stored object, if that field is one (its getter carries it). */
function lazyOf(obj: object, field: string): LazySecret | undefined {
  return (Object.getOwnPropertyDescriptor(obj, field)?.get as { lazy?: LazySecret } | undefined)?.lazy;
}

function redactedView(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj)) {
    if (lazyOf(obj, k)) {
      out[k] = REDACTED;
      continue;
    }
    const v = obj[k];
    if (v instanceof Uint8Array)
      out[k] = k === 'keyMaterial' || k === 'privateKey' ? REDACTED : `<${v.byteLength} bytes>`;
    else out[k] = v;
  }
  return out;
}

/**
 * Prototype of stored records: own enumerable properties are the plain record
 * fields (spread, Object.keys and toEqual see only those); `toJSON` and
 * `util.inspect` never reveal secret bytes.
 */
const SAFE_PROTO: object = Object.freeze(
  Object.create(Object.prototype, {
    toJSON: {
      value(this: Record<string, unknown>) {
        return redactedView(this);
      },
    },
    [inspect.custom]: {
      value(this: Record<string, unknown>, _depth: number, options: object, insp: typeof inspect) {
        return (insp ?? inspect)(redactedView(this), options);
      },
    },
  }),
);

function invalid(what: string): never {
  throw new KeyStoreError('INVALID_RECORD', what);
}

/** Where a value sits in a record, for messages (built only when one is needed). */
interface At {
  up: At | undefined;
  key: string | number;
}

/** The path to `at`: from the root label, or (`inRecord`) from the record itself, e.g. `importParameters.privateKey`. */
function where(at: At, inRecord = false): string {
  const parts: (string | number)[] = [];
  for (let a: At | undefined = at; a; a = a.up) if (!inRecord || a.up) parts.unshift(a.key);
  return parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Decodes the file-format wrappers (`{"$bytes": …}`, `{"$sealed": …}`) met
 * while adopting a decoded record: returns the value (Uint8Array or
 * LazySecret), or undefined when `obj` is not a wrapper. `path` is the
 * field's path in the record (`keyMaterial`, `importParameters.privateKey`).
 */
export type LeafDecoder = (obj: Record<string, unknown>, path: () => string) => unknown;

/**
 * Deep copy of a JSON-like value with Uint8Array support; rejects anything
 * that would not survive the stores' serialization (so every store accepts
 * exactly the same records). Buffers in `owned` keep their identity. With
 * `leaf`, the input is decoded JSON and wrappers are decoded on the way, in
 * the same walk. A LazySecret becomes an accessor that opens it on first read.
 */
function copyValue(
  v: unknown,
  at: At,
  owned: ReadonlySet<Uint8Array> | undefined,
  depth: number,
  leaf: LeafDecoder | undefined,
): unknown {
  if (depth > 16) invalid(`${where(at)}: nested too deeply`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) invalid(`${where(at)}: numbers must be finite`);
    return v;
  }
  if (v instanceof Uint8Array) {
    if (owned?.has(v)) return v;
    return new Uint8Array(v); // copy: the caller keeps no handle on store-owned bytes
  }
  if (Array.isArray(v)) {
    const arr = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) arr[i] = copyValue(v[i], { up: at, key: i }, owned, depth + 1, leaf);
    return Object.freeze(arr);
  }
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null && proto !== SAFE_PROTO) {
      invalid(
        `${where(at)}: only plain objects, arrays, strings, finite numbers, booleans and Uint8Array are storable`,
      );
    }
    const out = Object.create(SAFE_PROTO) as Record<string, unknown>;
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) continue;
      if (k.startsWith('$'))
        invalid(`${where(at)}.${k}: field names starting with '$' are reserved for the file format`);
      const decoded =
        leaf && x !== null && typeof x === 'object' && !Array.isArray(x)
          ? leaf(x as Record<string, unknown>, () => where({ up: at, key: k }, true))
          : undefined;
      if (decoded instanceof LazySecret) {
        const get = Object.assign(() => decoded.value, { lazy: decoded });
        Object.defineProperty(out, k, { enumerable: true, get });
      } else {
        out[k] = decoded !== undefined ? decoded : copyValue(x, { up: at, key: k }, owned, depth + 1, leaf);
      }
    }
    return Object.freeze(out);
  }
  return invalid(`${where(at)}: unsupported value of type ${typeof v}`);
}

function requireString(obj: Record<string, unknown>, field: string, what: string): void {
  if (typeof obj[field] !== 'string' || (obj[field] as string).length === 0)
    invalid(`${what}: ${field} must be a non-empty string`);
}

/** Validated, frozen copy of a key record. Buffers in `owned` are kept by reference. */
export function freezeKey(input: KeyRecord, owned?: ReadonlySet<Uint8Array>): KeyRecord {
  checkKeyShape(input);
  return copyValue(input, { up: undefined, key: `key ${input.keyId}` }, owned, 0, undefined) as KeyRecord;
}

function checkKeyShape(input: KeyRecord): void {
  if (input === null || typeof input !== 'object') invalid('key record must be an object');
  requireString(input as unknown as Record<string, unknown>, 'keyId', 'key record');
  const km = input.keyMaterial as unknown;
  if (km !== undefined && !(km instanceof Uint8Array)) invalid(`key ${input.keyId}: keyMaterial must be a Uint8Array`);
  const ip = input.importParameters;
  if (ip !== undefined && !(ip?.privateKey instanceof Uint8Array)) {
    invalid(`key ${input.keyId}: importParameters.privateKey must be a Uint8Array`);
  }
}

export function freezeAlias(input: AliasRecord): AliasRecord {
  if (input === null || typeof input !== 'object') invalid('alias record must be an object');
  requireString(input as unknown as Record<string, unknown>, 'aliasName', 'alias record');
  requireString(input as unknown as Record<string, unknown>, 'targetKeyId', `alias ${input.aliasName}`);
  return copyValue(input, { up: undefined, key: `alias ${input.aliasName}` }, undefined, 0, undefined) as AliasRecord;
}

/**
 * A record from a store's decoded JSON, built in one walk: wrappers decoded
 * by `leaf`, frozen, redacting, validated like any record (the secret
 * fields after decoding: bytes, or a LazySecret opened on first read).
 */
export function adoptDecoded<R extends KeyRecord | AliasRecord>(
  json: Record<string, unknown>,
  label: string,
  leaf: LeafDecoder,
): R {
  const rec = copyValue(json, { up: undefined, key: label }, undefined, 0, leaf) as Record<string, unknown>;
  if ('keyId' in json) {
    requireString(rec, 'keyId', 'key record');
    const kmOk = (o: object | undefined, f: string) => {
      if (o === undefined || !(f in o)) return true;
      return lazyOf(o, f) !== undefined || (o as Record<string, unknown>)[f] instanceof Uint8Array;
    };
    if (!kmOk(rec, 'keyMaterial')) invalid(`${label}: keyMaterial must be bytes`);
    const ip = rec.importParameters as object | undefined;
    if (ip !== undefined && (!('privateKey' in ip) || !kmOk(ip, 'privateKey')))
      invalid(`${label}: importParameters.privateKey must be bytes`);
  } else {
    requireString(rec, 'aliasName', 'alias record');
    requireString(rec, 'targetKeyId', label);
  }
  return rec as R;
}

/** A secret field's bytes, without opening a lazy secret that was never read. */
function heldSecret(holder: object | undefined, field: string): Uint8Array | undefined {
  if (holder === undefined) return undefined;
  const lazy = lazyOf(holder, field);
  if (lazy) return lazy.opened;
  const v = (holder as Record<string, unknown>)[field];
  return v instanceof Uint8Array ? v : undefined;
}

/** The secret buffers a record holds in the clear (for identity reuse and wiping). */
export function secretBuffers(rec: KeyRecord): Uint8Array[] {
  const out: Uint8Array[] = [];
  const km = heldSecret(rec, 'keyMaterial');
  if (km) out.push(km);
  const pk = heldSecret(rec.importParameters, 'privateKey');
  if (pk) out.push(pk);
  return out;
}
