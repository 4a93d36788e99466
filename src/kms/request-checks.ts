/**
 * Request checks shared by several KMS operations: the KeyId-only input,
 * the key-state preconditions, tag lists and alias names. Each throws the
 * exact KMS error (type and message) AWS returns for the violation.
 */
import type { KeyRecord, Tag } from '../keystore/types.js';
import { kmsError } from './errors.js';
import { aliasNameProblem, ALIAS_NAME_PATTERN } from './identifiers.js';
import { LIMITS } from './limits.js';
import { validationError, validationMessage, Violations } from './validation.js';

/** The operations whose only required member is KeyId. */
export function requireKeyId(input: { KeyId?: unknown } | undefined): string {
  const v = new Violations();
  const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
  v.throwIfAny();
  return keyId!;
}

/** Most mutations refuse a key that is scheduled for deletion. */
export function checkNotPendingDeletion(rec: KeyRecord): void {
  if (rec.keyState === 'PendingDeletion') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending deletion.`);
}

/** EnableKey/DisableKey also refuse a key still waiting for its material. */
export function checkNotPending(rec: KeyRecord): void {
  checkNotPendingDeletion(rec);
  if (rec.keyState === 'PendingImport') throw kmsError('KMSInvalidStateException', `${rec.arn} is pending import.`);
}

/**
 * Tags member of CreateKey/TagResource/importRemoteKey: model violations go
 * to `v`, KMS rules throw TagException. (The count is a quota: checkTagQuota.)
 */
export function validateTags(v: Violations, tags: unknown): Tag[] {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw validationMessage('Tags must be a list');
  const out: Tag[] = [];
  tags.forEach((t: unknown, i) => {
    const tag = (t ?? {}) as Partial<Tag>;
    const key = v.string(`tags.${i + 1}.member.tagKey`, tag.TagKey, ...LIMITS.tagKey, true);
    const value = v.string(`tags.${i + 1}.member.tagValue`, tag.TagValue, ...LIMITS.tagValue, true);
    if (key !== undefined && value !== undefined) out.push({ TagKey: key, TagValue: value });
  });
  const seen = new Set<string>();
  for (const t of out) {
    if (t.TagKey.startsWith('aws:')) throw kmsError('TagException', 'Tags beginning with aws: are reserved');
    if (seen.has(t.TagKey)) throw kmsError('TagException', `Duplicate tag keys: ${t.TagKey}`);
    seen.add(t.TagKey);
  }
  return out;
}

/** The alias-name rules of CreateAlias/UpdateAlias beyond the model's length (see aliasNameProblem). */
export function checkAliasName(name: string): void {
  const problem = aliasNameProblem(name);
  if (problem === 'pattern') {
    throw validationError([
      `Value '${name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ${ALIAS_NAME_PATTERN}`,
    ]);
  }
  if (problem === 'prefix') throw aliasPrefixError();
  if (problem === 'reserved')
    throw kmsError(
      'NotAuthorizedException',
      `Alias names that begin with alias/aws/ are reserved for AWS managed keys: ${name}`,
    );
  // A name the model pattern allows (e.g. with ':') but the service does not:
  // AWS answers ValidationException with this text (quoted from a real AWS
  // response in the Terraform AWS provider's issue tracker).
  if (problem === 'characters') throw validationMessage(`${name} contains invalid characters for an alias`);
}

export function aliasPrefixError() {
  return validationMessage(
    'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
  );
}
