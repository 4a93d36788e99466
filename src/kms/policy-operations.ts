/**
 * Key policies: PutKeyPolicy, GetKeyPolicy, ListKeyPolicies, and the checks
 * CreateKey's `Policy` shares with PutKeyPolicy. A key has one policy,
 * named `default`; GetKeyPolicy returns its text verbatim, as it was put.
 */
import type { ClientContext } from './context.js';
import { keyPolicyText, type Caller } from './authorize.js';
import { kmsError } from './errors.js';
import { withChanges } from './keys.js';
import { LIMITS } from './limits.js';
import { evaluatePolicy, parsePolicy, PolicyError } from './policy.js';
import { Violations } from './validation.js';

const POLICY_NAME = 'default';

/**
 * A policy about to be stored for key `keyArn`: it must parse, and (unless
 * the caller bypasses the lockout safety check) still let the caller put
 * the next one. Throws MalformedPolicyDocumentException.
 */
export function checkNewPolicy(text: string, keyArn: string, caller: Caller, bypassLockoutCheck: boolean): void {
  let policy: ReturnType<typeof parsePolicy>;
  try {
    policy = parsePolicy(text);
  } catch (err) {
    if (err instanceof PolicyError) throw kmsError('MalformedPolicyDocumentException', err.message);
    throw err;
  }
  if (bypassLockoutCheck) return;
  const decision = evaluatePolicy(policy, {
    action: 'kms:PutKeyPolicy',
    principalArn: caller.principalArn,
    principalAccount: caller.accountId,
    resourceArn: keyArn,
    context: new Map([
      ['kms:calleraccount', caller.accountId],
      ['aws:principalarn', caller.principalArn],
      ['aws:principalaccount', caller.accountId],
      ['kms:grantisforawsresource', 'false'],
    ]),
  });
  if (decision !== 'Allow')
    throw kmsError(
      'MalformedPolicyDocumentException',
      'The new key policy will not allow you to update the key policy in the future.',
    );
}

/** `PolicyName`: optional (AWS defaults it), and `default` is the only one. */
function checkPolicyName(v: Violations, name: unknown, required: boolean): void {
  const n = v.string('policyName', name, ...LIMITS.policyName, required);
  if (n !== undefined && !/^[\w]+$/.test(n))
    v.add('policyName', n, 'Member must satisfy regular expression pattern: [\\w]+');
  v.throwIfAny();
  if (n !== undefined && n !== POLICY_NAME)
    throw kmsError('NotFoundException', `Key policy ${n} does not exist: a KMS key has one key policy, named default.`);
}

export class PolicyOperations {
  readonly #ctx: ClientContext;

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
  }

  async getKeyPolicy(
    input: { KeyId: string | undefined; PolicyName?: string },
    caller: Caller,
  ): Promise<{ Policy: string; PolicyName: string }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    checkPolicyName(v, input?.PolicyName, false);
    const rec = this.#ctx.resolveRead(keyId!, false, caller, 'GetKeyPolicy');
    return { Policy: keyPolicyText(rec), PolicyName: POLICY_NAME };
  }

  async listKeyPolicies(
    input: { KeyId: string | undefined; Limit?: number; Marker?: string },
    caller: Caller,
  ): Promise<{ PolicyNames: string[]; Truncated: boolean }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    v.integer('limit', input?.Limit, ...LIMITS.listKeyPoliciesLimit);
    v.string('marker', input?.Marker, ...LIMITS.marker, false);
    v.throwIfAny();
    this.#ctx.resolveRead(keyId!, false, caller, 'ListKeyPolicies');
    return { PolicyNames: [POLICY_NAME], Truncated: false };
  }

  async putKeyPolicy(
    input: {
      KeyId: string | undefined;
      PolicyName?: string;
      Policy: string | undefined;
      BypassPolicyLockoutSafetyCheck?: boolean;
    },
    caller: Caller,
  ): Promise<Record<string, never>> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const policy = v.string('policy', input?.Policy, ...LIMITS.policy, true);
    const bypass = v.boolean('bypassPolicyLockoutSafetyCheck', input?.BypassPolicyLockoutSafetyCheck) ?? false;
    checkPolicyName(v, input?.PolicyName, false);
    await this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'PutKeyPolicy');
      checkNewPolicy(policy!, rec.arn, caller, bypass);
      if (rec.policy !== policy) tx.replaceKey(withChanges(rec, { policy }));
    });
    return {};
  }
}
