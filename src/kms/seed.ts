/**
 * Seeded keys (`serve --seed FILE`, `startServer({ seed })`): keys with fixed
 * ids and material, and aliases, created when the store starts if they are
 * absent, never overwritten. CI pipelines and test fixtures get keys that
 * exist from the first request, with MACs known in advance.
 *
 * Two formats, told apart by their top-level keys; the file is YAML (JSON is
 * YAML too):
 *
 * - kms-hmac's own (`keys:`):
 *
 *     keys:
 *       - keyId: 0b4ee3b4-8f5e-4d3a-9d8c-6f1b2a3c4d5e   # a UUID, or mrk- + 32 hex digits
 *         keySpec: HMAC_256
 *         materialHex: 6b6d732d686d61632d...              # or materialBase64
 *         origin: AWS_KMS                                 # default; EXTERNAL: imported material
 *         description: logs                               # optional
 *         tags: { team: logs }                            # optional
 *         aliases: [alias/logs]                           # optional
 *     aliases:                                            # optional: aliases of any key
 *       - { aliasName: alias/other, targetKeyId: 0b4ee3b4-… }
 *
 *   Material is as CreateKey would make it (exactly the spec's length) for
 *   AWS_KMS, as ImportKeyMaterial takes it for EXTERNAL (HMAC_256: 32–64
 *   bytes); an EXTERNAL key without material is created PendingImport.
 *
 * - local-kms's `seed.yaml` (nsmithuk/local-kms): `Keys.Symmetric.Hmac`
 *   entries (`Metadata: {KeyId, KeySpec, Description, Origin, KeyUsage}`,
 *   `BackingKeys: [hex]`, `Aliases: [{AliasName, TargetKeyId}]`), and its
 *   `Version: 2` form (`Keys: [{KeyId, Metadata, Material: {BackingKeys}}]`).
 *   Its AES, RSA and ECC keys are skipped with a warning naming them (this
 *   endpoint holds HMAC keys only), and so are aliases of skipped keys. More
 *   than one backing key (local-kms's rotation) is refused: AWS does not
 *   rotate HMAC keys, and keeping only one would change the MACs.
 *
 * Applying a seed is one transaction: a key that exists with other material
 * (or another key spec or origin) is a SeedConflictError naming the key, and
 * nothing at all is written. A key or alias that exists as the seed says is
 * left alone; so is an alias that now points at another key (UpdateAlias is
 * how aliases rotate), with a warning. Quotas do not apply: the operator
 * seeds. Material never appears in an error, a warning or a log: parse
 * errors give a line and column, not the text around them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { timingSafeEqual } from 'node:crypto';
import type { HmacKeySpec, KeyRecord, KeyStore, KeyStoreTransaction, Tag } from '../keystore/types.js';
import { aliasArn, aliasNameProblem, isKeyIdForm, keyArn, parseKeyId, type Scope } from './identifiers.js';
import { GENERATED_MATERIAL_LENGTH, IMPORT_MATERIAL_RANGE, materialDigest } from './import.js';
import { HMAC_KEY_SPECS } from './keys.js';
import { LIMITS } from './limits.js';

export class SeedError extends Error {
  override name = 'SeedError';
}

/** A seeded key exists in the store as another key (material, key spec or origin); nothing was written. */
export class SeedConflictError extends SeedError {
  override name = 'SeedConflictError';
  constructor(
    readonly keyId: string,
    what: string,
  ) {
    super(`seeded key ${keyId} conflicts with the key of that id in the store (${what}); nothing was seeded`);
  }
}

export interface SeedKey {
  keyId: string;
  keySpec: HmacKeySpec;
  origin: 'AWS_KMS' | 'EXTERNAL';
  /** Absent: an EXTERNAL key awaiting import. Wiped by wipeSeed. */
  material?: Uint8Array;
  description: string;
  tags: Tag[];
}

export interface SeedAlias {
  aliasName: string;
  /** A key id or key ARN of a seeded key or one already in the store. */
  targetKeyId: string;
}

export interface Seed {
  format: 'kms-hmac' | 'local-kms';
  keys: SeedKey[];
  aliases: SeedAlias[];
  /** What the file holds that this endpoint does not (local-kms's non-HMAC keys): one line each, for a warning. */
  skipped: string[];
}

export interface SeedResult {
  keysCreated: number;
  keysPresent: number;
  aliasesCreated: number;
  aliasesPresent: number;
  /** Things left as they are that differ from the seed (an alias that points elsewhere), for a warning. */
  notes: string[];
}

type Doc = Record<string, unknown>;

const isObject = (v: unknown): v is Doc => typeof v === 'object' && v !== null && !Array.isArray(v);

function list(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SeedError(`${where} must be a list`);
  return v;
}

function str(v: unknown, where: string, required: true): string;
function str(v: unknown, where: string, required: false): string | undefined;
function str(v: unknown, where: string, required: boolean): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw new SeedError(`${where} is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new SeedError(`${where} must be a string`);
  return v;
}

/** Parses YAML (or JSON) without ever quoting the text: a message with the lines around an error could show material. */
function parseYaml(text: string, source: string): unknown {
  const YAML = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    // The code and where, never the message: some quote the token they stopped at.
    const before = text.slice(0, err.pos[0]);
    const line = before.split('\n').length;
    const col = before.length - before.lastIndexOf('\n');
    throw new SeedError(`${source}: not valid YAML or JSON (${err.code} at line ${line}, column ${col})`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

/** Reads and checks a seed file (see the module comment); throws SeedError saying what is wrong and where. */
export function readSeedFile(path: string): Seed {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SeedError(`cannot read the seed file ${path}: ${(err as Error).message}`);
  }
  return parseSeed(text, path);
}

export function parseSeed(text: string, source = 'seed'): Seed {
  const doc = parseYaml(text, source);
  if (!isObject(doc))
    throw new SeedError(`${source}: a seed is a mapping with 'keys' (kms-hmac) or 'Keys' (local-kms)`);
  const seed = 'Keys' in doc ? fromLocalKms(doc, source) : fromOwn(doc, source);
  checkSeed(seed, source);
  return seed;
}

function material(hex: unknown, base64: unknown, where: string): Uint8Array | undefined {
  if (hex !== undefined && base64 !== undefined)
    throw new SeedError(`${where}: give materialHex or materialBase64, not both`);
  if (hex !== undefined) {
    const h = str(hex, `${where}.materialHex`, true);
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(h)) throw new SeedError(`${where}.materialHex is not hex`);
    return new Uint8Array(Buffer.from(h, 'hex'));
  }
  if (base64 !== undefined) {
    const b = str(base64, `${where}.materialBase64`, true);
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b) || b.length === 0)
      throw new SeedError(`${where}.materialBase64 is not base64`);
    return new Uint8Array(Buffer.from(b, 'base64'));
  }
  return undefined;
}

function keySpecOf(v: unknown, where: string): HmacKeySpec {
  const spec = str(v, where, true);
  if (!HMAC_KEY_SPECS.has(spec)) throw new SeedError(`${where} must be HMAC_224, HMAC_256, HMAC_384 or HMAC_512`);
  return spec as HmacKeySpec;
}

function originOf(v: unknown, where: string): SeedKey['origin'] {
  const origin = str(v, where, false) ?? 'AWS_KMS';
  if (origin !== 'AWS_KMS' && origin !== 'EXTERNAL') throw new SeedError(`${where} must be AWS_KMS or EXTERNAL`);
  return origin;
}

function fromOwn(doc: Doc, source: string): Seed {
  for (const k of Object.keys(doc))
    if (k !== 'keys' && k !== 'aliases')
      throw new SeedError(`${source}: unknown top-level entry '${k}' (keys, aliases)`);
  const seed: Seed = { format: 'kms-hmac', keys: [], aliases: [], skipped: [] };
  list(doc.keys, 'keys').forEach((entry, i) => {
    const where = `keys[${i}]`;
    if (!isObject(entry)) throw new SeedError(`${where} must be a mapping`);
    const known = ['keyId', 'keySpec', 'materialHex', 'materialBase64', 'origin', 'description', 'tags', 'aliases'];
    for (const k of Object.keys(entry))
      if (!known.includes(k)) throw new SeedError(`${where}: unknown entry '${k}' (${known.join(', ')})`);
    const keyId = str(entry.keyId, `${where}.keyId`, true);
    const tags = entry.tags ?? {};
    if (!isObject(tags)) throw new SeedError(`${where}.tags must be a mapping of tag keys to values`);
    seed.keys.push({
      keyId,
      keySpec: keySpecOf(entry.keySpec, `${where}.keySpec`),
      origin: originOf(entry.origin, `${where}.origin`),
      ...optionalMaterial(material(entry.materialHex, entry.materialBase64, where)),
      description: str(entry.description, `${where}.description`, false) ?? '',
      tags: Object.entries(tags).map(([TagKey, v]) => ({ TagKey, TagValue: str(v, `${where}.tags.${TagKey}`, true) })),
    });
    list(entry.aliases, `${where}.aliases`).forEach((a, j) => {
      seed.aliases.push({ aliasName: str(a, `${where}.aliases[${j}]`, true), targetKeyId: keyId });
    });
  });
  list(doc.aliases, 'aliases').forEach((a, i) => {
    if (!isObject(a)) throw new SeedError(`aliases[${i}] must be a mapping with aliasName and targetKeyId`);
    seed.aliases.push({
      aliasName: str(a.aliasName, `aliases[${i}].aliasName`, true),
      targetKeyId: str(a.targetKeyId, `aliases[${i}].targetKeyId`, true),
    });
  });
  return seed;
}

function optionalMaterial(m: Uint8Array | undefined): { material?: Uint8Array } {
  return m === undefined ? {} : { material: m };
}

/** local-kms's HMAC key: `Metadata` plus `BackingKeys` (v1) or `Material.BackingKeys` (v2). */
function localKmsKey(metadata: unknown, backingKeys: unknown, where: string): SeedKey {
  if (!isObject(metadata)) throw new SeedError(`${where}.Metadata must be a mapping`);
  const keyId = str(metadata.KeyId, `${where}.Metadata.KeyId`, true);
  const usage = str(metadata.KeyUsage, `${where}.Metadata.KeyUsage`, false);
  if (usage !== undefined && usage !== 'GENERATE_VERIFY_MAC')
    throw new SeedError(`${where}.Metadata.KeyUsage of an HMAC key must be GENERATE_VERIFY_MAC`);
  const keys = list(backingKeys, `${where}.BackingKeys`);
  if (keys.length > 1)
    throw new SeedError(
      `${where} (key ${keyId}) has ${keys.length} BackingKeys: an HMAC key has one (AWS does not rotate HMAC keys)`,
    );
  const origin = originOf(metadata.Origin, `${where}.Metadata.Origin`);
  const m = keys.length === 1 ? material(keys[0], undefined, `${where}.BackingKeys[0]`) : undefined;
  // local-kms's own rule: only an EXTERNAL key may come without material (it is then PendingImport).
  if (m === undefined && origin !== 'EXTERNAL')
    throw new SeedError(`${where} (key ${keyId}) needs one BackingKeys entry`);
  return {
    keyId,
    keySpec: keySpecOf(metadata.KeySpec, `${where}.Metadata.KeySpec`),
    origin,
    ...optionalMaterial(m),
    description: str(metadata.Description, `${where}.Metadata.Description`, false) ?? '',
    tags: [],
  };
}

function fromLocalKms(doc: Doc, source: string): Seed {
  const seed: Seed = { format: 'local-kms', keys: [], aliases: [], skipped: [] };
  const skip = (what: string, id: unknown) =>
    seed.skipped.push(`${what} ${typeof id === 'string' ? id : '(no KeyId)'}`);
  if (doc.Version === 2) {
    list(doc.Keys, 'Keys').forEach((entry, i) => {
      const where = `Keys[${i}]`;
      if (!isObject(entry)) throw new SeedError(`${where} must be a mapping`);
      const metadata = isObject(entry.Metadata) ? entry.Metadata : {};
      const spec = metadata.KeySpec;
      if (typeof spec !== 'string' || !spec.startsWith('HMAC_')) {
        skip(`a ${String(spec ?? 'SYMMETRIC_DEFAULT')} key`, entry.KeyId);
        return;
      }
      const material = isObject(entry.Material) ? entry.Material.BackingKeys : undefined;
      seed.keys.push(localKmsKey({ ...metadata, KeyId: entry.KeyId }, material, where));
    });
  } else if (doc.Version !== undefined) {
    throw new SeedError(`${source}: local-kms seed Version ${String(doc.Version)} is not known (1 or 2)`);
  } else if (Array.isArray(doc.Keys)) {
    // local-kms's legacy format: a list of AES keys.
    for (const k of doc.Keys) skip('an AES key', isObject(k) && isObject(k.Metadata) ? k.Metadata.KeyId : undefined);
  } else {
    const keys = isObject(doc.Keys) ? doc.Keys : {};
    const sym = isObject(keys.Symmetric) ? keys.Symmetric : {};
    const asym = isObject(keys.Asymmetric) ? keys.Asymmetric : {};
    list(sym.Hmac, 'Keys.Symmetric.Hmac').forEach((entry, i) => {
      const where = `Keys.Symmetric.Hmac[${i}]`;
      if (!isObject(entry)) throw new SeedError(`${where} must be a mapping`);
      seed.keys.push(localKmsKey(entry.Metadata, entry.BackingKeys, where));
    });
    for (const [what, entries] of [
      ['an AES key', sym.Aes],
      ['an RSA key', asym.Rsa],
      ['an ECC key', asym.Ecc],
    ] as const)
      for (const k of list(entries, what))
        skip(what, isObject(k) && isObject(k.Metadata) ? k.Metadata.KeyId : undefined);
  }
  const seeded = new Set(seed.keys.map((k) => k.keyId));
  const skippedIds = new Set(seed.skipped.map((s) => s.split(' ').at(-1)));
  list(doc.Aliases, 'Aliases').forEach((a, i) => {
    if (!isObject(a)) throw new SeedError(`Aliases[${i}] must be a mapping with AliasName and TargetKeyId`);
    const name = str(a.AliasName, `Aliases[${i}].AliasName`, true);
    const target = str(a.TargetKeyId, `Aliases[${i}].TargetKeyId`, true);
    const targetId = keyIdOf(target);
    if (targetId !== undefined && skippedIds.has(targetId) && !seeded.has(targetId)) {
      seed.skipped.push(`alias ${name} (of the skipped key ${targetId})`);
      return;
    }
    // local-kms accepts the name with or without its prefix.
    seed.aliases.push({ aliasName: name.startsWith('alias/') ? name : `alias/${name}`, targetKeyId: target });
  });
  return seed;
}

/** The key id a TargetKeyId names (a key id or key ARN); undefined for anything else. */
function keyIdOf(target: string): string | undefined {
  const p = parseKeyId(target);
  return p.kind === 'keyId' || p.kind === 'keyArn' ? p.keyId : undefined;
}

function checkSeed(seed: Seed, source: string): void {
  const ids = new Set<string>();
  for (const k of seed.keys) {
    const where = `${source}: key ${k.keyId}`;
    if (!isKeyIdForm(k.keyId))
      throw new SeedError(`${source}: key id '${k.keyId}' is not a UUID or mrk- + 32 hex digits`);
    if (ids.has(k.keyId)) throw new SeedError(`${where} is given twice`);
    ids.add(k.keyId);
    if (k.material !== undefined) {
      const n = k.material.length;
      if (k.origin === 'AWS_KMS' && n !== GENERATED_MATERIAL_LENGTH[k.keySpec])
        throw new SeedError(
          `${where}: ${k.keySpec} material of an AWS_KMS key has ${GENERATED_MATERIAL_LENGTH[k.keySpec]} bytes, not ${n} (origin EXTERNAL takes ${IMPORT_MATERIAL_RANGE[k.keySpec].join('–')})`,
        );
      const [min, max] = IMPORT_MATERIAL_RANGE[k.keySpec];
      if (k.origin === 'EXTERNAL' && (n < min || n > max))
        throw new SeedError(`${where}: imported ${k.keySpec} material has ${min}–${max} bytes, not ${n}`);
    } else if (k.origin !== 'EXTERNAL') {
      throw new SeedError(`${where} has no material (only an EXTERNAL key may wait for its import)`);
    }
    if (k.description.length > LIMITS.description[1])
      throw new SeedError(`${where}: the description has more than ${LIMITS.description[1]} characters`);
    for (const t of k.tags) {
      if (t.TagKey.length < LIMITS.tagKey[0] || t.TagKey.length > LIMITS.tagKey[1] || t.TagKey.startsWith('aws:'))
        throw new SeedError(`${where}: tag key '${t.TagKey}' must have 1–128 characters and not begin with aws:`);
      if (t.TagValue.length > LIMITS.tagValue[1])
        throw new SeedError(`${where}: the value of tag ${t.TagKey} is too long`);
    }
  }
  const names = new Set<string>();
  for (const a of seed.aliases) {
    const problem = aliasNameProblem(a.aliasName);
    if (problem !== undefined || a.aliasName.length > LIMITS.aliasName[1])
      throw new SeedError(
        `${source}: alias name '${a.aliasName}' is not valid (${problem === 'reserved' ? 'alias/aws/ is reserved' : 'alias/ followed by letters, digits, /, _ or -'})`,
      );
    if (names.has(a.aliasName)) throw new SeedError(`${source}: alias ${a.aliasName} is given twice`);
    names.add(a.aliasName);
    if (keyIdOf(a.targetKeyId) === undefined)
      throw new SeedError(`${source}: alias ${a.aliasName} targets '${a.targetKeyId}': give a key id or key ARN`);
  }
}

/** Why `existing` is not the key `k` describes, or undefined when it is (material compared in constant time). */
function conflict(existing: KeyRecord, k: SeedKey): string | undefined {
  if (existing.keySpec !== k.keySpec) return `key spec ${existing.keySpec}, not ${k.keySpec}`;
  if (existing.origin !== k.origin) return `origin ${existing.origin}, not ${k.origin}`;
  if (k.material === undefined) return undefined; // seeded as awaiting import: whatever was imported since stands
  const mine = existing.keyMaterial;
  if (mine !== undefined) {
    const same = mine.length === k.material.length && timingSafeEqual(mine, k.material);
    return same ? undefined : 'other key material';
  }
  if (existing.importedMaterialDigest !== undefined)
    return existing.importedMaterialDigest === materialDigest(k.material) ? undefined : 'other key material';
  return undefined; // never imported: the seed does not import it either (never overwritten)
}

/**
 * Creates the seed's absent keys and aliases in one transaction of `store`
 * (see the module comment). Throws SeedConflictError or SeedError, with
 * nothing written, when the seed contradicts the store.
 */
export async function applySeed(
  store: KeyStore,
  scope: Scope,
  seed: Seed,
  now: number = Date.now(),
): Promise<SeedResult> {
  const inserted: KeyRecord[] = [];
  try {
    return await store.transact((tx: KeyStoreTransaction) => seedIn(tx, scope, seed, now, inserted));
  } finally {
    for (const r of inserted) r.keyMaterial?.fill(0); // the store keeps its own copy
  }
}

function seedIn(tx: KeyStoreTransaction, scope: Scope, seed: Seed, now: number, inserted: KeyRecord[]): SeedResult {
  const result: SeedResult = { keysCreated: 0, keysPresent: 0, aliasesCreated: 0, aliasesPresent: 0, notes: [] };
  for (const k of seed.keys) {
    const existing = tx.getKey(k.keyId);
    if (existing !== undefined) {
      const why = conflict(existing, k);
      if (why !== undefined) throw new SeedConflictError(k.keyId, why);
      result.keysPresent++;
      continue;
    }
    const external = k.origin === 'EXTERNAL';
    const record: KeyRecord = {
      keyId: k.keyId,
      arn: keyArn(scope, k.keyId),
      keySpec: k.keySpec,
      keyUsage: 'GENERATE_VERIFY_MAC',
      keyState: k.material === undefined ? 'PendingImport' : 'Enabled',
      origin: k.origin,
      description: k.description,
      multiRegion: k.keyId.startsWith('mrk-'),
      creationDate: now,
      tags: k.tags.map((t) => ({ ...t })),
      ...(k.material === undefined ? {} : { keyMaterial: new Uint8Array(k.material) }),
      ...(external && k.material !== undefined
        ? {
            importedMaterialDigest: materialDigest(k.material),
            expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' as const,
          }
        : {}),
    };
    inserted.push(record);
    tx.insertKey(record);
    result.keysCreated++;
  }
  for (const a of seed.aliases) {
    const targetKeyId = keyIdOf(a.targetKeyId)!;
    const existing = tx.getAlias(a.aliasName);
    if (existing !== undefined) {
      result.aliasesPresent++;
      if (existing.targetKeyId !== targetKeyId)
        result.notes.push(`alias ${a.aliasName} points at ${existing.targetKeyId}, not ${targetKeyId}: left as it is`);
      continue;
    }
    const target = tx.getKey(targetKeyId);
    if (target === undefined)
      throw new SeedError(
        `seeded alias ${a.aliasName} targets key ${targetKeyId}, which is neither seeded nor in the store; nothing was seeded`,
      );
    if (target.keyState === 'PendingDeletion')
      throw new SeedError(
        `seeded alias ${a.aliasName} targets key ${targetKeyId}, which is pending deletion; nothing was seeded`,
      );
    tx.insertAlias({
      aliasName: a.aliasName,
      aliasArn: aliasArn(scope, a.aliasName),
      targetKeyId,
      creationDate: now,
      lastUpdatedDate: now,
    });
    result.aliasesCreated++;
  }
  return result;
}

/** Wipes the seed's key material (once applied). */
export function wipeSeed(seed: Seed): void {
  for (const k of seed.keys) k.material?.fill(0);
}

/** One line saying what a seed did, for the log: counts and names, never material. */
export function seedSummary(source: string, r: SeedResult): string {
  return (
    `seed ${source}: ${r.keysCreated} key${r.keysCreated === 1 ? '' : 's'} created, ${r.keysPresent} already present; ` +
    `${r.aliasesCreated} alias${r.aliasesCreated === 1 ? '' : 'es'} created, ${r.aliasesPresent} already present`
  );
}
