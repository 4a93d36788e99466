/**
 * The KMS operations kms-hmac implements, in one registry: the PascalCase
 * name, the KmsHmacClient method that runs it (and checks its input), the
 * wire type of each input member, and whether it changes state.
 * `KmsHmacClient.execute`/`send` and the HTTP codec (src/server/codec.ts)
 * both read it.
 *
 * Member types come from the KMS model (botocore 1.43.11 service-2.json, the
 * same model as @aws-sdk/client-kms 3.1164.0).
 */

export type MemberType = 'string' | 'blob' | 'timestamp' | 'boolean' | 'integer' | 'strings' | 'tags' | 'object';
type InputSchema = Readonly<Record<string, MemberType>>;

export interface OperationSpec {
  /** Method name on KmsHmacClient. */
  readonly method: string;
  readonly input: InputSchema;
  /** Changes state: an unexpected failure is never answered with a 5xx (a client retry could repeat it). */
  readonly mutating: boolean;
}

const KEY: InputSchema = { KeyId: 'string' };
const PAGE = { Limit: 'integer', Marker: 'string' } as const;
const MAC_COMMON = {
  Message: 'blob',
  KeyId: 'string',
  MacAlgorithm: 'string',
  GrantTokens: 'strings',
  DryRun: 'boolean',
} as const;

function op(method: string, input: InputSchema, mutating: boolean): OperationSpec {
  return Object.freeze({ method, input: Object.freeze(input), mutating });
}

/** Operation name (as in `X-Amz-Target: TrentService.<Operation>` and `<Operation>Command`) → how to decode and run it. */
export const OPERATIONS: ReadonlyMap<string, OperationSpec> = new Map<string, OperationSpec>([
  [
    'CreateKey',
    op(
      'createKey',
      {
        Policy: 'string',
        Description: 'string',
        KeyUsage: 'string',
        CustomerMasterKeySpec: 'string',
        KeySpec: 'string',
        Origin: 'string',
        CustomKeyStoreId: 'string',
        BypassPolicyLockoutSafetyCheck: 'boolean',
        Tags: 'tags',
        MultiRegion: 'boolean',
        XksKeyId: 'string',
      },
      true,
    ),
  ],
  ['DescribeKey', op('describeKey', { KeyId: 'string', GrantTokens: 'strings' }, false)],
  ['ListKeys', op('listKeys', { ...PAGE }, false)],
  ['CreateAlias', op('createAlias', { AliasName: 'string', TargetKeyId: 'string' }, true)],
  ['UpdateAlias', op('updateAlias', { AliasName: 'string', TargetKeyId: 'string' }, true)],
  ['DeleteAlias', op('deleteAlias', { AliasName: 'string' }, true)],
  ['ListAliases', op('listAliases', { KeyId: 'string', ...PAGE }, false)],
  ['EnableKey', op('enableKey', KEY, true)],
  ['DisableKey', op('disableKey', KEY, true)],
  ['ScheduleKeyDeletion', op('scheduleKeyDeletion', { KeyId: 'string', PendingWindowInDays: 'integer' }, true)],
  ['CancelKeyDeletion', op('cancelKeyDeletion', KEY, true)],
  [
    'GetParametersForImport',
    op('getParametersForImport', { KeyId: 'string', WrappingAlgorithm: 'string', WrappingKeySpec: 'string' }, true),
  ],
  [
    'ImportKeyMaterial',
    op(
      'importKeyMaterial',
      {
        KeyId: 'string',
        ImportToken: 'blob',
        EncryptedKeyMaterial: 'blob',
        ValidTo: 'timestamp',
        ExpirationModel: 'string',
        ImportType: 'string',
        KeyMaterialDescription: 'string',
        KeyMaterialId: 'string',
      },
      true,
    ),
  ],
  ['DeleteImportedKeyMaterial', op('deleteImportedKeyMaterial', { KeyId: 'string', KeyMaterialId: 'string' }, true)],
  ['TagResource', op('tagResource', { KeyId: 'string', Tags: 'tags' }, true)],
  ['UntagResource', op('untagResource', { KeyId: 'string', TagKeys: 'strings' }, true)],
  ['ListResourceTags', op('listResourceTags', { KeyId: 'string', ...PAGE }, false)],
  ['EnableKeyRotation', op('enableKeyRotation', { KeyId: 'string', RotationPeriodInDays: 'integer' }, true)],
  ['DisableKeyRotation', op('disableKeyRotation', KEY, true)],
  ['GetKeyRotationStatus', op('getKeyRotationStatus', KEY, false)],
  ['UpdateKeyDescription', op('updateKeyDescription', { KeyId: 'string', Description: 'string' }, true)],
  [
    'PutKeyPolicy',
    op(
      'putKeyPolicy',
      { KeyId: 'string', PolicyName: 'string', Policy: 'string', BypassPolicyLockoutSafetyCheck: 'boolean' },
      true,
    ),
  ],
  ['GetKeyPolicy', op('getKeyPolicy', { KeyId: 'string', PolicyName: 'string' }, false)],
  ['ListKeyPolicies', op('listKeyPolicies', { KeyId: 'string', ...PAGE }, false)],
  [
    'CreateGrant',
    op(
      'createGrant',
      {
        KeyId: 'string',
        GranteePrincipal: 'string',
        RetiringPrincipal: 'string',
        Operations: 'strings',
        Constraints: 'object',
        GrantTokens: 'strings',
        Name: 'string',
        DryRun: 'boolean',
      },
      true,
    ),
  ],
  ['ListGrants', op('listGrants', { KeyId: 'string', GrantId: 'string', GranteePrincipal: 'string', ...PAGE }, false)],
  ['ListRetirableGrants', op('listRetirableGrants', { RetiringPrincipal: 'string', ...PAGE }, false)],
  [
    'RetireGrant',
    op('retireGrant', { GrantToken: 'string', KeyId: 'string', GrantId: 'string', DryRun: 'boolean' }, true),
  ],
  ['RevokeGrant', op('revokeGrant', { KeyId: 'string', GrantId: 'string', DryRun: 'boolean' }, true)],
  ['GenerateMac', op('generateMac', { ...MAC_COMMON }, false)],
  ['VerifyMac', op('verifyMac', { ...MAC_COMMON, Mac: 'blob' }, false)],
]);

/** The operation names, for callers that list them (`SUPPORTED_OPERATIONS`). */
export const OPERATION_NAMES: readonly string[] = Object.freeze([...OPERATIONS.keys()]);
