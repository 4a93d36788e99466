/**
 * The kms-hmac command as a user runs it: a child process on bin/kms-hmac.js
 * (which imports dist/ — run `npm run build:ts` first; CI's `npm ci` does).
 * Exit codes: 0 ok, 1 verification failed, 2 usage/input, 3 key/service.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './cli-run.js';
import { track } from './support/process-group.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-cli-'));
const KS = join(dir, 'keystore.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], input?: string | Buffer, env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, { cwd: dir, env: { KMS_HMAC_KEYSTORE: KS, ...env }, input });
}

const file = (name: string, content: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

let keyId = '';
let arn = '';
beforeAll(async () => {
  const r = await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--description', 'logs', '--alias', 'alias/logs']);
  // The store did not exist: the CLI says, once, that it created it unencrypted.
  expect(r.stderr).toMatch(
    /^kms-hmac: warning: created key store .*keystore\.json without a passphrase.*--passphrase-file.*\n$/,
  );
  expect(r.code).toBe(0);
  const md = JSON.parse(r.stdout).KeyMetadata;
  keyId = md.KeyId;
  arn = md.Arn;
});

describe('help and usage', () => {
  it('a reader that closes the pipe early (| head) ends the command quietly', async () => {
    const { spawn } = await import('node:child_process');
    const bin = new URL('../bin/kms-hmac.js', import.meta.url).pathname;
    const child = track(
      spawn(process.execPath, [bin, 'verify', '--help'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    child.stdout.destroy(); // the reader is gone before the first write
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it.each([[[]], [['keys']], [['mac']]])('%j without a subcommand: help on stderr, exit 2', async (args) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Usage:/);
  });

  it('--help on every command exits 0', async () => {
    const cmds = [
      [],
      ['keys'],
      ['keys', 'create'],
      ['keys', 'list'],
      ['keys', 'describe'],
      ['keys', 'alias'],
      ['keys', 'enable'],
      ['keys', 'disable'],
      ['keys', 'schedule-deletion'],
      ['keys', 'cancel-deletion'],
      ['keys', 'import'],
      ['mac', 'generate'],
      ['mac', 'verify'],
      ['sign'],
      ['verify'],
      ['serve'],
      ['bench'],
      ['demo'],
    ];
    const runs = await Promise.all(cmds.map((c) => cli([...c, '--help'])));
    runs.forEach((r, i) => {
      expect(r.code, cmds[i]!.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: kms-hmac/);
      if (cmds[i]!.length && !['keys', 'mac', 'bench'].includes(cmds[i]!.join(' ')))
        expect(r.stdout).toMatch(/--keystore/);
    });
    expect(runs[0]!.stdout).toMatch(/Exit codes: 0 ok; 1 verification failed/);
  });

  it('usage errors exit 2', async () => {
    const [unknown, missing, badSpec, badDelim] = await Promise.all([
      cli(['frobnicate']),
      cli(['sign', 'x.log']),
      cli(['keys', 'create', '--key-spec', 'RSA_2048']),
      cli(['sign', file('d.log', 'a'), '--key-id', 'alias/logs', '--delimiter', '\\q']),
    ]);
    for (const r of [unknown, missing, badSpec, badDelim]) expect(r.code).toBe(2);
    expect(missing.stderr).toMatch(/--key-id/);
    expect(badDelim.stderr).toMatch(/delimiter/);
  });
});

describe('keys', () => {
  it('create prints KeyMetadata; list, describe, alias, disable, enable, schedule/cancel deletion', async () => {
    const c = await cli(['keys', 'create', '--key-spec', 'HMAC_512', '--keystore', join(dir, 'other.json')]);
    const md = JSON.parse(c.stdout).KeyMetadata;
    expect(md).toMatchObject({
      KeySpec: 'HMAC_512',
      KeyUsage: 'GENERATE_VERIFY_MAC',
      KeyState: 'Enabled',
      MacAlgorithms: ['HMAC_SHA_512'],
    });
    const other = join(dir, 'other.json');
    const list = await cli(['keys', 'list', '--json', '--keystore', other]);
    expect(JSON.parse(list.stdout).Keys.map((k: { KeyId: string }) => k.KeyId)).toEqual([md.KeyId]);
    expect((await cli(['keys', 'alias', '--key-id', md.KeyId, '--alias', 'alias/x', '--keystore', other])).code).toBe(
      0,
    );
    // --key-id may name another alias: it is resolved to the key first.
    const viaAlias = await cli(['keys', 'alias', '--key-id', 'alias/x', '--alias', 'alias/y', '--keystore', other]);
    expect(JSON.parse(viaAlias.stdout)).toEqual({ AliasName: 'alias/y', TargetKeyId: md.KeyId });
    const d = await cli(['keys', 'describe', '--key-id', 'alias/x', '--keystore', other]);
    expect(JSON.parse(d.stdout).KeyMetadata.Arn).toBe(md.Arn);
    const dis = await cli(['keys', 'disable', '--key-id', 'alias/x', '--keystore', other]);
    expect(JSON.parse(dis.stdout).KeyState).toBe('Disabled');
    const en = await cli(['keys', 'enable', '--key-id', md.KeyId, '--keystore', other]);
    expect(JSON.parse(en.stdout).KeyState).toBe('Enabled');
    const sch = await cli([
      'keys',
      'schedule-deletion',
      '--key-id',
      md.KeyId,
      '--pending-window-in-days',
      '7',
      '--keystore',
      other,
    ]);
    expect(JSON.parse(sch.stdout)).toMatchObject({ KeyState: 'PendingDeletion', PendingWindowInDays: 7 });
    const can = await cli(['keys', 'cancel-deletion', '--key-id', md.KeyId, '--keystore', other]);
    expect(can.code).toBe(0);
    const text = await cli(['keys', 'list', '--keystore', other]);
    expect(text.stdout).toMatch(new RegExp(`${md.KeyId}\\s+HMAC_512\\s+Disabled\\s+alias/x`));
  });

  it('import: an EXTERNAL key takes the material, and MACs equal node:crypto', async () => {
    const ks = join(dir, 'import.json');
    const c = await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--origin', 'EXTERNAL', '--keystore', ks]);
    const md = JSON.parse(c.stdout).KeyMetadata;
    expect(md.KeyState).toBe('PendingImport');
    const material = Buffer.alloc(32, 7);
    const imp = await cli(['keys', 'import', '--key-id', md.KeyId, '--material-file', '-', '--keystore', ks], material);
    expect(imp.stderr).toBe('');
    expect(JSON.parse(imp.stdout).KeyMetadata.KeyState).toBe('Enabled');
    const g = await cli(['mac', 'generate', '--key-id', md.KeyId, '--keystore', ks], 'hello');
    const { createHmac } = await import('node:crypto');
    expect(g.stdout.trim()).toBe(createHmac('sha256', material).update('hello').digest('base64'));
  });

  it('errors print the KMS name and message and exit 3', async () => {
    const r = await cli(['keys', 'describe', '--key-id', 'alias/nope']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /^kms-hmac: NotFoundException: Alias arn:aws:kms:us-east-1:111122223333:alias\/nope is not found\./,
    );
  });
});

describe('mac generate / verify', () => {
  it('from a file and from stdin, base64 and --json; invalid MAC exits 1', async () => {
    const msg = file('m.txt', 'message');
    const g1 = await cli(['mac', 'generate', msg, '--key-id', 'alias/logs']);
    const g2 = await cli(['mac', 'generate', '--key-id', keyId, '--json'], 'message');
    expect(g1.code).toBe(0);
    const j = JSON.parse(g2.stdout);
    expect(j).toMatchObject({ KeyId: arn, MacAlgorithm: 'HMAC_SHA_256' });
    expect(j.Mac).toBe(g1.stdout.trim());
    const ok = await cli(['mac', 'verify', msg, '--key-id', 'alias/logs', '--mac', j.Mac]);
    expect([ok.code, ok.stdout]).toEqual([0, 'valid\n']);
    const bad = await cli(['mac', 'verify', '--key-id', 'alias/logs', '--mac', j.Mac], 'other');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/KMSInvalidMacException/);
  });

  it('a message over 4096 bytes is a ValidationException (exit 2); a wrong algorithm InvalidKeyUsageException (exit 3)', async () => {
    const big = await cli(['mac', 'generate', '--key-id', 'alias/logs'], Buffer.alloc(4097, 1));
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(
      /ValidationException: 1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096/,
    );
    const alg = await cli(['mac', 'generate', '--key-id', 'alias/logs', '--algorithm', 'HMAC_SHA_512'], 'x');
    expect(alg.code).toBe(3);
    expect(alg.stderr).toMatch(
      /InvalidKeyUsageException: Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256\./,
    );
  });

  it('takes the AWS CLI flag name --mac-algorithm as well as --algorithm', async () => {
    const a = await cli(['mac', 'generate', '--key-id', 'alias/logs', '--algorithm', 'HMAC_SHA_256'], 'x');
    const b = await cli(['mac', 'generate', '--key-id', 'alias/logs', '--mac-algorithm', 'HMAC_SHA_256'], 'x');
    expect([b.code, b.stdout]).toEqual([0, a.stdout]);
    const wrong = await cli(['mac', 'generate', '--key-id', 'alias/logs', '--mac-algorithm', 'HMAC_SHA_512'], 'x');
    expect(wrong.stderr).toMatch(/InvalidKeyUsageException/);
    const both = await cli(
      ['mac', 'generate', '--key-id', 'alias/logs', '--algorithm', 'HMAC_SHA_256', '--mac-algorithm', 'HMAC_SHA_256'],
      'x',
    );
    expect(both.code).toBe(2);
  });
});
