/**
 * Keys and aliases as the store keeps them. The KMS layer (`src/kms/`) owns
 * the meaning of every field; the store owns durability, locking and
 * encryption at rest. Field names are camelCase; the KMS layer maps them to
 * the PascalCase shapes of the AWS API.
 */

export type HmacKeySpec = 'HMAC_224' | 'HMAC_256' | 'HMAC_384' | 'HMAC_512';
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport';
export type KeyOrigin = 'AWS_KMS' | 'EXTERNAL';

export interface Tag {
  TagKey: string;
  TagValue: string;
}

/** An outstanding GetParametersForImport: the RSA private key that unwraps the material. */
export interface ImportParameters {
  /** Opaque token id embedded in the ImportToken the client received. */
  tokenId: string;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
  /** PKCS#8 DER of the RSA private key. Secret: encrypted at rest like key material. */
  privateKey: Uint8Array;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface KeyRecord {
  /** UUID, or `mrk-` + 32 hex digits for multi-Region keys. */
  keyId: string;
  arn: string;
  keySpec: HmacKeySpec;
  keyUsage: 'GENERATE_VERIFY_MAC';
  keyState: KeyState;
  origin: KeyOrigin;
  description: string;
  multiRegion: boolean;
  /** Epoch milliseconds. */
  creationDate: number;
  /** Epoch milliseconds; set while PendingDeletion. */
  deletionDate?: number;
  pendingDeletionWindowInDays?: number;
  /** The key state to return to on CancelKeyDeletion is always Disabled (AWS); kept for imports. */
  /** Secret: never logged, never in errors, encrypted at rest when a passphrase is set. Absent while PendingImport. */
  keyMaterial?: Uint8Array;
  /** For EXTERNAL keys: SHA-256 of the first imported material, to enforce "same material on reimport". */
  importedMaterialDigest?: string;
  expirationModel?: 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE';
  /** Epoch milliseconds; imported material expires then and the key returns to PendingImport. */
  validTo?: number;
  importParameters?: ImportParameters;
  tags: Tag[];
  /** Fast path: the ARN of the same key (same imported material) in AWS KMS. */
  remoteArn?: string;
  /** The key policy (JSON text) as PutKeyPolicy or CreateKey stored it; absent: the account's default policy. */
  policy?: string;
  /** The key's grants (CreateGrant), oldest first. */
  grants?: GrantRecord[];
  /**
   * Multi-Region keys: the Region of the primary key and of every replica,
   * the same in every Region's record of the key. Absent: a primary key
   * (in this record's Region) without replicas.
   */
  regions?: { primary: string; replicas: string[] };
  /**
   * Set when another Region's record of the same key id held the store id
   * `keyId` when this one was created (a multi-Region replica): this
   * record's store id is then `keyId@idRegion` (keyStoreId, records.ts).
   */
  idRegion?: string;
}

/** A grant on a key (CreateGrant): the grantee may run the listed operations. */
export interface GrantRecord {
  /** 64 hex digits. */
  grantId: string;
  name?: string;
  /** The principal ARN the grant is for. */
  granteePrincipal: string;
  retiringPrincipal?: string;
  /** `arn:aws:iam::<account>:root` of the account that created the grant. */
  issuingAccount: string;
  /** KMS operation names (GenerateMac, VerifyMac, DescribeKey, RetireGrant, CreateGrant). */
  operations: string[];
  /** Epoch milliseconds. */
  creationDate: number;
}

export interface AliasRecord {
  /** `alias/…` */
  aliasName: string;
  aliasArn: string;
  targetKeyId: string;
  /** Epoch milliseconds. */
  creationDate: number;
  lastUpdatedDate: number;
  /** Set when an alias of the same name in another Region held the store id `aliasName`: its id is `aliasName@idRegion`. */
  idRegion?: string;
}

/** A consistent view of the store, handed to a mutation. Changes apply on commit. */
/**
 * A store identifies a key by its store id (`keyStoreId(record)`: the key id,
 * or `keyId@region` for a second Region's record of a multi-Region key) and an
 * alias by `aliasStoreId(record)` (likewise). Reads and deletions take those ids.
 */
export interface KeyStoreTransaction {
  getKey(keyId: string): KeyRecord | undefined;
  listKeys(): KeyRecord[];
  getAlias(aliasName: string): AliasRecord | undefined;
  listAliases(): AliasRecord[];
  /**
   * The keys that change by themselves at some date (`deletionDate` or
   * `validTo` set), without scanning the store. Optional for stores written
   * outside this package (the KMS layer then filters listKeys()).
   */
  listScheduledKeys?(): KeyRecord[];
  /** Adds a key; throws if the id exists (a key is never silently overwritten). */
  insertKey(record: KeyRecord): void;
  /** Replaces an existing key; throws if it does not exist. */
  replaceKey(record: KeyRecord): void;
  /** Removes a key; returns whether it existed (never throws for a missing id). */
  deleteKey(keyId: string): boolean;
  /** Adds an alias; throws if the name exists. */
  insertAlias(alias: AliasRecord): void;
  /** Replaces an existing alias; throws if it does not exist. */
  replaceAlias(alias: AliasRecord): void;
  /** Removes an alias; returns whether it existed (never throws for a missing name). */
  deleteAlias(aliasName: string): boolean;
}

/**
 * How a store is doing while it runs (`KeyStore.health()`,
 * `KmsHmacClient.keyStoreHealth()`; `serve`'s readiness and metrics read it).
 * - `ok`: the snapshot is the store's, as last loaded or caught up with.
 * - `degraded`: the durable store cannot be reached (the database is lost);
 *   MACs are served from the snapshot, writes fail until it is back.
 * - `tampered`: a background reload failed authentication (an edit made
 *   without the passphrase, an older copy put back, the passphrase changed
 *   by `kms-hmac keys rekey` elsewhere); MACs are served from the snapshot
 *   last authenticated. Stays until a reload authenticates again.
 */
export interface KeyStoreHealth {
  /** The store as it may be shown: a file path, a URL without its password, or `memory`. */
  store: string;
  state: 'ok' | 'degraded' | 'tampered';
  /** Epoch ms at which the snapshot was last known current: loaded, caught up, or checked unchanged. */
  snapshotLoadedAt?: number;
  /** The last failure of a background reload (kept after recovery). */
  lastError?: { name: string; message: string; at: number };
  /** Background reloads that failed since the store was opened. */
  reloadFailures: number;
}

export interface KeyStore {
  /**
   * Synchronous reads for the MAC hot path, from an in-memory snapshot: they
   * never wait on a disk or a database. Returned records must not be mutated.
   * A store that opens asynchronously throws KeyStoreNotReadyError until
   * `ready()` has resolved.
   */
  getKey(keyId: string): KeyRecord | undefined;
  listKeys(): KeyRecord[];
  getAlias(aliasName: string): AliasRecord | undefined;
  listAliases(): AliasRecord[];
  /**
   * Runs `mutate` against the latest state under the store's write lock and
   * persists the result durably before resolving. If `mutate` throws (or the
   * promise it returns rejects), nothing is written and the error propagates.
   * `mutate` may be async; the lock is held until it settles, so keep it short.
   * The transaction object is unusable once `mutate` has settled.
   */
  transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T>;
  /**
   * A counter that changes whenever the visible state changes: this
   * process's commits, and other processes' once caught up with (in the
   * background, or by refresh()). Caching by version is safe.
   */
  readonly version: number;
  /** Flushes and releases resources (locks, watchers). */
  close(): Promise<void>;
  /** Resolves once the store is open and its snapshot loaded; rejects with the error that prevented it. */
  ready?(): Promise<void>;
  /**
   * Brings the snapshot up to date with the durable store now (commits made
   * by other processes) and resolves whether it changed. A lookup that misses
   * calls this before answering "not found".
   */
  refresh?(): Promise<boolean>;
  /** How the store is doing (see KeyStoreHealth); a store without it is taken to be always ok. */
  health?(): KeyStoreHealth;
}
