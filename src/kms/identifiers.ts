/**
 * Key identifiers: key ID, key ARN, alias name, alias ARN (spec §6).
 * Parsing only; lookups live in ./context.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MRK_RE = /^mrk-[0-9a-fA-F]{32}$/;
const ARN_RE = /^arn:([a-z0-9-]+):kms:([^:]*):([^:]*):(key|alias)\/(.+)$/;
/** Model pattern for alias names. */
export const ALIAS_NAME_PATTERN = '^[a-zA-Z0-9:/_-]+$';
const ALIAS_NAME_RE = /^[a-zA-Z0-9:/_-]+$/;
/** Characters the developer guide allows after `alias/` (the model also admits ':'). */
const ALIAS_DOC_RE = /^alias\/[a-zA-Z0-9/_-]+$/;

export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  return 'aws';
}

export function isKeyIdForm(id: string): boolean {
  return UUID_RE.test(id) || MRK_RE.test(id);
}

export function newKeyId(multiRegion: boolean): string {
  return multiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID();
}

export type ParsedKeyId =
  | { kind: 'keyId'; keyId: string }
  | { kind: 'keyArn'; keyId: string; region: string; account: string; partition: string; arn: string }
  | { kind: 'aliasName'; aliasName: string }
  | { kind: 'aliasArn'; aliasName: string; region: string; account: string; partition: string; arn: string }
  | { kind: 'invalid' };

const INVALID: ParsedKeyId = Object.freeze({ kind: 'invalid' });

export function parseKeyId(id: string): ParsedKeyId {
  if (id.startsWith('alias/')) return id.length > 6 ? { kind: 'aliasName', aliasName: id } : INVALID;
  if (id.startsWith('arn:')) {
    const m = ARN_RE.exec(id);
    if (!m) return INVALID;
    const [, partition, region, account, type, rest] = m as unknown as [string, string, string, string, string, string];
    if (type === 'key') {
      if (!isKeyIdForm(rest)) return INVALID;
      return { kind: 'keyArn', keyId: rest, region, account, partition, arn: id };
    }
    return { kind: 'aliasArn', aliasName: `alias/${rest}`, region, account, partition, arn: id };
  }
  if (isKeyIdForm(id)) return { kind: 'keyId', keyId: id };
  return INVALID;
}

export interface Scope {
  region: string;
  accountId: string;
  partition: string;
}

export function keyArn(scope: Scope, keyId: string): string {
  return `arn:${scope.partition}:kms:${scope.region}:${scope.accountId}:key/${keyId}`;
}

/** The account field of an ARN (`arn:partition:service:region:account:…`). */
export function arnAccount(arn: string): string {
  return arn.split(':', 5)[4] ?? '';
}

export function aliasArn(scope: Scope, aliasName: string): string {
  return `arn:${scope.partition}:kms:${scope.region}:${scope.accountId}:${aliasName}`;
}

/** The checks CreateAlias/UpdateAlias apply beyond the model's length and pattern. */
export function aliasNameProblem(name: string): 'prefix' | 'reserved' | 'characters' | 'pattern' | undefined {
  if (!ALIAS_NAME_RE.test(name)) return 'pattern';
  if (!name.startsWith('alias/')) return 'prefix';
  if (name.startsWith('alias/aws/')) return 'reserved';
  if (!ALIAS_DOC_RE.test(name)) return 'characters';
  return undefined;
}
