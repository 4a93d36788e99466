/**
 * Model validation with Coral-format ValidationException messages, as AWS
 * KMS prints them:
 *
 *   1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to
 *   satisfy constraint: Member must satisfy enum value set: [...]
 *
 * Member names are lowerCamelCase; string values are quoted; blob values are
 * never printed (`Value at 'message' ...`); several violations are joined
 * with "; " after "N validation errors detected: ".
 *
 * A value of the wrong JSON type (a number where a string belongs, …) is not
 * a constraint violation but a deserialization failure: SerializationException.
 */
import { kmsError } from './errors.js';
import { LIMITS } from './limits.js';

/** The enum list exactly as AWS prints it for macAlgorithm (not the model's order). */
export const MAC_ALGORITHM_ENUM_TEXT = '[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]';
export const MAC_ALGORITHM_SET: ReadonlySet<string> = new Set([
  'HMAC_SHA_224',
  'HMAC_SHA_256',
  'HMAC_SHA_384',
  'HMAC_SHA_512',
]);

/** KeyUsage as recorded against AWS in 2023, with the usages added since appended. */
export const KEY_USAGE_ENUM = [
  'ENCRYPT_DECRYPT',
  'SIGN_VERIFY',
  'GENERATE_VERIFY_MAC',
  'KEY_AGREEMENT',
  'ENCAPSULATE_DECAPSULATE',
];
/** KeySpec as recorded against AWS in 2023, with the specs added since appended. */
export const KEY_SPEC_ENUM = [
  'RSA_2048',
  'ECC_NIST_P384',
  'ECC_NIST_P256',
  'ECC_NIST_P521',
  'HMAC_384',
  'RSA_3072',
  'ECC_SECG_P256K1',
  'RSA_4096',
  'SYMMETRIC_DEFAULT',
  'HMAC_256',
  'HMAC_224',
  'HMAC_512',
  'SM2',
  'ECC_NIST_EDWARDS25519',
  'ML_DSA_44',
  'ML_DSA_65',
  'ML_DSA_87',
  'ML_KEM_512',
  'ML_KEM_768',
  'ML_KEM_1024',
];
export const CUSTOMER_MASTER_KEY_SPEC_ENUM = [
  'RSA_2048',
  'ECC_NIST_P384',
  'ECC_NIST_P256',
  'ECC_NIST_P521',
  'HMAC_384',
  'RSA_3072',
  'ECC_SECG_P256K1',
  'RSA_4096',
  'SYMMETRIC_DEFAULT',
  'HMAC_256',
  'HMAC_224',
  'HMAC_512',
  'SM2',
];
export const ORIGIN_ENUM = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'];
export const WRAPPING_ALGORITHM_ENUM = [
  'RSAES_PKCS1_V1_5',
  'RSAES_OAEP_SHA_1',
  'RSAES_OAEP_SHA_256',
  'RSA_AES_KEY_WRAP_SHA_1',
  'RSA_AES_KEY_WRAP_SHA_256',
  'SM2PKE',
];
export const WRAPPING_KEY_SPEC_ENUM = ['RSA_2048', 'RSA_3072', 'RSA_4096', 'SM2'];
export const EXPIRATION_MODEL_ENUM = ['KEY_MATERIAL_EXPIRES', 'KEY_MATERIAL_DOES_NOT_EXPIRE'];

const textEncoder = new TextEncoder();

/** Collects violations for one request, then throws them as one ValidationException. */
export class Violations {
  readonly list: string[] = [];

  add(member: string, value: string | null | undefined, constraint: string): void {
    // undefined → a blob: its value is never printed ("Value at 'message'").
    const v = value === undefined ? 'Value' : value === null ? 'Value null' : `Value '${value}'`;
    this.list.push(`${v} at '${member}' failed to satisfy constraint: ${constraint}`);
  }

  throwIfAny(): void {
    if (this.list.length === 0) return;
    throw validationError(this.list);
  }

  /** Required string with length bounds. Returns the string, or undefined if invalid/missing. */
  string(member: string, value: unknown, min: number, max: number, required: boolean): string | undefined {
    if (value === undefined || value === null) {
      if (required) this.add(member, null, 'Member must not be null');
      return undefined;
    }
    if (typeof value !== 'string') throw serializationError(member);
    if (value.length < min) this.add(member, value, `Member must have length greater than or equal to ${min}`);
    else if (value.length > max) this.add(member, value, `Member must have length less than or equal to ${max}`);
    return value;
  }

  /** Enum member; `enumText` is the list exactly as AWS prints it. */
  enumValue(
    member: string,
    value: unknown,
    allowed: readonly string[] | ReadonlySet<string>,
    enumText: string,
    required: boolean,
  ): string | undefined {
    if (value === undefined || value === null) {
      if (required) this.add(member, null, 'Member must not be null');
      return undefined;
    }
    if (typeof value !== 'string') throw serializationError(member);
    const ok = Array.isArray(allowed) ? allowed.includes(value) : (allowed as ReadonlySet<string>).has(value);
    if (!ok) this.add(member, value, `Member must satisfy enum value set: ${enumText}`);
    return value;
  }

  /**
   * Blob member (Uint8Array; a string is taken as UTF-8 like the SDK does).
   * `sensitive` blobs print `Value at` even when missing; others `Value null at`.
   */
  blob(
    member: string,
    value: unknown,
    min: number,
    max: number,
    required: boolean,
    sensitive: boolean,
  ): Uint8Array | undefined {
    if (value === undefined || value === null) {
      if (required) this.add(member, sensitive ? undefined : null, 'Member must not be null');
      return undefined;
    }
    const bytes = toBytes(value, member);
    if (bytes.byteLength < min) this.add(member, undefined, `Member must have length greater than or equal to ${min}`);
    else if (bytes.byteLength > max)
      this.add(member, undefined, `Member must have length less than or equal to ${max}`);
    return bytes;
  }

  integer(member: string, value: unknown, min: number, max: number): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value)) throw serializationError(member);
    if (value < min) this.add(member, String(value), `Member must have value greater than or equal to ${min}`);
    else if (value > max) this.add(member, String(value), `Member must have value less than or equal to ${max}`);
    return value;
  }

  boolean(member: string, value: unknown): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') throw serializationError(member);
    return value;
  }

  /** GrantTokens: LIMITS.grantTokenCount items, each LIMITS.grantToken characters. */
  grantTokens(value: unknown): void {
    if (value === undefined || value === null) return;
    if (!Array.isArray(value)) throw serializationError('grantTokens');
    const [, maxCount] = LIMITS.grantTokenCount;
    const [minLength, maxLength] = LIMITS.grantToken;
    if (value.length > maxCount)
      this.add('grantTokens', `[${value.join(', ')}]`, `Member must have length less than or equal to ${maxCount}`);
    for (let i = 0; i < value.length; i++) {
      const t: unknown = value[i];
      if (typeof t !== 'string') throw serializationError('grantTokens');
      if (t.length < minLength)
        this.add(`grantTokens.${i + 1}.member`, t, `Member must have length greater than or equal to ${minLength}`);
      else if (t.length > maxLength)
        this.add(`grantTokens.${i + 1}.member`, t, `Member must have length less than or equal to ${maxLength}`);
    }
  }
}

export function validationError(violations: readonly string[]) {
  const n = violations.length;
  return kmsError(
    'ValidationException',
    `${n} validation error${n === 1 ? '' : 's'} detected: ${violations.join('; ')}`,
  );
}

/** A ValidationException with a free-text (business rule) message. */
export function validationMessage(message: string) {
  return kmsError('ValidationException', message);
}

export function serializationError(member: string) {
  // Coral's deserializer reports the type mismatch without the value.
  return kmsError('SerializationException', `Unexpected value type for member '${member}'`);
}

export function toBytes(value: unknown, member: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return textEncoder.encode(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw serializationError(member);
}
