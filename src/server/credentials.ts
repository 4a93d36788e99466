/**
 * Credentials for SigV4 verification: pairs from flags, environment, or a
 * JSON credentials file holding several pairs (optionally with session
 * tokens), each with the principal its requests are evaluated as.
 *
 * File format (mode 0600 recommended; the server warns when others can read it):
 *   { "credentials": [ { "accessKeyId": "AKID…", "secretAccessKey": "…", "sessionToken": "…",
 *                        "principal": "arn:aws:iam::111122223333:user/shipper", "accountId": "111122223333" }, … ] }
 * `principal` and `accountId` are optional: without them an entry is the
 * server's account's root, as a flag-given pair is. A bare array is accepted
 * too, and the AWS spellings AccessKeyId / SecretAccessKey / SessionToken /
 * Principal / AccountId.
 */
import { readFileSync, statSync } from 'node:fs';
import { callerFrom } from '../kms/authorize.js';
import type { Credential } from './sigv4.js';

export const ENV_ACCESS_KEY_ID = 'KMS_HMAC_ACCESS_KEY_ID';
export const ENV_SECRET_ACCESS_KEY = 'KMS_HMAC_SECRET_ACCESS_KEY';
export const ENV_SESSION_TOKEN = 'KMS_HMAC_SESSION_TOKEN';

/**
 * The shortest secret access key `startServer` accepts (except in emulator
 * mode): a SigV4 signature is an offline oracle for the secret, so a short
 * one can be guessed from a single logged request. AWS's own are 40.
 */
export const MIN_SECRET_LENGTH = 16;

export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
}

function str(o: Record<string, unknown>, a: string, b: string): string | undefined {
  const v = o[a] ?? o[b];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Validates one pair; throws CredentialsError naming `where` (never the secret). */
export function checkCredential(c: Partial<Credential>, where: string): Credential {
  if (typeof c.accessKeyId !== 'string' || !/^[A-Za-z0-9_.:-]{1,128}$/.test(c.accessKeyId)) {
    throw new CredentialsError(`${where}: accessKeyId must be 1-128 characters of [A-Za-z0-9_.:-]`);
  }
  if (typeof c.secretAccessKey !== 'string' || c.secretAccessKey === '') {
    throw new CredentialsError(`${where}: secretAccessKey is missing for access key ${c.accessKeyId}`);
  }
  const out: Credential = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey };
  if (c.sessionToken !== undefined) {
    if (typeof c.sessionToken !== 'string' || c.sessionToken === '')
      throw new CredentialsError(`${where}: sessionToken must be a non-empty string`);
    out.sessionToken = c.sessionToken;
  }
  if (c.principal !== undefined || c.accountId !== undefined) {
    if (c.principal !== undefined && typeof c.principal !== 'string')
      throw new CredentialsError(`${where}: principal must be an IAM ARN string`);
    if (c.accountId !== undefined && typeof c.accountId !== 'string')
      throw new CredentialsError(`${where}: accountId must be a string of 12 digits`);
    try {
      // The partition and default account do not matter here: only the fields' syntax and agreement are checked.
      callerFrom(c.principal, c.accountId, 'aws', '000000000000');
    } catch (err) {
      throw new CredentialsError(`${where}: ${(err as Error).message}`);
    }
    if (c.principal !== undefined) out.principal = c.principal;
    if (c.accountId !== undefined) out.accountId = c.accountId;
  }
  return out;
}

export function parseCredentialsFile(text: string, path: string): Credential[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CredentialsError(
      `${path}: not valid JSON (expected {"credentials":[{"accessKeyId","secretAccessKey"}]})`,
    );
  }
  const list = Array.isArray(doc) ? doc : (doc as { credentials?: unknown } | null)?.credentials;
  if (!Array.isArray(list) || list.length === 0) {
    throw new CredentialsError(`${path}: expected a non-empty "credentials" array`);
  }
  return list.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null)
      throw new CredentialsError(`${path}: credentials[${i}] is not an object`);
    const o = entry as Record<string, unknown>;
    const c: Partial<Credential> = {
      accessKeyId: str(o, 'accessKeyId', 'AccessKeyId'),
      secretAccessKey: str(o, 'secretAccessKey', 'SecretAccessKey'),
    };
    const token = o.sessionToken ?? o.SessionToken;
    if (token !== undefined) c.sessionToken = token as string;
    const principal = o.principal ?? o.Principal;
    if (principal !== undefined) c.principal = principal as string;
    const accountId = o.accountId ?? o.AccountId;
    if (accountId !== undefined) c.accountId = accountId as string;
    return checkCredential(c, `${path}: credentials[${i}]`);
  });
}

export function loadCredentialsFile(path: string, warn?: (msg: string) => void): Credential[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CredentialsError(
      `cannot read credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  if (warn && process.platform !== 'win32') {
    try {
      if ((statSync(path).mode & 0o077) !== 0)
        warn(`credentials file ${path} is readable by other users; chmod 600 it`);
    } catch {
      /* ignore */
    }
  }
  return parseCredentialsFile(text, path);
}

/** Refuses a secret shorter than MIN_SECRET_LENGTH, naming its access key (never the secret). */
export function checkSecretLengths(credentials: readonly Credential[]): void {
  for (const c of credentials) {
    if (c.secretAccessKey.length < MIN_SECRET_LENGTH) {
      throw new CredentialsError(
        `the secret access key of ${c.accessKeyId} has ${c.secretAccessKey.length} characters; at least ${MIN_SECRET_LENGTH} are required ` +
          '(generate one: head -c 30 /dev/urandom | base64)',
      );
    }
  }
}

/** Merges pairs, rejecting two different secrets for one access key id. */
export function mergeCredentials(lists: ReadonlyArray<readonly Credential[]>): Credential[] {
  const byId = new Map<string, Credential>();
  for (const list of lists) {
    for (const c of list) {
      const prev = byId.get(c.accessKeyId);
      if (prev && (prev.secretAccessKey !== c.secretAccessKey || prev.sessionToken !== c.sessionToken)) {
        throw new CredentialsError(`access key ${c.accessKeyId} is configured twice with different secrets`);
      }
      if (prev && (prev.principal !== c.principal || prev.accountId !== c.accountId)) {
        throw new CredentialsError(`access key ${c.accessKeyId} is configured twice with different principals`);
      }
      byId.set(c.accessKeyId, c);
    }
  }
  return [...byId.values()];
}
