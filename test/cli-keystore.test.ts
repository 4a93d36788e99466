/**
 * The key store as the CLI opens it: --passphrase-file and the passphrase
 * variables on every command that opens a store (and in every --help), the
 * warning when a store is created unencrypted, `keys encrypt`, and
 * `--keystore postgres://…` / KMS_HMAC_KEYSTORE / PG* on every command.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-run.js';
import { PG_SKIP, usePostgres } from './postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-cli-ks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NO_PASS = { KMS_HMAC_PASSPHRASE: '', KMS_HMAC_PASSPHRASE_FILE: '' };
const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
  runCli(args, { cwd: dir, env: { ...NO_PASS, ...env }, input });
const passFile = join(dir, 'pass.txt');
writeFileSync(passFile, 'correct horse battery staple\n', { mode: 0o600 });

describe('passphrase on every command that opens a store', () => {
  it('--help of keys, mac, sign, verify, serve and demo offers --passphrase-file and names both variables', async () => {
    const cmds = [
      ['keys', 'create'],
      ['keys', 'list'],
      ['keys', 'encrypt'],
      ['mac', 'generate'],
      ['mac', 'verify'],
      ['sign'],
      ['verify'],
      ['serve'],
      ['demo'],
    ];
    const runs = await Promise.all(cmds.map((c) => cli([...c, '--help'])));
    runs.forEach((r, i) => {
      expect(r.code, cmds[i]!.join(' ')).toBe(0);
      expect(r.stdout, cmds[i]!.join(' ')).toMatch(/--passphrase-file <path>/);
      expect(r.stdout, cmds[i]!.join(' ')).toMatch(/KMS_HMAC_PASSPHRASE_FILE.*KMS_HMAC_PASSPHRASE/s);
      expect(r.stdout, cmds[i]!.join(' ')).toMatch(/postgres:\/\//);
    });
  });

  // Each command derives the passphrase with scrypt N=2^17 (about 2 s on a loaded 2-vCPU machine).
  it('an encrypted store: --passphrase-file or KMS_HMAC_PASSPHRASE opens it; nothing else does', {
    timeout: 240_000,
  }, async () => {
    const ks = join(dir, 'enc.db');
    const c = await cli([
      'keys',
      'create',
      '--key-spec',
      'HMAC_256',
      '--alias',
      'alias/enc',
      '--keystore',
      ks,
      '--passphrase-file',
      passFile,
    ]);
    expect([c.code, c.stderr]).toEqual([0, '']); // encrypted: no warning
    const without = await cli(['keys', 'list', '--keystore', ks]);
    expect(without.code).toBe(3);
    expect(without.stderr).toMatch(/KeyStorePassphraseError: .*encrypted/);
    const wrong = await cli(['keys', 'list', '--keystore', ks], { KMS_HMAC_PASSPHRASE: 'nope' });
    expect(wrong.stderr).toMatch(/wrong passphrase/);
    const env = await cli(
      ['mac', 'generate', '--key-id', 'alias/enc', '--keystore', ks],
      { KMS_HMAC_PASSPHRASE: 'correct horse battery staple' },
      'hello',
    );
    const flag = await cli(
      ['mac', 'generate', '--key-id', 'alias/enc', '--keystore', ks, '--passphrase-file', passFile],
      {},
      'hello',
    );
    const fileEnv = await cli(
      ['mac', 'generate', '--key-id', 'alias/enc', '--keystore', ks],
      { KMS_HMAC_PASSPHRASE_FILE: passFile },
      'hello',
    );
    expect([env.code, flag.code, fileEnv.code]).toEqual([0, 0, 0]);
    expect(new Set([env.stdout, flag.stdout, fileEnv.stdout]).size).toBe(1);
    // The flag wins over a (wrong) passphrase in the environment.
    const both = await cli(['keys', 'list', '--keystore', ks, '--passphrase-file', passFile], {
      KMS_HMAC_PASSPHRASE: 'nope',
    });
    expect(both.code).toBe(0);
    // sign and verify (the log commands) take it too.
    writeFileSync(join(dir, 'a.log'), 'one\ntwo\n');
    const s = await cli(['sign', 'a.log', '--key-id', 'alias/enc', '--keystore', ks, '--passphrase-file', passFile]);
    expect([s.code, s.stderr]).toEqual([0, '']);
    const v = await cli(['verify', 'a.log', '--key-id', 'alias/enc', '--keystore', ks, '--passphrase-file', passFile]);
    expect(v.code).toBe(0);
    const missing = await cli(['keys', 'list', '--keystore', ks, '--passphrase-file', join(dir, 'none')]);
    expect(missing.code).toBe(2);
  });

  it('creating an unencrypted store warns once; `keys encrypt` encrypts it, after which the passphrase is required', async () => {
    const ks = join(dir, 'plain.db');
    const c = await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--alias', 'alias/p', '--keystore', ks]);
    expect(c.code).toBe(0);
    expect(c.stderr.match(/warning: created key store/g)).toHaveLength(1);
    const again = await cli(['keys', 'list', '--keystore', ks]);
    expect([again.code, again.stderr]).toEqual([0, '']);
    const refused = await cli(['keys', 'list', '--keystore', ks, '--passphrase-file', passFile]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/not encrypted.*kms-hmac keys encrypt/);
    expect((await cli(['keys', 'encrypt', '--keystore', ks])).code).toBe(2); // no passphrase given
    const enc = await cli(['keys', 'encrypt', '--keystore', ks, '--passphrase-file', passFile]);
    expect(enc.code).toBe(0);
    expect(JSON.parse(enc.stdout)).toMatchObject({ Encrypted: true, Keys: 1 });
    expect((await cli(['keys', 'list', '--keystore', ks])).stderr).toMatch(/encrypted/);
    expect(
      (await cli(['keys', 'describe', '--key-id', 'alias/p', '--keystore', ks, '--passphrase-file', passFile])).code,
    ).toBe(0);
  });
});

describe.skipIf(PG_SKIP)('--keystore postgres://… on every command', () => {
  const pg = usePostgres();

  it('keys, mac, sign, verify on a PostgreSQL store, by flag, by KMS_HMAC_KEYSTORE, and by PG* variables behind a bare postgres://', {
    timeout: 240_000,
  }, async () => {
    const url = await pg.database();
    const dbName = url.slice(url.lastIndexOf('/') + 1, url.indexOf('?'));
    const pass = { KMS_HMAC_PASSPHRASE: 'fleet pass' };
    const c = await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--alias', 'alias/pg', '--keystore', url], pass);
    expect([c.code, c.stderr]).toEqual([0, '']);
    const viaEnv = await cli(['keys', 'list', '--json'], { ...pass, KMS_HMAC_KEYSTORE: url });
    expect(JSON.parse(viaEnv.stdout).Keys[0].Aliases).toEqual(['alias/pg']);
    const bare = await cli(['keys', 'describe', '--key-id', 'alias/pg', '--keystore', 'postgresql://'], {
      ...pass,
      ...pg.cluster().env(dbName),
    });
    expect(bare.code).toBe(0);
    const m1 = await cli(['mac', 'generate', '--key-id', 'alias/pg', '--keystore', url], pass, 'msg');
    const m2 = await cli(
      ['mac', 'generate', '--key-id', 'alias/pg'],
      { ...pass, KMS_HMAC_KEYSTORE: 'postgres://', ...pg.cluster().env(dbName) },
      'msg',
    );
    expect([m1.code, m2.code, m1.stdout]).toEqual([0, 0, m2.stdout]);
    writeFileSync(join(dir, 'pg.log'), 'a\nb\nc\n');
    expect((await cli(['sign', 'pg.log', '--key-id', 'alias/pg', '--keystore', url], pass)).code).toBe(0);
    expect((await cli(['verify', 'pg.log', '--key-id', 'alias/pg', '--keystore', url], pass)).code).toBe(0);
    // The password of a URL is never printed.
    const secretUrl = url.replace('postgres://postgres@', 'postgres://postgres:s3cret-pw@');
    const d = await cli(['demo', '--records', '20000', '--keystore', secretUrl], pass);
    expect(d.code).toBe(0);
    expect(d.stdout + d.stderr).not.toContain('s3cret-pw');
    expect(d.stdout).toMatch(/key store postgres:\/\/postgres:\*\*\*@/);
  });
});
