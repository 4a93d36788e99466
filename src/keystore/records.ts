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

/** Paths of secret fields (encrypted at rest, redacted in output). */
export const SECRET_FIELDS = ['keyMaterial', 'importParameters.privateKey'] as const;

function redactedView(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    if (v instanceof Uint8Array) out[k] = k === 'keyMaterial' || k === 'privateKey' ? REDACTED : `<${v.byteLength} bytes>`;
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
      value(this: Record<string, unknown>, depth: number, options: object, insp: typeof inspect) {
        return (insp ?? inspect)(redactedView(this), options);
      },
    },
  }),
);

function invalid(what: string): never {
  throw new KeyStoreError('INVALID_RECORD', what);
}

/**
 * Deep copy of a JSON-like value with Uint8Array support; rejects anything
 * that would not survive the file store's serialization (so both stores accept
 * exactly the same records). `reuse` maps an existing store-owned buffer to
 * itself so an unchanged buffer keeps its identity.
 */
function copyValue(v: unknown, path: string, owned: ReadonlySet<Uint8Array> | undefined, depth: number): unknown {
  if (depth > 16) invalid(`${path}: nested too deeply`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) invalid(`${path}: numbers must be finite`);
    return v;
  }
  if (v instanceof Uint8Array) {
    if (owned?.has(v)) return v;
    return new Uint8Array(v); // copy: the caller keeps no handle on store-owned bytes
  }
  if (Array.isArray(v)) {
    const arr = v.map((x, i) => copyValue(x, `${path}[${i}]`, owned, depth + 1));
    return Object.freeze(arr);
  }
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null && proto !== SAFE_PROTO) {
      invalid(`${path}: only plain objects, arrays, strings, finite numbers, booleans and Uint8Array are storable`);
    }
    const out = Object.create(SAFE_PROTO) as Record<string, unknown>;
    for (const k of Object.keys(v)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) continue;
      if (k.startsWith('$')) invalid(`${path}.${k}: field names starting with '$' are reserved for the file format`);
      out[k] = copyValue(x, `${path}.${k}`, owned, depth + 1);
    }
    return Object.freeze(out);
  }
  return invalid(`${path}: unsupported value of type ${typeof v}`);
}

function requireString(obj: Record<string, unknown>, field: string, what: string): void {
  if (typeof obj[field] !== 'string' || (obj[field] as string).length === 0) invalid(`${what}: ${field} must be a non-empty string`);
}

/** Validated, frozen copy of a key record. Buffers in `owned` are kept by reference. */
export function freezeKey(input: KeyRecord, owned?: ReadonlySet<Uint8Array>): KeyRecord {
  if (input === null || typeof input !== 'object') invalid('key record must be an object');
  requireString(input as unknown as Record<string, unknown>, 'keyId', 'key record');
  const km = input.keyMaterial;
  if (km !== undefined && !(km instanceof Uint8Array)) invalid(`key ${input.keyId}: keyMaterial must be a Uint8Array`);
  const ip = input.importParameters;
  if (ip !== undefined && !(ip?.privateKey instanceof Uint8Array)) {
    invalid(`key ${input.keyId}: importParameters.privateKey must be a Uint8Array`);
  }
  return copyValue(input, `key ${input.keyId}`, owned, 0) as KeyRecord;
}

export function freezeAlias(input: AliasRecord): AliasRecord {
  if (input === null || typeof input !== 'object') invalid('alias record must be an object');
  requireString(input as unknown as Record<string, unknown>, 'aliasName', 'alias record');
  requireString(input as unknown as Record<string, unknown>, 'targetKeyId', `alias ${input.aliasName}`);
  return copyValue(input, `alias ${input.aliasName}`, undefined, 0) as AliasRecord;
}

/** The secret buffers a record holds (for identity reuse and wiping). */
export function secretBuffers(rec: KeyRecord): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (rec.keyMaterial instanceof Uint8Array) out.push(rec.keyMaterial);
  const pk = rec.importParameters?.privateKey;
  if (pk instanceof Uint8Array) out.push(pk);
  return out;
}

/** Wraps a freshly decoded plain object (from disk) as a frozen, redacting record without another copy of its buffers. */
export function adoptKey(plain: KeyRecord): KeyRecord {
  const owned = new Set(secretBuffers(plain));
  return freezeKey(plain, owned);
}
