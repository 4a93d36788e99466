/**
 * Seeded keys (`--seed`, src/kms/seed.ts): kms-hmac's format and local-kms's
 * seed.yaml (v1 `Keys.Symmetric.Hmac`, and `Version: 2`), created at start-up
 * when absent and never overwritten. Seeding twice changes nothing; a
 * conflicting seed is an error naming the key and leaves the store as it
 * was; material never shows in an error, a warning or a log.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore, MemoryKeyStore } from '../src/keystore/index.js';
import { applySeed, parseSeed, SeedConflictError, SeedError } from '../src/kms/seed.js';
import { startServer } from '../src/server/index.js';
import { builtServeEntry, CRED, signedCall, startServe, stopServe } from './server-helpers.js';
import { track } from './support/process-group.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-seed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ID1 = '0b4ee3b4-8f5e-4d3a-9d8c-6f1b2a3c4d5e';
const ID2 = '1c5ff4c5-9a6f-4e4b-8e9d-7a2c3b4d5e6f';
const M1 = 'a1'.repeat(32); // HMAC_256 material
const M2 = 'b2'.repeat(48); // HMAC_384
const SCOPE = { region: 'us-east-1', accountId: '111122223333', partition: 'aws' };

const OWN = `
keys:
  - keyId: ${ID1}
    keySpec: HMAC_256
    materialHex: ${M1}
    description: logs
    tags: { team: logs, env: ci }
    aliases: [alias/logs, alias/logs-2]
  - keyId: ${ID2}
    keySpec: HMAC_384
    materialBase64: ${Buffer.from(M2, 'hex').toString('base64')}
    origin: EXTERNAL
aliases:
  - { aliasName: alias/other, targetKeyId: ${ID2} }
`;

const LOCAL_KMS_V1 = `
Keys:
  Symmetric:
    Aes:
      - Metadata:
          KeyId: bc436485-5092-42b8-92a3-0aa8b93536dc
        BackingKeys:
          - 5cdaead27fe7da2de47945d73cd6d79e36494e73802f3cd3869f1d2cb0b5d7a9
    Hmac:
      - Metadata:
          KeyId: ${ID1}
          KeySpec: HMAC_256
          KeyUsage: GENERATE_VERIFY_MAC
          Description: an HMAC key from local-kms
        BackingKeys:
          - ${M1}
      - Metadata:
          KeyId: ${ID2}
          KeySpec: HMAC_384
          Origin: EXTERNAL
Aliases:
  - AliasName: alias/hmac
    TargetKeyId: ${ID1}
  - AliasName: alias/aes
    TargetKeyId: bc436485-5092-42b8-92a3-0aa8b93536dc
`;

const LOCAL_KMS_V2 = `
Version: 2
Keys:
  - KeyId: ${ID1}
    Metadata:
      KeySpec: HMAC_256
      KeyUsage: GENERATE_VERIFY_MAC
    Material:
      BackingKeys: [${M1}]
  - KeyId: 800d5768-3fd7-4edd-a4b8-4c81c3e4c147
    Metadata:
      KeySpec: ECC_NIST_P256
      KeyUsage: SIGN_VERIFY
Aliases:
  - AliasName: hmac
    TargetKeyId: ${ID1}
`;

const macOf = (hex: string, alg: string, msg: string) =>
  createHmac(alg, Buffer.from(hex, 'hex')).update(msg).digest('base64');

describe('seed formats', () => {
  it("kms-hmac's own: ids, hex or base64 material, origin, description, tags, aliases", () => {
    const s = parseSeed(OWN, 'own.yaml');
    expect(s.format).toBe('kms-hmac');
    expect(s.keys.map((k) => [k.keyId, k.keySpec, k.origin, Buffer.from(k.material!).toString('hex')])).toEqual([
      [ID1, 'HMAC_256', 'AWS_KMS', M1],
      [ID2, 'HMAC_384', 'EXTERNAL', M2],
    ]);
    expect(s.keys[0]!.tags).toEqual([
      { TagKey: 'team', TagValue: 'logs' },
      { TagKey: 'env', TagValue: 'ci' },
    ]);
    expect(s.aliases).toEqual([
      { aliasName: 'alias/logs', targetKeyId: ID1 },
      { aliasName: 'alias/logs-2', targetKeyId: ID1 },
      { aliasName: 'alias/other', targetKeyId: ID2 },
    ]);
    // JSON is YAML too.
    const json = parseSeed(JSON.stringify({ keys: [{ keyId: ID1, keySpec: 'HMAC_256', materialHex: M1 }] }));
    expect(json.keys).toHaveLength(1);
  });

  it("local-kms's seed.yaml: Keys.Symmetric.Hmac and Version 2; AES/ECC keys and their aliases skipped, named", () => {
    const v1 = parseSeed(LOCAL_KMS_V1, 'seed.yaml');
    expect(v1.format).toBe('local-kms');
    expect(
      v1.keys.map((k) => [k.keyId, k.keySpec, k.origin, k.material && Buffer.from(k.material).toString('hex')]),
    ).toEqual([
      [ID1, 'HMAC_256', 'AWS_KMS', M1],
      [ID2, 'HMAC_384', 'EXTERNAL', undefined], // EXTERNAL without BackingKeys: PendingImport
    ]);
    expect(v1.keys[0]!.description).toBe('an HMAC key from local-kms');
    expect(v1.aliases).toEqual([{ aliasName: 'alias/hmac', targetKeyId: ID1 }]);
    expect(v1.skipped).toEqual([
      'an AES key bc436485-5092-42b8-92a3-0aa8b93536dc',
      'alias alias/aes (of the skipped key bc436485-5092-42b8-92a3-0aa8b93536dc)',
    ]);
    const v2 = parseSeed(LOCAL_KMS_V2, 'seed.yaml');
    expect(v2.keys.map((k) => k.keyId)).toEqual([ID1]);
    expect(v2.aliases).toEqual([{ aliasName: 'alias/hmac', targetKeyId: ID1 }]);
    expect(v2.skipped).toEqual(['a ECC_NIST_P256 key 800d5768-3fd7-4edd-a4b8-4c81c3e4c147']);
  });

  it('bad seeds are refused saying where, and never quote material', () => {
    const cases: [string, RegExp][] = [
      [
        `keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${M1.slice(2)} }`,
        /HMAC_256 material of an AWS_KMS key has 32 bytes, not 31/,
      ],
      [
        `keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: zz${M1.slice(2)} }`,
        /keys\[0\]\.materialHex is not hex/,
      ],
      [`keys:\n  - { keyId: not-a-uuid, keySpec: HMAC_256, materialHex: ${M1} }`, /key id 'not-a-uuid' is not a UUID/],
      [`keys:\n  - { keyId: ${ID1}, keySpec: AES_256, materialHex: ${M1} }`, /keySpec must be HMAC_224, HMAC_256/],
      [`keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${M1}, colour: red }`, /unknown entry 'colour'/],
      [`keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256 }`, /has no material \(only an EXTERNAL key/],
      [
        `keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${M1} }\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${M1} }`,
        /given twice/,
      ],
      [
        `keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${M1}, aliases: [alias/aws/x] }`,
        /alias\/aws\/ is reserved/,
      ],
      [`aliases:\n  - { aliasName: alias/x, targetKeyId: alias/y }`, /give a key id or key ARN/],
      [
        `Keys:\n  Symmetric:\n    Hmac:\n      - Metadata: { KeyId: ${ID1}, KeySpec: HMAC_256 }\n        BackingKeys: [${M1}, ${M1}]`,
        /has 2 BackingKeys: an HMAC key has one/,
      ],
      [
        `keys:\n  - keyId: ${ID1}\n    materialHex: "${M1}\n    keySpec: [`,
        /not valid YAML or JSON \([A-Z_]+ at line \d+, column \d+\)/,
      ],
      ['just a string', /a seed is a mapping/],
    ];
    for (const [text, why] of cases) {
      const err = (() => {
        try {
          parseSeed(text, 'bad.yaml');
        } catch (e) {
          return e as Error;
        }
        throw new Error(`accepted: ${text}`);
      })();
      expect(err).toBeInstanceOf(SeedError);
      expect(err.message).toMatch(why);
      expect(err.message).not.toContain(M1.slice(4, 40));
    }
  });
});

describe('applying a seed', () => {
  it('creates absent keys and aliases; twice is idempotent; the MACs are those of the seeded material', async () => {
    const path = join(dir, 'twice.db');
    const seed = parseSeed(OWN);
    const store = await FileKeyStore.open(path);
    try {
      expect(await applySeed(store, SCOPE, seed)).toMatchObject({ keysCreated: 2, keysPresent: 0, aliasesCreated: 3 });
      const before = JSON.stringify(store.listKeys().map((k) => ({ ...k, keyMaterial: undefined })));
      expect(await applySeed(store, SCOPE, seed)).toMatchObject({
        keysCreated: 0,
        keysPresent: 2,
        aliasesCreated: 0,
        aliasesPresent: 3,
        notes: [],
      });
      expect(JSON.stringify(store.listKeys().map((k) => ({ ...k, keyMaterial: undefined })))).toBe(before);
      const k2 = store.getKey(ID2)!;
      expect([k2.origin, k2.keyState, k2.expirationModel, k2.tags]).toEqual([
        'EXTERNAL',
        'Enabled',
        'KEY_MATERIAL_DOES_NOT_EXPIRE',
        [],
      ]);
      expect(store.getKey(ID1)!.arn).toBe(`arn:aws:kms:us-east-1:111122223333:key/${ID1}`);
    } finally {
      await store.close();
    }
    const server = await startServer({ port: 0, credentials: [CRED], log: false, keyStore: path });
    try {
      const r = await signedCall(server.url, 'GenerateMac', {
        KeyId: 'alias/logs',
        Message: 'aGk=',
        MacAlgorithm: 'HMAC_SHA_256',
      });
      expect(r.json!.Mac).toBe(macOf(M1, 'sha256', 'hi'));
      const r2 = await signedCall(server.url, 'GenerateMac', {
        KeyId: 'alias/other',
        Message: 'aGk=',
        MacAlgorithm: 'HMAC_SHA_384',
      });
      expect(r2.json!.Mac).toBe(macOf(M2, 'sha384', 'hi'));
    } finally {
      await server.close();
    }
  });

  it('a key with the same id and other material: SeedConflictError naming the key, and nothing written', async () => {
    const store = new MemoryKeyStore();
    await applySeed(store, SCOPE, parseSeed(`keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${M1} }`));
    const version = store.version;
    const conflicting = parseSeed(`
keys:
  - { keyId: ${ID2}, keySpec: HMAC_384, materialHex: ${M2}, aliases: [alias/new] }
  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${'c3'.repeat(32)} }
`);
    const err = await applySeed(store, SCOPE, conflicting).catch((e: Error) => e);
    expect(err).toBeInstanceOf(SeedConflictError);
    expect((err as SeedConflictError).keyId).toBe(ID1);
    expect(String(err)).toMatch(
      new RegExp(`seeded key ${ID1} conflicts .*\\(other key material\\); nothing was seeded`),
    );
    expect(String(err)).not.toContain('c3c3c3');
    expect(String(err)).not.toContain(M1.slice(0, 16));
    // Untouched: the key before the conflict in the same seed was not created either.
    expect(store.version).toBe(version);
    expect(store.getKey(ID2)).toBeUndefined();
    expect(store.getAlias('alias/new')).toBeUndefined();
    // Another key spec or origin is a conflict too.
    await expect(
      applySeed(
        store,
        SCOPE,
        parseSeed(`keys:\n  - { keyId: ${ID1}, keySpec: HMAC_512, materialHex: ${'a1'.repeat(64)} }`),
      ),
    ).rejects.toThrow(/key spec HMAC_256, not HMAC_512/);
    await expect(
      applySeed(
        store,
        SCOPE,
        parseSeed(`keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, origin: EXTERNAL, materialHex: ${M1} }`),
      ),
    ).rejects.toThrow(/origin AWS_KMS, not EXTERNAL/);
  });

  it('an alias that points elsewhere now is left as it is, with a note; an alias of an unknown key is an error', async () => {
    const store = new MemoryKeyStore();
    await applySeed(store, SCOPE, parseSeed(OWN));
    await store.transact((tx) => tx.replaceAlias({ ...tx.getAlias('alias/logs')!, targetKeyId: ID2 }));
    const again = await applySeed(store, SCOPE, parseSeed(OWN));
    expect(again.notes).toEqual([`alias alias/logs points at ${ID2}, not ${ID1}: left as it is`]);
    expect(store.getAlias('alias/logs')!.targetKeyId).toBe(ID2);
    await expect(
      applySeed(
        store,
        SCOPE,
        parseSeed(`aliases:\n  - { aliasName: alias/ghost, targetKeyId: 2d6aa5d6-0b7a-4f5c-9fae-8b3d4c5e6f70 }`),
      ),
    ).rejects.toThrow(/alias\/ghost targets key 2d6aa5d6-.* neither seeded nor in the store; nothing was seeded/);
  });
});

describe('serve --seed', () => {
  const run = (args: string[], home: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = track(
        spawn(process.execPath, [builtServeEntry(), '--port', '0', ...args], {
          env: {
            PATH: process.env.PATH,
            HOME: home,
            KMS_HMAC_ACCESS_KEY_ID: CRED.accessKeyId,
            KMS_HMAC_SECRET_ACCESS_KEY: CRED.secretAccessKey,
          },
          detached: true,
        }),
      );
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => {
        stdout += d;
        if (/listening on/.test(stdout)) p.kill('SIGTERM');
      });
      p.stderr.on('data', (d) => (stderr += d));
      p.on('exit', (code) => resolve({ code, stdout, stderr }));
    });

  it('seeds at start-up, twice without change, refuses a conflict naming the key (exit 2); material is never printed', async () => {
    const home = mkdtempSync(join(dir, 'cli-'));
    const store = join(home, 'keystore.db');
    const seedFile = join(home, 'seed.yaml');
    writeFileSync(seedFile, LOCAL_KMS_V1);
    const first = await run(['--keystore', store, '--seed', seedFile], home);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(
      `seed ${seedFile}: 2 keys created, 0 already present; 1 alias created, 0 already present`,
    );
    expect(first.stderr).toMatch(
      /skipped an AES key bc436485-5092-42b8-92a3-0aa8b93536dc \(this endpoint holds HMAC keys only\)/,
    );
    const second = await run(['--keystore', store, '--seed', seedFile], home);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('0 keys created, 2 already present; 0 aliases created, 1 already present');

    writeFileSync(seedFile, `keys:\n  - { keyId: ${ID1}, keySpec: HMAC_256, materialHex: ${'d4'.repeat(32)} }\n`);
    const conflict = await run(['--keystore', store, '--seed', seedFile], home);
    expect(conflict.code).toBe(2);
    expect(conflict.stderr).toMatch(
      new RegExp(`seeded key ${ID1} conflicts with the key of that id in the store \\(other key material\\)`),
    );
    for (const out of [first, second, conflict]) {
      for (const secret of [M1, 'd4d4d4d4', '5cdaead27fe7da2d']) {
        expect(out.stdout).not.toContain(secret);
        expect(out.stderr).not.toContain(secret);
      }
    }
  }, 120_000);

  it('with --workers 2 the primary seeds once, before any worker answers; the access log has the counts, not the material', async () => {
    const home = mkdtempSync(join(dir, 'workers-'));
    const seedFile = join(home, 'seed.json');
    writeFileSync(
      seedFile,
      JSON.stringify({ keys: [{ keyId: ID1, keySpec: 'HMAC_256', materialHex: M1, aliases: ['alias/w'] }] }),
    );
    const logFile = join(home, 'access.log');
    const child = await startServe(
      ['--keystore', join(home, 'ks.db'), '--workers', '2', '--seed', seedFile, '--log', logFile],
      home,
    );
    try {
      expect(child.stdout()).toContain('1 key created, 0 already present; 1 alias created');
      for (let i = 0; i < 6; i++) {
        const r = await signedCall(child.url, 'GenerateMac', {
          KeyId: 'alias/w',
          Message: 'aGk=',
          MacAlgorithm: 'HMAC_SHA_256',
        });
        expect(r.json!.Mac).toBe(macOf(M1, 'sha256', 'hi'));
      }
    } finally {
      expect(await stopServe(child)).toEqual({ code: 0, signal: null });
    }
    const log = (await import('node:fs')).readFileSync(logFile, 'utf8');
    expect(log).not.toContain(M1);
  }, 120_000);

  it('startServer({ seed }) in memory: the keys exist from the first request', async () => {
    const file = join(dir, 'mem.yaml');
    writeFileSync(file, OWN);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const s = await startServer({ port: 0, auth: 'any', log: false, seed: file });
    try {
      expect(s.seeded).toMatchObject({ keysCreated: 2, aliasesCreated: 3 });
      const r = await signedCall(s.url, 'DescribeKey', { KeyId: 'alias/logs-2' });
      expect((r.json!.KeyMetadata as { KeyId: string }).KeyId).toBe(ID1);
    } finally {
      await s.close();
      warn.mockRestore();
    }
    await expect(startServer({ port: 0, auth: 'any', log: false, seed: join(dir, 'missing.yaml') })).rejects.toThrow(
      /cannot read the seed file .*missing\.yaml/,
    );
  });
});
