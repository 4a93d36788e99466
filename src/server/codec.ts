/**
 * AWS JSON 1.1 codec for the KMS operations this server speaks: request JSON
 * → the `@aws-sdk/client-kms` input shape (Uint8Array blobs, Date timestamps)
 * and output shape → response JSON (standard base64, epoch-second numbers).
 *
 * Input member types come from the operation registry (src/kms/operations.ts).
 * A member of the wrong JSON type is a SerializationException, as in AWS's
 * (Coral) deserializer; `null` means absent; unknown members are ignored.
 * Constraint checks (lengths, enums, required) are the KMS layer's, which
 * answers ValidationException.
 */

import type { MemberType, OperationSpec } from '../kms/operations.js';

export { OPERATIONS, type OperationSpec } from '../kms/operations.js';

export class SerializationError extends Error {
  override readonly name = 'SerializationException';
}

/** Standard alphabet, padding required, no whitespace (spec §12: decode strictly). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64Strict(s: string): Buffer | undefined {
  if (s.length % 4 !== 0 || !BASE64.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

/** Parses a request body (UTF-8 JSON object). An empty body is `{}` (JSON 1.1 clients may send none). */
export function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new SerializationError('The request body is not valid JSON.');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SerializationError('The request body must be a JSON object.');
  }
  return v as Record<string, unknown>;
}

/** JSON object → SDK input shape, for one operation's schema. */
export function decodeInput(spec: OperationSpec, json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const schema = spec.input;
  for (const name in schema) {
    const v = json[name];
    if (v === undefined || v === null) continue;
    out[name] = decodeMember(name, schema[name]!, v);
  }
  return out;
}

function typeError(name: string, expected: string): SerializationError {
  return new SerializationError(`Invalid value for member '${name}': expected ${expected}.`);
}

function decodeMember(name: string, type: MemberType, v: unknown): unknown {
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw typeError(name, 'a string');
      return v;
    case 'blob': {
      if (typeof v !== 'string') throw typeError(name, 'a base64 string');
      const b = decodeBase64Strict(v);
      if (b === undefined)
        throw new SerializationError(
          `Invalid base64 in member '${name}': standard alphabet with '=' padding is required.`,
        );
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    case 'timestamp':
      // JSON 1.1 timestamps are epoch seconds (fractions allowed).
      if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(name, 'a number of epoch seconds');
      return new Date(v * 1000);
    case 'boolean':
      if (typeof v !== 'boolean') throw typeError(name, 'a boolean');
      return v;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v) || v > 2147483647 || v < -2147483648) {
        throw typeError(name, 'a 32-bit integer');
      }
      return v;
    case 'strings': {
      if (!Array.isArray(v)) throw typeError(name, 'a list of strings');
      for (const s of v) if (typeof s !== 'string') throw typeError(name, 'a list of strings');
      return v.slice();
    }
    case 'object':
      // A structure the operation checks itself (CreateGrant's Constraints): any JSON object.
      if (typeof v !== 'object' || Array.isArray(v)) throw typeError(name, 'a structure');
      return v;
    case 'tags': {
      if (!Array.isArray(v)) throw typeError(name, 'a list of tags');
      return v.map((t) => {
        if (typeof t !== 'object' || t === null || Array.isArray(t))
          throw typeError(name, 'a list of {TagKey, TagValue}');
        const o = t as Record<string, unknown>;
        const tag: Record<string, string> = {};
        for (const k of ['TagKey', 'TagValue'] as const) {
          const x = o[k];
          if (x === undefined || x === null) continue;
          if (typeof x !== 'string') throw typeError(`${name}.${k}`, 'a string');
          tag[k] = x;
        }
        return tag;
      });
    }
  }
}

function base64(u: Uint8Array): string {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
}

/** JSON.stringify replacer: Uint8Array → base64, Date → epoch seconds; drops `$`-members ($metadata). */
function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  if (key.charCodeAt(0) === 36 /* $ */) return undefined;
  const orig = this[key];
  if (orig instanceof Uint8Array) return base64(orig);
  if (orig instanceof Date) return orig.getTime() / 1000;
  return value;
}

/** SDK output shape → response body. */
export function encodeOutput(output: unknown): string {
  if (output === undefined || output === null) return '{}';
  return JSON.stringify(output, replacer);
}

/** Hot path for GenerateMac's output: one template, no replacer walk. */
export function encodeGenerateMacOutput(out: { KeyId?: string; Mac?: Uint8Array; MacAlgorithm?: string }): string {
  if (typeof out.KeyId !== 'string' || !(out.Mac instanceof Uint8Array) || typeof out.MacAlgorithm !== 'string') {
    return encodeOutput(out);
  }
  return (
    '{"KeyId":' +
    JSON.stringify(out.KeyId) +
    ',"Mac":"' +
    base64(out.Mac) +
    '","MacAlgorithm":' +
    JSON.stringify(out.MacAlgorithm) +
    '}'
  );
}
