/**
 * KMS errors, shaped like the service exceptions of `@aws-sdk/client-kms`.
 *
 * Every error thrown by the KMS layer carries `name` (the KMS exception name,
 * i.e. the wire `__type`), `message` (AWS's wording), `$fault` and
 * `$metadata`. When `@aws-sdk/client-kms` is installed (an optional peer
 * dependency) we throw instances of the SDK's own classes, so code written
 * against AWS (`e instanceof NotFoundException` with the SDK's class) keeps
 * working. Otherwise we throw instances of the classes below. Our classes
 * also recognise SDK instances through `Symbol.hasInstance` (by `name`), so
 * `instanceof` with *our* classes works in both cases.
 *
 * Messages never contain key material or blob values.
 */
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

export interface KmsErrorMetadata {
  httpStatusCode: number;
  requestId?: string;
  attempts: number;
  totalRetryDelay: number;
}

/** The shape every error thrown by this package's KMS layer has. */
export interface KmsErrorLike extends Error {
  readonly name: string;
  $fault: 'client' | 'server';
  $metadata: KmsErrorMetadata;
}

/** HTTP status per exception. Client errors are 400 (as recorded against real AWS, see the spec §3). */
const STATUS: Record<string, number> = {
  KMSInternalException: 500,
  KeyUnavailableException: 500,
  DependencyTimeoutException: 503,
};

/** Errors the KMS service model declares (the SDK has a class for each of these). */
export const MODELED_ERRORS = new Set([
  'AlreadyExistsException',
  'DependencyTimeoutException',
  'DisabledException',
  'DryRunOperationException',
  'ExpiredImportTokenException',
  'IncorrectKeyMaterialException',
  'InvalidAliasNameException',
  'InvalidArnException',
  'InvalidCiphertextException',
  'InvalidGrantTokenException',
  'InvalidImportTokenException',
  'InvalidKeyUsageException',
  'InvalidMarkerException',
  'KeyUnavailableException',
  'KMSInternalException',
  'KMSInvalidMacException',
  'KMSInvalidStateException',
  'LimitExceededException',
  'MalformedPolicyDocumentException',
  'NotFoundException',
  'TagException',
  'UnsupportedOperationException',
]);

/** Exceptions that AWS sends with no `message` member on the wire. */
const NO_WIRE_MESSAGE = new Set(['KMSInvalidMacException']);

/**
 * The message the AWS SDK puts on an exception whose body had no message
 * (`decorateServiceException`): we mirror it so `err.message` is the same as
 * against AWS.
 */
export const SDK_UNKNOWN_MESSAGE = 'UnknownError';

/** Base class of the package's own KMS errors. */
export class KmsError extends Error implements KmsErrorLike {
  $fault: 'client' | 'server';
  $metadata: KmsErrorMetadata;
  constructor(name: string, message: string | undefined, requestId?: string) {
    super(message ?? SDK_UNKNOWN_MESSAGE);
    Object.defineProperty(this, 'name', { value: name, enumerable: false, configurable: true, writable: true });
    const status = STATUS[name] ?? 400;
    this.$fault = status >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: status, requestId: requestId ?? randomUUID(), attempts: 1, totalRetryDelay: 0 };
  }
  // biome-ignore-start lint/complexity/noThisInStatic: `this` is the class `instanceof` was asked about (a subclass)
  /** `err instanceof KmsError` is true for every KMS-shaped error, SDK instances included. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === KmsError) return isKmsError(value);
    const expected = (this as unknown as { errorName?: string }).errorName;
    if (expected === undefined) return Function.prototype[Symbol.hasInstance].call(this, value);
    return isKmsError(value) && value.name === expected;
  }
  // biome-ignore-end lint/complexity/noThisInStatic: as above
}

/** True for any error with the SDK service-exception shape (ours or the SDK's). */
export function isKmsError(value: unknown): value is KmsErrorLike {
  if (typeof value !== 'object' || value === null || !(value instanceof Error)) return false;
  const v = value as Partial<KmsErrorLike>;
  return (v.$fault === 'client' || v.$fault === 'server') && typeof v.$metadata === 'object' && v.$metadata !== null;
}

function defineError(errorName: string) {
  const cls = class extends KmsError {
    static readonly errorName = errorName;
    constructor(message?: string, requestId?: string) {
      super(errorName, message, requestId);
    }
  };
  Object.defineProperty(cls, 'name', { value: errorName });
  return cls;
}

export const ValidationException = defineError('ValidationException');
export const SerializationException = defineError('SerializationException');
export const NotFoundException = defineError('NotFoundException');
export const DisabledException = defineError('DisabledException');
export const KMSInvalidStateException = defineError('KMSInvalidStateException');
export const InvalidKeyUsageException = defineError('InvalidKeyUsageException');
export const KMSInvalidMacException = defineError('KMSInvalidMacException');
export const DryRunOperationException = defineError('DryRunOperationException');
export const InvalidGrantTokenException = defineError('InvalidGrantTokenException');
export const AlreadyExistsException = defineError('AlreadyExistsException');
export const UnsupportedOperationException = defineError('UnsupportedOperationException');
export const IncorrectKeyMaterialException = defineError('IncorrectKeyMaterialException');
export const InvalidImportTokenException = defineError('InvalidImportTokenException');
export const ExpiredImportTokenException = defineError('ExpiredImportTokenException');
export const InvalidCiphertextException = defineError('InvalidCiphertextException');
export const InvalidArnException = defineError('InvalidArnException');
export const InvalidMarkerException = defineError('InvalidMarkerException');
export const InvalidAliasNameException = defineError('InvalidAliasNameException');
export const NotAuthorizedException = defineError('NotAuthorizedException');
export const TagException = defineError('TagException');
export const LimitExceededException = defineError('LimitExceededException');
export const KMSInternalException = defineError('KMSInternalException');
export const KeyUnavailableException = defineError('KeyUnavailableException');
export const DependencyTimeoutException = defineError('DependencyTimeoutException');
export const UnknownOperationException = defineError('UnknownOperationException');
export const ThrottlingException = defineError('ThrottlingException');
export const AccessDeniedException = defineError('AccessDeniedException');
export const MalformedPolicyDocumentException = defineError('MalformedPolicyDocumentException');

export type KmsErrorName =
  | 'ValidationException'
  | 'SerializationException'
  | 'NotFoundException'
  | 'DisabledException'
  | 'KMSInvalidStateException'
  | 'InvalidKeyUsageException'
  | 'KMSInvalidMacException'
  | 'DryRunOperationException'
  | 'InvalidGrantTokenException'
  | 'AlreadyExistsException'
  | 'UnsupportedOperationException'
  | 'IncorrectKeyMaterialException'
  | 'InvalidImportTokenException'
  | 'ExpiredImportTokenException'
  | 'InvalidCiphertextException'
  | 'InvalidArnException'
  | 'InvalidMarkerException'
  | 'InvalidAliasNameException'
  | 'NotAuthorizedException'
  | 'TagException'
  | 'LimitExceededException'
  | 'KMSInternalException'
  | 'KeyUnavailableException'
  | 'DependencyTimeoutException'
  | 'UnknownOperationException'
  | 'ThrottlingException'
  | 'AccessDeniedException'
  | 'MalformedPolicyDocumentException';

const OWN: Record<KmsErrorName, new (message?: string, requestId?: string) => KmsError> = {
  ValidationException,
  SerializationException,
  NotFoundException,
  DisabledException,
  KMSInvalidStateException,
  InvalidKeyUsageException,
  KMSInvalidMacException,
  DryRunOperationException,
  InvalidGrantTokenException,
  AlreadyExistsException,
  UnsupportedOperationException,
  IncorrectKeyMaterialException,
  InvalidImportTokenException,
  ExpiredImportTokenException,
  InvalidCiphertextException,
  InvalidArnException,
  InvalidMarkerException,
  InvalidAliasNameException,
  NotAuthorizedException,
  TagException,
  LimitExceededException,
  KMSInternalException,
  KeyUnavailableException,
  DependencyTimeoutException,
  UnknownOperationException,
  ThrottlingException,
  AccessDeniedException,
  MalformedPolicyDocumentException,
};

/** Every exception name the KMS layer throws: the catalogue (bounded label values for metrics). */
export const KMS_ERROR_NAMES: ReadonlySet<string> = new Set(Object.keys(OWN));

// ---------------------------------------------------------------------------
// Optional SDK classes, loaded lazily (never a hard import).

type SdkCtor = new (opts: Record<string, unknown>) => Error;
let sdkModule: Record<string, unknown> | null | undefined;
let sdkDisabled = process.env.KMS_HMAC_SDK_ERRORS === '0';

function loadSdk(): Record<string, unknown> | null {
  if (sdkModule !== undefined) return sdkModule;
  try {
    const require = createRequire(import.meta.url);
    sdkModule = require('@aws-sdk/client-kms') as Record<string, unknown>;
  } catch {
    sdkModule = null;
  }
  return sdkModule;
}

/**
 * Chooses whether errors are instances of `@aws-sdk/client-kms` classes
 * (default when the SDK is installed) or of this package's classes.
 * `KMS_HMAC_SDK_ERRORS=0` in the environment sets the default to false.
 */
export function useSdkErrorClasses(enabled: boolean): void {
  sdkDisabled = !enabled;
}

/** Whether errors are currently thrown as `@aws-sdk/client-kms` instances. */
export function sdkErrorClassesActive(): boolean {
  return !sdkDisabled && loadSdk() !== null;
}

/**
 * Creates the error to throw: an SDK instance when the SDK is available,
 * else one of ours. `message` undefined means "no message member" (only
 * KMSInvalidMacException in practice).
 */
export function kmsError(name: KmsErrorName, message?: string, requestId?: string): KmsErrorLike {
  const sdk = sdkDisabled ? null : loadSdk();
  if (sdk) {
    const status = STATUS[name] ?? 400;
    const $fault = status >= 500 ? 'server' : 'client';
    const $metadata: KmsErrorMetadata = {
      httpStatusCode: status,
      requestId: requestId ?? randomUUID(),
      attempts: 1,
      totalRetryDelay: 0,
    };
    const modeled = MODELED_ERRORS.has(name) ? (sdk[name] as SdkCtor | undefined) : undefined;
    const Ctor = modeled ?? (sdk.KMSServiceException as SdkCtor | undefined);
    if (Ctor) {
      const err = new Ctor({ name, $fault, $metadata, message: message ?? SDK_UNKNOWN_MESSAGE }) as KmsErrorLike;
      // A missing message becomes "UnknownError" in the SDK's deserializer
      // (decorateServiceException); mirrored above.
      if (err.name !== name) Object.defineProperty(err, 'name', { value: name, configurable: true, writable: true });
      return err;
    }
  }
  return new OWN[name](message, requestId);
}

/** The wire form of an error: HTTP status, `__type`, and `message` unless AWS omits it. */
export interface WireError {
  status: number;
  type: string;
  message?: string;
}

/**
 * Maps any error to what a KMS-compatible endpoint answers. KMS-shaped
 * errors keep their name, status and message (KMSInvalidMacException has no
 * message member, as on AWS); anything else is a KMSInternalException (500)
 * with no detail, so internal messages never leak.
 */
export function toWireError(err: unknown): WireError {
  if (isKmsError(err)) {
    const type = err.name;
    const status = err.$metadata?.httpStatusCode ?? STATUS[type] ?? 400;
    if (NO_WIRE_MESSAGE.has(type)) return { status, type };
    return { status, type, message: err.message };
  }
  return { status: 500, type: 'KMSInternalException', message: 'An internal error occurred.' };
}
