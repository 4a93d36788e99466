/**
 * KmsHmacClient: the AWS KMS HMAC API (GenerateMac/VerifyMac and the key
 * management around them) with `@aws-sdk/client-kms`'s input and output
 * shapes, computed locally. Behaviour follows AWS KMS as its API reference,
 * the SDK's service model and recorded responses show it; the choices where
 * AWS is not documented are listed in docs/compatibility.md.
 *
 * This class is the public surface: options, store ownership, `send()` /
 * `execute()` dispatch and the client's lifetime. The operations live in one
 * module per concern, sharing one ClientContext (store, clock, scope,
 * key resolution):
 *   - kms/mac-operations.ts     GenerateMac/VerifyMac hot path, key slot cache, batches
 *   - kms/key-operations.ts     key management, aliases, deletion, tags, rotation
 *   - kms/import-operations.ts  imported material and local copies of AWS KMS keys
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { getBackend, type BackendChoice } from '../backend/index.js';
import type { Backend } from '../backend/types.js';
import { openKeyStore, type OpenKeyStoreOptions } from '../keystore/index.js';
import type { HmacKeySpec, KeyStore, KeyStoreHealth, Tag } from '../keystore/types.js';
import { callerFrom, type Caller } from '../kms/authorize.js';
import { ClientContext } from '../kms/context.js';
import { GrantOperations, type CreateGrantInput } from '../kms/grant-operations.js';
import { PolicyOperations } from '../kms/policy-operations.js';
import { kmsError } from '../kms/errors.js';
import { partitionOf } from '../kms/identifiers.js';
import { ImportOperations, type ImportKeyMaterialInput } from '../kms/import-operations.js';
import { KeyOperations, type CreateKeyInput } from '../kms/key-operations.js';
import { OPERATION_NAMES, OPERATIONS } from '../kms/operations.js';
import { resolveQuotas, type Quotas } from '../kms/quotas.js';
import { SPEC_ALGORITHM, type KeyMetadata } from '../kms/keys.js';
import {
  MacOperations,
  type GenerateMacBatchInput,
  type GenerateMacBatchOutput,
  type GenerateMacInput,
  type GenerateMacOutput,
  type VerifyMacBatchInput,
  type VerifyMacBatchOutput,
  type VerifyMacInput,
  type VerifyMacOutput,
} from '../kms/mac-operations.js';

export type { KeyMetadata } from '../kms/keys.js';
export type { CreateKeyInput } from '../kms/key-operations.js';
export type { CreateGrantInput, GrantListEntry } from '../kms/grant-operations.js';
export type { Quotas } from '../kms/quotas.js';
export type { ImportKeyMaterialInput } from '../kms/import-operations.js';
export type {
  GenerateMacBatchInput,
  GenerateMacBatchOutput,
  GenerateMacInput,
  GenerateMacOutput,
  VerifyMacBatchInput,
  VerifyMacBatchOutput,
  VerifyMacInput,
  VerifyMacOutput,
} from '../kms/mac-operations.js';

export interface KmsHmacClientOptions {
  /**
   * A file path (FileKeyStore, SQLite), a `postgres://` / `postgresql://` URL
   * (PostgresKeyStore: await `ready()`), a KeyStore instance, or omitted (in memory).
   */
  keyStore?: string | KeyStore;
  /** Options for a store opened from a path or URL (passphrase, lock timeout, polling, pool settings). */
  keyStoreOptions?: OpenKeyStoreOptions;
  /** Default `us-east-1`. */
  region?: string;
  /** Default `111122223333`: the account of keys created without a `principal`, and the `principal` default's. */
  accountId?: string;
  /**
   * The principal this client's calls are evaluated as (key policies,
   * grants, accounts): an IAM ARN such as
   * `arn:aws:iam::111122223333:user/shipper`. Default: the account's root
   * (`arn:aws:iam::<accountId>:root`), which the default key policy allows
   * everything. `forPrincipal()` gives another principal's view of the same store.
   */
  principal?: string;
  /** HMAC backend (name or instance); default: the package's automatic selection. */
  backend?: BackendChoice | Backend;
  /** Throw from the constructor instead of falling back to WebAssembly (also env KMS_HMAC_REQUIRE_NATIVE=1). */
  requireNative?: boolean;
  /** Epoch milliseconds; injectable for tests (deletion windows, token and material expiry). */
  clock?: () => number;
  /**
   * AWS's resource quotas, and GetParametersForImport's request rate, with
   * AWS's defaults: `{ keys: 100_000, aliasesPerKey: 50, tagsPerKey: 50,
   * getParametersForImportPerSecond: 0.25 }`. Past one, LimitExceededException
   * (the rate: ThrottlingException).
   */
  quotas?: Partial<Quotas>;
}

/** Internal: the option that makes the constructor build a forPrincipal() view. */
const VIEW_OF = Symbol('kms-hmac.viewOf');

/** Internal hook for the fast path (src/client/fast-path.ts). */
export const FAST_PATH = Symbol('kms-hmac.fastPath');

export interface FastPathHooks {
  /** The local key holding a copy of a remote (AWS KMS) key named by a request's KeyId. */
  findRemote(keyId: string): { keyId: string; remoteArn: string } | undefined;
  generate(input: GenerateMacInput, localKeyId: string, responseKeyId: string): GenerateMacOutput;
  verify(input: VerifyMacInput, localKeyId: string, responseKeyId: string): VerifyMacOutput;
  /** Whether the local copy can answer now (exists, Enabled). */
  usable(localKeyId: string): boolean;
  /** The one MAC algorithm of the local copy's key spec (what a DryRun probe for the remote key asks for). */
  macAlgorithm(localKeyId: string): string | undefined;
}

export const SUPPORTED_OPERATIONS: readonly string[] = OPERATION_NAMES;

export class KmsHmacClient {
  readonly region: string;
  /** The caller's account. */
  readonly accountId: string;
  /** The principal ARN this client's calls are evaluated as. */
  readonly principal: string;
  readonly #ctx: ClientContext;
  readonly #ownsStore: boolean;
  readonly #caller: Caller;
  readonly #mac: MacOperations;
  readonly #keys: KeyOperations;
  readonly #import: ImportOperations;
  readonly #policies: PolicyOperations;
  readonly #grants: GrantOperations;
  /** Set on a forPrincipal() view: the client whose store and caches it shares. */
  readonly #parent: KmsHmacClient | undefined;

  constructor(options: KmsHmacClientOptions = {}) {
    const view = (options as { [VIEW_OF]?: { parent: KmsHmacClient; caller: Caller } })[VIEW_OF];
    if (view !== undefined) {
      const p = view.parent;
      this.region = p.region;
      this.#caller = view.caller;
      this.accountId = view.caller.accountId;
      this.principal = view.caller.principalArn;
      this.#parent = p;
      this.#ownsStore = false;
      this.#ctx = p.#ctx;
      this.#mac = p.#mac;
      this.#keys = p.#keys;
      this.#import = p.#import;
      this.#policies = p.#policies;
      this.#grants = p.#grants;
      return;
    }
    this.#parent = undefined;
    this.region = options.region ?? 'us-east-1';
    const partition = partitionOf(this.region);
    this.#caller = callerFrom(options.principal, options.accountId, partition, '111122223333');
    this.accountId = this.#caller.accountId;
    this.principal = this.#caller.principalArn;
    const scope = { region: this.region, accountId: this.accountId, partition };
    this.#ownsStore = !(typeof options.keyStore === 'object' && options.keyStore !== null);
    // Resolved before the store opens, so a missing required addon leaves nothing open.
    const backend = getBackend({ backend: options.backend, requireNative: options.requireNative });
    const quotas = resolveQuotas(options.quotas);
    const store = openKeyStore(options.keyStore, options.keyStoreOptions);
    this.#ctx = new ClientContext(store, options.clock ?? Date.now, scope, backend, quotas);
    this.#mac = new MacOperations(this.#ctx);
    this.#keys = new KeyOperations(this.#ctx);
    this.#import = new ImportOperations(this.#ctx);
    this.#policies = new PolicyOperations(this.#ctx);
    this.#grants = new GrantOperations(this.#ctx);
  }

  /**
   * The same client (store, prepared keys, decision cache) as another
   * principal: `principal` an IAM ARN, or omitted with `accountId` for that
   * account's root. What `serve` uses for each credential's principal.
   * Closing a view closes nothing; close the client it came from.
   */
  forPrincipal(principal: string | { principal?: string; accountId?: string }): KmsHmacClient {
    const o = typeof principal === 'string' ? { principal } : (principal ?? {});
    const caller = callerFrom(o.principal, o.accountId, partitionOf(this.region), this.#ctx.scope.accountId);
    return new KmsHmacClient({ [VIEW_OF]: { parent: this.#parent ?? this, caller } } as KmsHmacClientOptions);
  }

  /** The store this client reads and writes. */
  get keyStore(): KeyStore {
    return this.#ctx.store;
  }

  /**
   * How the key store is doing: `ok`, `degraded` (the database is lost; MACs
   * come from the snapshot) or `tampered` (a background reload failed
   * authentication). Each change is also told once to
   * `keyStoreOptions.onHealthChange`, or emitted as a process warning.
   */
  keyStoreHealth(): KeyStoreHealth {
    const store = this.#ctx.store;
    return store.health?.() ?? { store: store.constructor.name, state: 'ok', reloadFailures: 0 };
  }

  /**
   * Resolves once the key store is open. Async methods wait for it by
   * themselves; the synchronous ones (generateMacSync, …) throw
   * KeyStoreNotReadyError before it. Only a PostgreSQL store takes a while.
   */
  ready(): Promise<void> {
    return this.#ctx.ready;
  }

  // -------------------------------------------------------------------------
  // GenerateMac / VerifyMac (kms/mac-operations.ts)

  generateMacSync(input: GenerateMacInput): GenerateMacOutput {
    return this.#mac.generateMacSync(input, this.#caller);
  }

  verifyMacSync(input: VerifyMacInput): VerifyMacOutput {
    return this.#mac.verifyMacSync(input, this.#caller);
  }

  generateMac(input: GenerateMacInput): Promise<GenerateMacOutput> {
    return this.#mac1(() => this.generateMacSync(input));
  }

  verifyMac(input: VerifyMacInput): Promise<VerifyMacOutput> {
    return this.#mac1(() => this.verifyMacSync(input));
  }

  /** One MAC as a Promise: straight from the snapshot, unless the store is not open yet or the key lookup needs the store. */
  #mac1<T>(op: () => T): Promise<T> {
    if (!this.#ctx.isReady) return this.#ctx.run(op);
    try {
      return Promise.resolve(op());
    } catch (err) {
      return this.#ctx.retryIfStale(op, err);
    }
  }

  generateMacBatch(input: GenerateMacBatchInput): GenerateMacBatchOutput {
    return this.#mac.generateMacBatch(input, this.#caller);
  }

  verifyMacBatch(input: VerifyMacBatchInput): VerifyMacBatchOutput {
    return this.#mac.verifyMacBatch(input, this.#caller);
  }

  /** Like generateMacBatch, computed on worker threads (all cores); inputs may be reused once it returns. */
  generateMacBatchAsync(input: GenerateMacBatchInput): Promise<GenerateMacBatchOutput> {
    return this.#ctx.run(() => this.#mac.generateMacBatchAsync(input, this.#caller));
  }

  verifyMacBatchAsync(input: VerifyMacBatchInput): Promise<VerifyMacBatchOutput> {
    return this.#ctx.run(() => this.#mac.verifyMacBatchAsync(input, this.#caller));
  }

  // -------------------------------------------------------------------------
  // Key management (kms/key-operations.ts)

  createKey(input: CreateKeyInput = {}): Promise<{ KeyMetadata: KeyMetadata }> {
    return this.#ctx.run(() => this.#keys.createKey(input, this.#caller));
  }

  describeKey(input: { KeyId: string | undefined; GrantTokens?: string[] }): Promise<{ KeyMetadata: KeyMetadata }> {
    return this.#ctx.run(() => this.#keys.describeKey(input, this.#caller));
  }

  listKeys(
    input: { Limit?: number; Marker?: string } = {},
  ): Promise<{ Keys: { KeyId: string; KeyArn: string }[]; Truncated: boolean; NextMarker?: string }> {
    return this.#ctx.run(() => this.#keys.listKeys(input, this.#caller));
  }

  createAlias(input: {
    AliasName: string | undefined;
    TargetKeyId: string | undefined;
  }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.createAlias(input, this.#caller));
  }

  updateAlias(input: {
    AliasName: string | undefined;
    TargetKeyId: string | undefined;
  }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.updateAlias(input, this.#caller));
  }

  deleteAlias(input: { AliasName: string | undefined }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.deleteAlias(input, this.#caller));
  }

  listAliases(input: { KeyId?: string; Limit?: number; Marker?: string } = {}) {
    return this.#ctx.run(() => this.#keys.listAliases(input, this.#caller));
  }

  enableKey(input: { KeyId: string | undefined }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.enableKey(input, this.#caller));
  }

  disableKey(input: { KeyId: string | undefined }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.disableKey(input, this.#caller));
  }

  scheduleKeyDeletion(input: { KeyId: string | undefined; PendingWindowInDays?: number }) {
    return this.#ctx.run(() => this.#keys.scheduleKeyDeletion(input, this.#caller));
  }

  cancelKeyDeletion(input: { KeyId: string | undefined }): Promise<{ KeyId: string }> {
    return this.#ctx.run(() => this.#keys.cancelKeyDeletion(input, this.#caller));
  }

  enableKeyRotation(input: { KeyId: string | undefined; RotationPeriodInDays?: number }): Promise<never> {
    return this.#ctx.run(() => this.#keys.enableKeyRotation(input, this.#caller));
  }

  disableKeyRotation(input: { KeyId: string | undefined }): Promise<never> {
    return this.#ctx.run(() => this.#keys.disableKeyRotation(input, this.#caller));
  }

  getKeyRotationStatus(input: { KeyId: string | undefined }): Promise<{ KeyId: string; KeyRotationEnabled: false }> {
    return this.#ctx.run(() => this.#keys.getKeyRotationStatus(input, this.#caller));
  }

  updateKeyDescription(input: {
    KeyId: string | undefined;
    Description: string | undefined;
  }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.updateKeyDescription(input, this.#caller));
  }

  tagResource(input: { KeyId: string | undefined; Tags: Tag[] | undefined }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.tagResource(input, this.#caller));
  }

  untagResource(input: { KeyId: string | undefined; TagKeys: string[] | undefined }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#keys.untagResource(input, this.#caller));
  }

  listResourceTags(input: { KeyId: string | undefined; Limit?: number; Marker?: string }) {
    return this.#ctx.run(() => this.#keys.listResourceTags(input, this.#caller));
  }

  // -------------------------------------------------------------------------
  // Key policies (kms/policy-operations.ts) and grants (kms/grant-operations.ts)

  getKeyPolicy(input: { KeyId: string | undefined; PolicyName?: string }) {
    return this.#ctx.run(() => this.#policies.getKeyPolicy(input, this.#caller));
  }

  putKeyPolicy(input: {
    KeyId: string | undefined;
    PolicyName?: string;
    Policy: string | undefined;
    BypassPolicyLockoutSafetyCheck?: boolean;
  }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#policies.putKeyPolicy(input, this.#caller));
  }

  listKeyPolicies(input: { KeyId: string | undefined; Limit?: number; Marker?: string }) {
    return this.#ctx.run(() => this.#policies.listKeyPolicies(input, this.#caller));
  }

  createGrant(input: CreateGrantInput): Promise<{ GrantToken: string; GrantId: string }> {
    return this.#ctx.run(() => this.#grants.createGrant(input, this.#caller));
  }

  listGrants(input: {
    KeyId: string | undefined;
    Limit?: number;
    Marker?: string;
    GrantId?: string;
    GranteePrincipal?: string;
  }) {
    return this.#ctx.run(() => this.#grants.listGrants(input, this.#caller));
  }

  listRetirableGrants(input: { RetiringPrincipal: string | undefined; Limit?: number; Marker?: string }) {
    return this.#ctx.run(() => this.#grants.listRetirableGrants(input, this.#caller));
  }

  retireGrant(input: {
    GrantToken?: string;
    KeyId?: string;
    GrantId?: string;
    DryRun?: boolean;
  }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#grants.retireGrant(input, this.#caller));
  }

  revokeGrant(input: {
    KeyId: string | undefined;
    GrantId: string | undefined;
    DryRun?: boolean;
  }): Promise<Record<string, never>> {
    return this.#ctx.run(() => this.#grants.revokeGrant(input, this.#caller));
  }

  // -------------------------------------------------------------------------
  // Imported material and remote keys (kms/import-operations.ts)

  getParametersForImport(input: {
    KeyId: string | undefined;
    WrappingAlgorithm: string | undefined;
    WrappingKeySpec: string | undefined;
  }) {
    return this.#ctx.run(() => this.#import.getParametersForImport(input, this.#caller));
  }

  importKeyMaterial(input: ImportKeyMaterialInput): Promise<{ KeyId: string }> {
    return this.#ctx.run(() => this.#import.importKeyMaterial(input, this.#caller));
  }

  deleteImportedKeyMaterial(input: { KeyId: string | undefined; KeyMaterialId?: string }): Promise<{ KeyId: string }> {
    return this.#ctx.run(() => this.#import.deleteImportedKeyMaterial(input, this.#caller));
  }

  /**
   * Registers a local copy of a key that exists in AWS KMS with the same
   * imported material, so `createFastPathClient` can answer GenerateMac /
   * VerifyMac for it locally. The local key is EXTERNAL-origin, Enabled,
   * with material that does not expire; its `remoteArn` is `RemoteArn`.
   */
  importRemoteKey(input: {
    RemoteArn: string;
    KeySpec: HmacKeySpec | string;
    KeyMaterial: Uint8Array;
    Description?: string;
    AliasName?: string;
    Tags?: Tag[];
  }): Promise<{ KeyMetadata: KeyMetadata }> {
    return this.#ctx.run(() => this.#import.importRemoteKey(input, this.#caller));
  }

  /** Links an existing local EXTERNAL key (material imported through ImportKeyMaterial) to a key in AWS KMS. */
  linkRemoteKey(input: {
    KeyId: string;
    RemoteArn: string | undefined;
  }): Promise<{ KeyId: string; RemoteArn: string | undefined }> {
    return this.#ctx.run(() => this.#import.linkRemoteKey(input, this.#caller));
  }

  get [FAST_PATH](): FastPathHooks {
    return {
      findRemote: (keyId) => this.#import.findRemote(keyId),
      generate: (input, localKeyId, responseKeyId) =>
        this.#mac.generateMacFull(input, this.#caller, { keyId: localKeyId, responseKeyId }),
      verify: (input, localKeyId, responseKeyId) =>
        this.#mac.verifyMacFull(input, this.#caller, { keyId: localKeyId, responseKeyId }),
      usable: (localKeyId) => {
        if (!this.#ctx.isReady) return false;
        const rec = this.#ctx.readKey(localKeyId);
        return rec !== undefined && rec.keyState === 'Enabled' && rec.keyMaterial !== undefined;
      },
      macAlgorithm: (localKeyId) => {
        const spec = this.#ctx.readKey(localKeyId)?.keySpec;
        return spec === undefined ? undefined : SPEC_ALGORITHM[spec];
      },
    };
  }

  // -------------------------------------------------------------------------
  // SDK drop-in

  /**
   * Runs an `@aws-sdk/client-kms` command object (GenerateMacCommand,
   * CreateKeyCommand, …) and resolves to what the real client resolves to,
   * `$metadata` included.
   */
  async send(
    command: { input?: unknown; constructor: { name: string } },
    _options?: unknown,
  ): Promise<Record<string, unknown>> {
    const name = command?.constructor?.name ?? '';
    const op = name.endsWith('Command') ? name.slice(0, -'Command'.length) : name;
    const out = await this.execute(op, command?.input ?? {});
    return { ...out, $metadata: { httpStatusCode: 200, requestId: randomUUID(), attempts: 1, totalRetryDelay: 0 } };
  }

  /** Runs a KMS operation by its PascalCase name (as in `X-Amz-Target: TrentService.<Operation>`). */
  async execute(operation: string, input: unknown): Promise<Record<string, unknown>> {
    const method = OPERATIONS.get(operation)?.method;
    if (method === undefined) {
      throw kmsError(
        'UnsupportedOperationException',
        `${operation || 'This operation'} is not supported by kms-hmac, which implements the KMS HMAC operations and the key management around them.`,
      );
    }
    const fn = (this as unknown as Record<string, (i: unknown) => Promise<Record<string, unknown>>>)[method]!;
    return fn.call(this, input ?? {});
  }

  /** SDK compatibility: KMSClient#destroy(). Releases keys; a path-opened store is closed in the background. */
  destroy(): void {
    void this.close();
  }

  /** Wipes prepared keys and closes the key store if this client opened it. */
  async close(): Promise<void> {
    if (this.#parent !== undefined || this.#ctx.closed) return;
    await this.#ctx.ready.catch(() => {});
    await this.#ctx.sweep;
    this.#ctx.closed = true;
    this.#mac.close();
    if (this.#ownsStore) await this.#ctx.store.close();
  }

  [inspect.custom](): string {
    const principal = this.#isRoot() ? '' : `, principal: '${this.principal}'`;
    return `KmsHmacClient { region: '${this.region}', accountId: '${this.accountId}'${principal} }`;
  }

  toJSON(): object {
    return { region: this.region, accountId: this.accountId, ...(this.#isRoot() ? {} : { principal: this.principal }) };
  }

  #isRoot(): boolean {
    return this.principal.endsWith(':root');
  }
}
