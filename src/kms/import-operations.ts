/**
 * Imported key material: GetParametersForImport, ImportKeyMaterial,
 * DeleteImportedKeyMaterial, and the local copies of AWS KMS keys the fast
 * path answers for (importRemoteKey, linkRemoteKey, and the index from a
 * request's KeyId to the local copy). The wrapping and token primitives
 * live in ./import.ts.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { HmacKeySpec, ImportParameters, KeyRecord, Tag } from '../keystore/types.js';
import type { Caller } from './authorize.js';
import type { ClientContext } from './context.js';
import { kmsError } from './errors.js';
import { aliasArn, keyArn, newKeyId, parseKeyId, type ParsedKeyId } from './identifiers.js';
import {
  generateWrappingKey,
  IMPORT_MATERIAL_RANGE,
  IMPORT_PARAMETERS_TTL_MS,
  materialDigest,
  newImportToken,
  SUPPORTED_WRAPPING_ALGORITHMS,
  SUPPORTED_WRAPPING_KEY_SPECS,
  tokenIdOf,
  unwrapKeyMaterial,
} from './import.js';
import { HMAC_KEY_SPECS, keyMetadata, withChanges, type KeyMetadata } from './keys.js';
import { LIMITS } from './limits.js';
import { aliasTaken, placeAlias } from './multi-region.js';
import { checkKeyQuota, checkTagQuota, PerKeyRate } from './quotas.js';
import { checkAliasName, checkNotPendingDeletion, requireKeyId, validateTags } from './request-checks.js';
import {
  EXPIRATION_MODEL_ENUM,
  validationMessage,
  Violations,
  WRAPPING_ALGORITHM_ENUM,
  WRAPPING_KEY_SPEC_ENUM,
} from './validation.js';

export interface ImportKeyMaterialInput {
  KeyId: string | undefined;
  ImportToken: Uint8Array | undefined;
  EncryptedKeyMaterial: Uint8Array | undefined;
  ValidTo?: Date | number;
  ExpirationModel?: string;
  ImportType?: string;
  KeyMaterialDescription?: string;
  KeyMaterialId?: string;
}

export class ImportOperations {
  readonly #ctx: ClientContext;
  /** Remote key ID / ARN / alias (name and ARN) → local keyId; rebuilt when the store version changes. */
  #remoteIndex: Map<string, string> | undefined;
  #remoteIndexVersion = -1;
  /** GetParametersForImport's request quota, per key. */
  readonly #importRate: PerKeyRate;

  constructor(ctx: ClientContext) {
    this.#ctx = ctx;
    this.#importRate = new PerKeyRate(ctx.quotas.getParametersForImportPerSecond);
  }

  async getParametersForImport(
    input: {
      KeyId: string | undefined;
      WrappingAlgorithm: string | undefined;
      WrappingKeySpec: string | undefined;
    },
    caller: Caller,
  ) {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const alg = v.enumValue(
      'wrappingAlgorithm',
      input?.WrappingAlgorithm,
      WRAPPING_ALGORITHM_ENUM,
      `[${WRAPPING_ALGORITHM_ENUM.join(', ')}]`,
      true,
    );
    const spec = v.enumValue(
      'wrappingKeySpec',
      input?.WrappingKeySpec,
      WRAPPING_KEY_SPEC_ENUM,
      `[${WRAPPING_KEY_SPEC_ENUM.join(', ')}]`,
      true,
    );
    v.throwIfAny();
    const rec = this.#ctx.resolveRead(keyId!, false, caller, 'GetParametersForImport');
    checkImportable(rec);
    if (!SUPPORTED_WRAPPING_ALGORITHMS.has(alg!)) {
      throw kmsError(
        'UnsupportedOperationException',
        `WrappingAlgorithm ${alg} is not supported. Use RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1.`,
      );
    }
    if (SUPPORTED_WRAPPING_KEY_SPECS[spec!] === undefined) {
      throw kmsError(
        'UnsupportedOperationException',
        `WrappingKeySpec ${spec} is not supported. Use RSA_2048, RSA_3072 or RSA_4096.`,
      );
    }
    this.#importRate.take(rec.keyId, this.#ctx.clock());
    // A new token every time; the RSA key of the key's current parameters is reused while it has at least half
    // of its 24 hours left (an RSA-4096 key takes a second of CPU to make). A key that must be made is made before
    // the transaction, and the key re-checked inside it.
    for (;;) {
      const pair = reusable(rec.importParameters, alg!, spec!, this.#ctx.clock())
        ? undefined
        : await generateWrappingKey(spec!);
      const { token, tokenId } = newImportToken();
      try {
        const out = await this.#ctx.mutate((tx, now) => {
          const cur = this.#ctx.resolveTx(tx, rec.arn, false, caller, 'GetParametersForImport');
          checkImportable(cur);
          const old = reusable(cur.importParameters, alg!, spec!, now) ? cur.importParameters : undefined;
          if (old === undefined && pair === undefined) return undefined; // reusable a moment ago, not now: make one
          const expiresAt = old?.expiresAt ?? now + IMPORT_PARAMETERS_TTL_MS;
          tx.replaceKey(
            withChanges(cur, {
              importParameters: {
                tokenId,
                wrappingAlgorithm: alg!,
                wrappingKeySpec: spec!,
                privateKey: old?.privateKey ?? pair!.privateKey,
                expiresAt,
              },
            }),
          );
          const publicKey = old ? publicKeyOf(old.privateKey) : pair!.publicKey;
          return { KeyId: cur.arn, ImportToken: token, PublicKey: publicKey, ParametersValidTo: new Date(expiresAt) };
        });
        if (out) return out;
      } finally {
        pair?.privateKey.fill(0);
      }
    }
  }

  async importKeyMaterial(input: ImportKeyMaterialInput, caller: Caller): Promise<{ KeyId: string }> {
    const v = new Violations();
    const keyId = v.string('keyId', input?.KeyId, ...LIMITS.keyId, true);
    const token = v.blob('importToken', input?.ImportToken, ...LIMITS.importToken, true, false);
    const wrapped = v.blob(
      'encryptedKeyMaterial',
      input?.EncryptedKeyMaterial,
      ...LIMITS.encryptedKeyMaterial,
      true,
      false,
    );
    let model = v.enumValue(
      'expirationModel',
      input?.ExpirationModel,
      EXPIRATION_MODEL_ENUM,
      `[${EXPIRATION_MODEL_ENUM.join(', ')}]`,
      false,
    );
    v.throwIfAny();
    const validToRaw = input.ValidTo;
    let validTo: number | undefined;
    if (validToRaw !== undefined && validToRaw !== null) {
      if (validToRaw instanceof Date) validTo = validToRaw.getTime();
      else if (typeof validToRaw === 'number')
        validTo = validToRaw * 1000; // wire form: epoch seconds
      else throw kmsError('SerializationException', "Unexpected value type for member 'validTo'");
      if (!Number.isFinite(validTo))
        throw kmsError('SerializationException', "Unexpected value type for member 'validTo'");
    }
    model ??= validTo !== undefined ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE';
    if (model === 'KEY_MATERIAL_EXPIRES' && validTo === undefined)
      throw validationMessage('A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES');
    if (model === 'KEY_MATERIAL_DOES_NOT_EXPIRE' && validTo !== undefined)
      throw validationMessage('A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE');
    const arn = await this.#ctx.mutate((tx, now) => {
      const rec = this.#ctx.resolveTx(tx, keyId!, false, caller, 'ImportKeyMaterial');
      checkImportable(rec);
      if (validTo !== undefined && validTo <= now) throw validationMessage('The ValidTo date must be in the future');
      const params = rec.importParameters;
      if (!params || params.tokenId !== tokenIdOf(token!))
        throw kmsError('InvalidImportTokenException', 'The import token is not valid for this KMS key.');
      if (params.expiresAt <= now)
        throw kmsError(
          'ExpiredImportTokenException',
          'The import token has expired. Call GetParametersForImport to get a new one.',
        );
      const material = unwrapKeyMaterial(params.wrappingAlgorithm, params.privateKey, wrapped!);
      if (!material)
        throw kmsError(
          'InvalidCiphertextException',
          'The encrypted key material could not be decrypted with the wrapping key of this import token.',
        );
      try {
        checkMaterialLength(rec.keySpec, material);
        const digest = materialDigest(material);
        if (rec.importedMaterialDigest !== undefined && rec.importedMaterialDigest !== digest) {
          throw kmsError(
            'IncorrectKeyMaterialException',
            'The key material in the request is not the same key material that was previously imported into this KMS key.',
          );
        }
        tx.replaceKey(
          withChanges(rec, {
            keyMaterial: material,
            importedMaterialDigest: digest,
            expirationModel: model as KeyRecord['expirationModel'],
            validTo: model === 'KEY_MATERIAL_EXPIRES' ? validTo : undefined,
            keyState: rec.keyState === 'PendingImport' ? 'Enabled' : rec.keyState,
          }),
        );
      } finally {
        material.fill(0);
      }
      return rec.arn;
    });
    return { KeyId: arn };
  }

  async deleteImportedKeyMaterial(
    input: {
      KeyId: string | undefined;
      KeyMaterialId?: string;
    },
    caller: Caller,
  ): Promise<{ KeyId: string }> {
    const keyId = requireKeyId(input);
    return this.#ctx.mutate((tx) => {
      const rec = this.#ctx.resolveTx(tx, keyId, false, caller, 'DeleteImportedKeyMaterial');
      checkExternalOrigin(rec);
      tx.replaceKey(
        withChanges(rec, {
          keyMaterial: undefined,
          expirationModel: undefined,
          validTo: undefined,
          keyState: rec.keyState === 'PendingDeletion' ? 'PendingDeletion' : 'PendingImport',
        }),
      );
      return { KeyId: rec.arn };
    });
  }

  // -------------------------------------------------------------------------
  // Remote keys (fast path)

  async importRemoteKey(
    input: {
      RemoteArn: string;
      KeySpec: HmacKeySpec | string;
      KeyMaterial: Uint8Array;
      Description?: string;
      AliasName?: string;
      Tags?: Tag[];
    },
    caller: Caller,
  ): Promise<{ KeyMetadata: KeyMetadata }> {
    const v = new Violations();
    const remoteArn = v.string('remoteArn', input?.RemoteArn, ...LIMITS.keyId, true);
    const spec = v.enumValue(
      'keySpec',
      input?.KeySpec,
      HMAC_KEY_SPECS,
      '[HMAC_224, HMAC_256, HMAC_384, HMAC_512]',
      true,
    ) as HmacKeySpec | undefined;
    const material = v.blob('keyMaterial', input?.KeyMaterial, ...LIMITS.keyMaterial, true, true);
    const description = v.string('description', input?.Description, ...LIMITS.description, false);
    const tags = validateTags(v, input?.Tags);
    v.throwIfAny();
    const p = parseRemoteArn(remoteArn!);
    checkMaterialLength(spec!, material!);
    checkTagQuota(tags.length, this.#ctx.quotas);
    if (input.AliasName !== undefined) checkAliasName(input.AliasName);
    const id = newKeyId(p.keyId.startsWith('mrk-'));
    const now = this.#ctx.clock();
    const record: KeyRecord = {
      keyId: id,
      arn: keyArn(this.#ctx.scopeOf(caller), id),
      keySpec: spec!,
      keyUsage: 'GENERATE_VERIFY_MAC',
      keyState: 'Enabled',
      origin: 'EXTERNAL',
      description: description ?? '',
      multiRegion: p.keyId.startsWith('mrk-'),
      creationDate: now,
      keyMaterial: new Uint8Array(material!),
      importedMaterialDigest: materialDigest(material!),
      expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      tags,
      remoteArn: remoteArn!,
    };
    await this.#ctx.mutate((tx) => {
      const keys = tx.listKeys();
      checkKeyQuota(keys.length, this.#ctx.quotas);
      for (const k of keys) {
        if (k.remoteArn === remoteArn)
          throw kmsError('AlreadyExistsException', `A local copy of ${remoteArn} already exists: ${k.arn}`);
      }
      if (input.AliasName !== undefined) {
        const arn = aliasArn(this.#ctx.scopeOf(caller), input.AliasName);
        if (aliasTaken((a) => tx.getAlias(a), input.AliasName, arn))
          throw kmsError('AlreadyExistsException', `An alias with the name ${arn} already exists`);
        tx.insertKey(record);
        tx.insertAlias(
          placeAlias(tx, {
            aliasName: input.AliasName,
            aliasArn: arn,
            targetKeyId: id,
            creationDate: now,
            lastUpdatedDate: now,
          }),
        );
      } else tx.insertKey(record);
    });
    record.keyMaterial!.fill(0);
    return { KeyMetadata: keyMetadata({ ...record, keyMaterial: undefined }) };
  }

  async linkRemoteKey(
    input: {
      KeyId: string;
      RemoteArn: string | undefined;
    },
    caller: Caller,
  ): Promise<{ KeyId: string; RemoteArn: string | undefined }> {
    const keyId = requireKeyId(input);
    const remoteArn = input.RemoteArn;
    if (remoteArn !== undefined) parseRemoteArn(remoteArn);
    return this.#ctx.mutate((tx) => {
      // Linking changes what answers for the key: as much a key administration as importing its material.
      const rec = this.#ctx.resolveTx(tx, keyId, false, caller, 'ImportKeyMaterial');
      if (rec.origin !== 'EXTERNAL') {
        throw kmsError(
          'UnsupportedOperationException',
          `${rec.arn} origin is ${rec.origin}: only keys with imported material can share material with AWS KMS.`,
        );
      }
      tx.replaceKey(withChanges(rec, { remoteArn }));
      return { KeyId: rec.arn, RemoteArn: remoteArn };
    });
  }

  /** The local key holding a copy of the remote key a request's KeyId names (key ID, key ARN, alias name or ARN). */
  findRemote(keyId: string): { keyId: string; remoteArn: string } | undefined {
    if (typeof keyId !== 'string') return undefined;
    const store = this.#ctx.store;
    const version = store.version;
    if (this.#remoteIndex === undefined || this.#remoteIndexVersion !== version) {
      const idx = new Map<string, string>();
      for (const k of store.listKeys()) {
        if (!k.remoteArn) continue;
        idx.set(k.remoteArn, k.keyId);
        const p = parseKeyId(k.remoteArn);
        if (p.kind === 'keyArn') idx.set(p.keyId, k.keyId);
      }
      for (const a of store.listAliases()) {
        const k = store.getKey(a.targetKeyId);
        if (k?.remoteArn) {
          idx.set(a.aliasName, k.keyId);
          const rp = parseKeyId(k.remoteArn);
          if (rp.kind === 'keyArn')
            idx.set(`arn:${rp.partition}:kms:${rp.region}:${rp.account}:${a.aliasName}`, k.keyId);
        }
      }
      this.#remoteIndex = idx;
      this.#remoteIndexVersion = version;
    }
    const local = this.#remoteIndex.get(keyId);
    if (local === undefined) return undefined;
    const rec = store.getKey(local);
    return rec?.remoteArn ? { keyId: local, remoteArn: rec.remoteArn } : undefined;
  }
}

// ---------------------------------------------------------------------------

/** Whether import parameters may be handed out again (same wrapping, at least half their validity left). */
function reusable(
  p: ImportParameters | undefined,
  algorithm: string,
  spec: string,
  now: number,
): p is ImportParameters {
  return (
    p !== undefined &&
    p.wrappingAlgorithm === algorithm &&
    p.wrappingKeySpec === spec &&
    p.expiresAt - now >= IMPORT_PARAMETERS_TTL_MS / 2
  );
}

/** The DER SubjectPublicKeyInfo of a PKCS#8 RSA private key. */
function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  const der = Buffer.from(privateKey);
  try {
    const key = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
    return new Uint8Array(key.export({ type: 'spki', format: 'der' }));
  } finally {
    der.fill(0);
  }
}

/** Only EXTERNAL-origin keys have imported material to replace or delete. */
function checkExternalOrigin(rec: KeyRecord): void {
  if (rec.origin !== 'EXTERNAL')
    throw kmsError(
      'UnsupportedOperationException',
      `${rec.arn} origin is ${rec.origin} which is not valid for this operation.`,
    );
}

function checkImportable(rec: KeyRecord): void {
  checkExternalOrigin(rec);
  checkNotPendingDeletion(rec);
}

function checkMaterialLength(spec: HmacKeySpec, material: Uint8Array): void {
  const [min, max] = IMPORT_MATERIAL_RANGE[spec];
  if (material.byteLength < min || material.byteLength > max) {
    throw kmsError(
      'IncorrectKeyMaterialException',
      `The key material is invalid: ${spec} key material must be ${min} to ${max} bytes long.`,
    );
  }
}

/** A remote key is named by its key ARN: the fast path matches requests against its region, account and key ID. */
function parseRemoteArn(remoteArn: string): Extract<ParsedKeyId, { kind: 'keyArn' }> {
  const p = parseKeyId(remoteArn);
  if (p.kind !== 'keyArn')
    throw validationMessage(`RemoteArn must be a key ARN (arn:aws:kms:<region>:<account>:key/<key-id>)`);
  return p;
}
