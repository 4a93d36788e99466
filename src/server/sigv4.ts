/**
 * SigV4 verification for the KMS endpoint (spec §8, §12).
 *
 * Hand-written rather than delegated to `@smithy/signature-v4` because the
 * server must canonicalize what it *received* (headers from `req.rawHeaders`,
 * the raw body bytes, the signed-header order the client declared), while
 * the SDK signer canonicalizes a request it builds itself; it is also
 * async and allocates far more per call than the hot path can afford. The
 * test suite checks this verifier against requests signed by the SDK signer,
 * the real `@aws-sdk/client-kms` and the AWS CLI.
 *
 * Evaluation order, in two steps so a stranger is refused before its body is
 * read. Headers: parse Authorization → credential scope → date window →
 * signed headers → access key → session token → signature, when the payload
 * hash is declared. Body: payload hash → signature, when it was not.
 * Signatures are compared in constant time.
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { createMacKey, type MacKey } from '../mac/key.js';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
/** Clock-skew window, both directions (AWS: 15 minutes). */
export const SIGV4_WINDOW_MS = 15 * 60 * 1000;

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
  /** When set, requests must carry this exact `X-Amz-Security-Token`. */
  sessionToken?: string;
  /** The principal ARN requests signed with this key are evaluated as (default: the account's root). */
  principal?: string;
  /** The principal's account (default: the principal ARN's, else the server's account). */
  accountId?: string;
}

export type AuthErrorType =
  | 'MissingAuthenticationTokenException'
  | 'IncompleteSignatureException'
  | 'InvalidSignatureException'
  | 'UnrecognizedClientException';

export class AuthError extends Error {
  override readonly name: AuthErrorType;
  constructor(type: AuthErrorType, message: string) {
    super(message);
    this.name = type;
  }
}

export const MSG_SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
export const MSG_INVALID_TOKEN = 'The security token included in the request is invalid.';
const MSG_PAYLOAD_HASH = "The provided 'x-amz-content-sha256' header does not match what was computed.";

export interface VerifierOptions {
  /** Known credential pairs. Ignored when `acceptAny` is true. */
  credentials?: readonly Credential[];
  /** Emulator mode: any well-formed, in-window, correctly scoped signature is accepted; nothing is verified. */
  acceptAny?: boolean;
  /** Region that the credential scope must name; `'*'` accepts any region. */
  region: string;
  /** More Regions the scope may name besides `region` (the Regions `serve` answers). */
  regions?: readonly string[];
  /** Service name in the scope (always `kms` for this server). */
  service?: string;
  /** Clock, for tests. */
  now?: () => number;
}

/** What a verified request proved: the access key that signed it. */
export interface AuthResult {
  accessKeyId: string;
}

/** The parts of an incoming request the verifier needs. */
export interface SignedRequest {
  method: string;
  /** Canonical URI as received (the endpoint accepts only `/`). */
  path: string;
  /** Node's `req.rawHeaders`: [name, value, name, value, …] as received. */
  rawHeaders: readonly string[];
  body: Uint8Array;
}

/** What `checkHeaders` proved, and what is left to prove once the body is in. */
export interface PendingAuth {
  /** The access key the request names: known (or `--auth any`), its session token right. Not yet proof of the secret. */
  readonly accessKeyId: string;
  /** The Region of the credential scope (one this verifier accepts). */
  readonly region: string;
  /** `x-amz-content-sha256` as sent: the body must hash to it. */
  readonly declaredHash: string | undefined;
  /** Set when the signature still has to be checked against the body's hash. */
  readonly signature: PendingSignature | undefined;
}

interface PendingSignature {
  /** The canonical request up to (not including) the payload hash. */
  canonicalWithoutPayload: string;
  /** The string to sign up to (not including) the canonical request's hash. */
  stringToSignPrefix: string;
  /** The signature sent, 64 hex digits. */
  given: string;
  /** Which signing key: looked up when checked (the cache may have been emptied in between). */
  credential: Credential;
  date: string;
  region: string;
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string;
  signedHeaderList: string[];
  signature: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Finds a header by lowercase name in rawHeaders; joins repeats with ',' (SigV4 rule). */
export function rawHeader(rawHeaders: readonly string[], lowerName: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.length === lowerName.length && (n === lowerName || n.toLowerCase() === lowerName)) {
      const v = canonicalValue(rawHeaders[i + 1]!);
      out = out === undefined ? v : `${out},${v}`;
    }
  }
  return out;
}

function canonicalValue(v: string): string {
  // Node's parser already strips leading/trailing OWS; collapse inner runs only when present.
  if (v.indexOf('  ') === -1 && v.indexOf('\t') === -1 && v.trim() === v) return v;
  return v.trim().replace(/[ \t]+/g, ' ');
}

/** The form every AWS client sends; anything else takes the general parser (and its precise errors). */
const FAST_AUTH = /^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([a-z0-9;._-]+), ?Signature=([0-9a-f]{64})$/;
/** SignedHeaders strings repeat from request to request; split each once. Bounded. */
const signedHeaderLists = new Map<string, string[]>();

function splitSignedHeaders(signedHeaders: string): string[] {
  let list = signedHeaderLists.get(signedHeaders);
  if (list === undefined) {
    list = signedHeaders.split(';');
    if (signedHeaderLists.size >= 256) signedHeaderLists.clear();
    signedHeaderLists.set(signedHeaders, list);
  }
  return list;
}

export function parseAuthorization(header: string): ParsedAuthorization {
  const m = FAST_AUTH.exec(header);
  if (m !== null) {
    const scope = m[1]!.split('/');
    const signedHeaderList = splitSignedHeaders(m[2]!);
    if (scope.length === 5 && scope.every((x) => x !== '') && signedHeaderList.every((h) => h !== '')) {
      return parsed(scope, m[2]!, signedHeaderList, m[3]!);
    }
  }
  return parseAuthorizationSlow(header);
}

function parseAuthorizationSlow(header: string): ParsedAuthorization {
  const sp = header.indexOf(' ');
  const algorithm = sp === -1 ? header : header.slice(0, sp);
  if (algorithm !== SIGV4_ALGORITHM) {
    throw new AuthError('IncompleteSignatureException', `Unsupported AWS 'algorithm': '${truncate(algorithm)}'.`);
  }
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  for (const raw of header.slice(sp + 1).split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) {
      throw new AuthError(
        'IncompleteSignatureException',
        `'${truncate(part)}' not a valid key=value pair (missing equal-sign) in Authorization header: '${truncate(header)}'.`,
      );
    }
    const k = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (k === 'Credential') credential = v;
    else if (k === 'SignedHeaders') signedHeaders = v;
    else if (k === 'Signature') signature = v;
  }
  const missing: string[] = [];
  if (credential === undefined) missing.push("'Credential'");
  if (signedHeaders === undefined) missing.push("'SignedHeaders'");
  if (signature === undefined) missing.push("'Signature'");
  if (missing.length > 0) {
    throw new AuthError(
      'IncompleteSignatureException',
      `Authorization header requires ${missing.join(', ')} parameter${missing.length > 1 ? 's' : ''}. ` +
        `Authorization=${truncate(header)}`,
    );
  }
  const scope = credential!.split('/');
  if (scope.length !== 5 || scope.some((s) => s === '')) {
    throw new AuthError(
      'IncompleteSignatureException',
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${truncate(credential!)}'`,
    );
  }
  if (!HEX64.test(signature!)) {
    throw new AuthError('IncompleteSignatureException', 'Signature must be 64 lowercase hexadecimal characters.');
  }
  const signedHeaderList = signedHeaders!.split(';');
  for (const h of signedHeaderList) {
    if (h === '' || h !== h.toLowerCase()) {
      throw new AuthError(
        'IncompleteSignatureException',
        `Invalid SignedHeaders '${truncate(signedHeaders!)}': names must be lowercase and ';'-separated.`,
      );
    }
  }
  return parsed(scope, signedHeaders!, signedHeaderList, signature!);
}

/** The parsed header from its checked parts (scope: key/date/region/service/terminator). */
function parsed(
  scope: string[],
  signedHeaders: string,
  signedHeaderList: string[],
  signature: string,
): ParsedAuthorization {
  return {
    accessKeyId: scope[0]!,
    date: scope[1]!,
    region: scope[2]!,
    service: scope[3]!,
    terminator: scope[4]!,
    signedHeaders,
    signedHeaderList,
    signature,
  };
}

function truncate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function parseAmzDate(v: string): number | undefined {
  const m = AMZ_DATE.exec(v);
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? undefined : t;
}

function isoBasic(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

export class SigV4Verifier {
  private byKey = new Map<string, Credential>();
  private readonly acceptAny: boolean;
  /** The Regions the scope may name; undefined: any. */
  private readonly regions: ReadonlySet<string> | undefined;
  private readonly service: string;
  private readonly now: () => number;
  /**
   * Signing keys by accessKeyId/date/region: derived once a day per key (4 HMACs) and held as a
   * prepared HMAC-SHA-256 key of this package's own backend (inner/outer state precomputed, so
   * checking a signature is two SHA-256 compressions and a constant-time compare, no per-request
   * HMAC object).
   */
  private readonly signingKeys = new Map<string, SigningKey>();

  constructor(opts: VerifierOptions) {
    this.acceptAny = opts.acceptAny === true;
    this.regions = opts.region === '*' ? undefined : new Set([opts.region, ...(opts.regions ?? [])]);
    this.service = opts.service ?? 'kms';
    this.now = opts.now ?? Date.now;
    for (const c of opts.credentials ?? []) this.byKey.set(c.accessKeyId, c);
    if (!this.acceptAny && this.byKey.size === 0) throw new Error('SigV4Verifier: no credentials configured');
  }

  /** Replaces the accepted credentials (a reloaded credentials file); cached signing keys are wiped. */
  setCredentials(credentials: readonly Credential[]): void {
    if (!this.acceptAny && credentials.length === 0) throw new Error('SigV4Verifier: no credentials configured');
    this.byKey = new Map(credentials.map((c) => [c.accessKeyId, c]));
    this.destroy();
  }

  /** Throws AuthError; returns the authenticated access key. Both steps of `checkHeaders` + `checkBody`. */
  verify(req: SignedRequest): AuthResult {
    return this.checkBody(this.checkHeaders(req.method, req.path, req.rawHeaders), req.body);
  }

  /**
   * Everything the headers alone can prove, checked before a byte of the body
   * is read (so a stranger costs a header parse, never a buffered body):
   * Authorization syntax, credential scope, date window, signed headers,
   * access key and session token. When the request declares its payload hash
   * (`x-amz-content-sha256`, which the JS SDK always sends), the signature is
   * checked here too and only the body's hash is left for `checkBody`.
   * Throws AuthError.
   */
  checkHeaders(method: string, path: string, rawHeaders: readonly string[]): PendingAuth {
    const authorization = rawHeader(rawHeaders, 'authorization');
    if (authorization === undefined || authorization === '') {
      throw new AuthError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const auth = parseAuthorization(authorization);

    const amzDate = rawHeader(rawHeaders, 'x-amz-date');
    if (amzDate === undefined) {
      throw new AuthError(
        'IncompleteSignatureException',
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      );
    }
    const t = parseAmzDate(amzDate);
    if (t === undefined) {
      throw new AuthError(
        'IncompleteSignatureException',
        `X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z', got '${truncate(amzDate)}'.`,
      );
    }
    if (auth.date !== amzDate.slice(0, 8)) {
      throw new AuthError(
        'InvalidSignatureException',
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${truncate(auth.date)}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
      );
    }
    if (auth.service !== this.service) {
      throw new AuthError(
        'InvalidSignatureException',
        `Credential should be scoped to correct service: '${this.service}'. `,
      );
    }
    if (this.regions !== undefined && !this.regions.has(auth.region)) {
      throw new AuthError(
        'InvalidSignatureException',
        `Credential should be scoped to a valid region, not '${truncate(auth.region)}'. `,
      );
    }
    if (auth.terminator !== 'aws4_request') {
      throw new AuthError(
        'InvalidSignatureException',
        `Credential should be scoped with a valid terminator: 'aws4_request', not '${truncate(auth.terminator)}'. `,
      );
    }
    const now = this.now();
    if (t < now - SIGV4_WINDOW_MS) {
      throw new AuthError(
        'InvalidSignatureException',
        `Signature expired: ${amzDate} is now earlier than ${isoBasic(now - SIGV4_WINDOW_MS)} (${isoBasic(now)} - 15 min.)`,
      );
    }
    if (t > now + SIGV4_WINDOW_MS) {
      throw new AuthError(
        'InvalidSignatureException',
        `Signature not yet current: ${amzDate} is still later than ${isoBasic(now + SIGV4_WINDOW_MS)} (${isoBasic(now)} + 15 min.)`,
      );
    }
    let hasHost = false;
    let hasTarget = false;
    for (const h of auth.signedHeaderList) {
      if (h === 'host') hasHost = true;
      else if (h === 'x-amz-target') hasTarget = true;
    }
    if (!hasHost) {
      throw new AuthError(
        'InvalidSignatureException',
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
      );
    }
    if (!hasTarget) {
      throw new AuthError(
        'InvalidSignatureException',
        "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
      );
    }
    // A declared payload hash the body can never match (not 64 lowercase hex digits) fails now, not after the body.
    const declaredHash = rawHeader(rawHeaders, 'x-amz-content-sha256');
    if (declaredHash !== undefined && !HEX64.test(declaredHash))
      throw new AuthError('InvalidSignatureException', MSG_PAYLOAD_HASH);

    const { accessKeyId, region } = auth;
    if (this.acceptAny) return { accessKeyId, region, declaredHash, signature: undefined };
    const cred = this.byKey.get(auth.accessKeyId);
    if (cred === undefined) throw new AuthError('UnrecognizedClientException', MSG_INVALID_TOKEN);
    const token = rawHeader(rawHeaders, 'x-amz-security-token');
    if (cred.sessionToken === undefined ? token !== undefined : !sameString(token, cred.sessionToken)) {
      throw new AuthError('UnrecognizedClientException', MSG_INVALID_TOKEN);
    }

    // Canonical request (spec §12.5): method, URI, empty query, headers in the declared order; the payload hash ends it.
    let canonical = `${method}\n${path}\n\n`;
    for (const h of auth.signedHeaderList) canonical += `${h}:${rawHeader(rawHeaders, h) ?? ''}\n`;
    canonical += `\n${auth.signedHeaders}\n`;
    const signature: PendingSignature = {
      canonicalWithoutPayload: canonical,
      stringToSignPrefix:
        SIGV4_ALGORITHM +
        '\n' +
        amzDate +
        '\n' +
        auth.date +
        '/' +
        auth.region +
        '/' +
        auth.service +
        '/aws4_request\n',
      given: auth.signature,
      credential: cred,
      date: auth.date,
      region: auth.region,
    };
    if (declaredHash === undefined) return { accessKeyId, region, declaredHash, signature };
    this.checkSignature(signature, declaredHash);
    return { accessKeyId, region, declaredHash, signature: undefined };
  }

  /** Finishes what `checkHeaders` began: the body's hash, then the signature if it was left for now. Throws AuthError. */
  checkBody(pending: PendingAuth, body: Uint8Array): AuthResult {
    const payloadHash = hash('sha256', body, 'hex');
    if (pending.declaredHash !== undefined && pending.declaredHash !== payloadHash) {
      throw new AuthError('InvalidSignatureException', MSG_PAYLOAD_HASH);
    }
    if (pending.signature !== undefined) this.checkSignature(pending.signature, payloadHash);
    return { accessKeyId: pending.accessKeyId };
  }

  /** Compares the signature in constant time against the one computed over the canonical request ending in `payloadHash`. */
  private checkSignature(p: PendingSignature, payloadHash: string): void {
    // Header values arrive as latin1 strings (one char per byte received): hash those bytes, not their UTF-8 re-encoding.
    const canonicalHash = hash('sha256', Buffer.from(p.canonicalWithoutPayload + payloadHash, 'latin1'), 'hex');
    const stringToSign = Buffer.from(p.stringToSignPrefix + canonicalHash, 'latin1');
    if (!this.signingKey(p.credential, p.date, p.region).verify(stringToSign, Buffer.from(p.given, 'hex'))) {
      throw new AuthError('InvalidSignatureException', MSG_SIGNATURE_MISMATCH);
    }
  }

  private signingKey(cred: Credential, date: string, region: string): SigningKey {
    const id = `${cred.accessKeyId}/${date}/${region}`;
    let key = this.signingKeys.get(id);
    if (key === undefined) {
      key = prepareSigningKey(deriveSigningKey(cred.secretAccessKey, date, region, this.service));
      if (this.signingKeys.size >= 1024) {
        for (const k of this.signingKeys.values()) k.destroy();
        this.signingKeys.clear();
      }
      this.signingKeys.set(id, key);
    }
    return key;
  }

  /** Wipes the cached signing keys. */
  destroy(): void {
    for (const k of this.signingKeys.values()) k.destroy();
    this.signingKeys.clear();
  }
}

interface SigningKey {
  verify(message: Uint8Array, mac: Uint8Array): boolean;
  destroy(): void;
}

/** The package's HMAC backend when it loads; node:crypto otherwise (the verifier must never depend on it). */
function prepareSigningKey(key: Buffer): SigningKey {
  try {
    const k: MacKey = createMacKey('HMAC_SHA_256', key);
    key.fill(0);
    return k;
  } catch {
    return {
      verify: (message, mac) => {
        const expected = createHmac('sha256', key).update(message).digest();
        return expected.length === mac.length && timingSafeEqual(expected, mac);
      },
      destroy: () => key.fill(0),
    };
  }
}

export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = createHmac('sha256', `AWS4${secret}`).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  return createHmac('sha256', kService).update('aws4_request').digest();
}

function sameString(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
