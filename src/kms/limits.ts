/**
 * The KMS model's length and range limits, in one place. Every check of a
 * request member (src/kms/*-operations.ts), the log sidecar's record framing
 * (src/logs/format.ts) and the CLI's help read them from here.
 *
 * Each is an inclusive [min, max] pair, as the model states it (botocore
 * 1.43.11 service-2.json, the model of @aws-sdk/client-kms 3.1164.0); string
 * limits count characters, blob limits bytes.
 */
export type Range = readonly [min: number, max: number];

export const LIMITS = {
  /** GenerateMac/VerifyMac `Message`: the most a MAC covers in one call. */
  message: [1, 4096],
  /** VerifyMac `Mac`. */
  mac: [1, 6144],
  /** `KeyId`, `TargetKeyId` and local `RemoteArn` (an ARN is a key id too). */
  keyId: [1, 2048],
  aliasName: [1, 256],
  description: [0, 8192],
  policy: [1, 32768],
  /** GetKeyPolicy/PutKeyPolicy `PolicyName` (only `default` exists). */
  policyName: [1, 128],
  /** CreateGrant `Name`, `GranteePrincipal`, `RetiringPrincipal`; the grant operations' `GrantId`. */
  grantName: [1, 256],
  principal: [1, 256],
  grantId: [1, 128],
  customKeyStoreId: [1, 64],
  xksKeyId: [1, 128],
  tagKey: [1, 128],
  tagValue: [0, 256],
  marker: [1, 1024],
  importToken: [1, 6144],
  encryptedKeyMaterial: [1, 6144],
  /** Local extension (importRemoteKey): the largest HMAC key material KMS accepts for any spec. */
  keyMaterial: [1, 128],
  /** `GrantTokens`: the item count, and each token's length. */
  grantTokenCount: [0, 10],
  grantToken: [1, 8192],
  /** `ReplicaRegion`, `PrimaryRegion`. */
  region: [1, 32],
  pendingWindowInDays: [7, 30],
  rotationPeriodInDays: [90, 2560],
  /** `Limit` of ListKeys, ListAliases and ListResourceTags. */
  listKeysLimit: [1, 1000],
  listAliasesLimit: [1, 100],
  listResourceTagsLimit: [1, 50],
  /** `Limit` of ListGrants, ListRetirableGrants and ListKeyPolicies. */
  listGrantsLimit: [1, 100],
  listKeyPoliciesLimit: [1, 1000],
} as const satisfies Record<string, Range>;

// The resource quotas (keys, aliases per key, tags per key) are in quotas.ts.
