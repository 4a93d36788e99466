/** `kms-hmac sign` / `kms-hmac verify` as a child process (bin/kms-hmac.js → dist/). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from './cli-run.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-cli-logs-'));
const KS = join(dir, 'keystore.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], input?: string | Buffer): Promise<CliRun> {
  return runCli(args, { cwd: dir, env: { KMS_HMAC_KEYSTORE: KS }, input });
}

const path = (n: string) => join(dir, n);
const lines = (n: number, tag = 'line') => Array.from({ length: n }, (_, i) => `${tag} ${i + 1}\r\n`);

beforeAll(async () => {
  for (const [spec, alias] of [
    ['HMAC_256', 'alias/logs'],
    ['HMAC_256', 'alias/other'],
    ['HMAC_384', 'alias/temp'],
  ]) {
    const r = await cli(['keys', 'create', '--key-spec', spec!, '--alias', alias!]);
    expect(r.code).toBe(0);
  }
});

describe('sign / verify', () => {
  it('sign writes FILE.mac; verify says OK (exit 0), with --json', async () => {
    writeFileSync(path('app.log'), lines(1000).join(''));
    const s = await cli(['sign', 'app.log', '--key-id', 'alias/logs']);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/signed 1,000 records .* -> app\.log\.mac/);
    expect(readFileSync(path('app.log.mac')).subarray(0, 8).toString()).toBe('KHMACLOG');
    const v = await cli(['verify', 'app.log', '--key-id', 'alias/logs']);
    expect([v.code, v.stderr]).toEqual([0, '']);
    expect(v.stdout).toMatch(/^OK: app\.log: all 1,000 records verified against app\.log\.mac/);
    const j = await cli(['verify', 'app.log', '--key-id', 'alias/logs', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({
      ok: true,
      records: 1000,
      signedRecords: 1000,
      verified: 1000,
      issues: [],
    });
  });

  it('tampering: exit 1, every issue by line number, in text and --json', async () => {
    const t = lines(1000);
    t[99] = 'line 100 changed\r\n';
    t.splice(499, 1);
    t.splice(700, 0, 'forged\r\n');
    writeFileSync(path('bad.log'), t.join(''));
    const v = await cli(['verify', 'bad.log', '--sidecar', 'app.log.mac', '--key-id', 'alias/logs']);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^TAMPERED: bad\.log does not match app\.log\.mac \(modified 1, inserted 1, deleted 1\)/);
    expect(v.stdout).toMatch(/line 100: modified \(was signed record #100\)/);
    expect(v.stdout).toMatch(/signed record #500: deleted \(missing before line 500\)/);
    expect(v.stdout).toMatch(/line 701: inserted/);
    const j = await cli(['verify', 'bad.log', '--sidecar', 'app.log.mac', '--key-id', 'alias/logs', '--json']);
    expect(j.code).toBe(1);
    const rep = JSON.parse(j.stdout);
    expect(rep.ok).toBe(false);
    expect(rep.issues.map((i: { kind: string; line?: number }) => [i.kind, i.line])).toEqual([
      ['modified', 100],
      ['deleted', 500],
      ['inserted', 701],
    ]);
  });

  it('--out, stdin, --delimiter and ndjson framing', async () => {
    const s = await cli(['sign', '-', '--key-id', 'alias/logs', '--out', 'stdin.mac', '--delimiter', '\\0'], 'a\0b\0c');
    expect(s.code).toBe(0);
    const v = await cli(['verify', '-', '--sidecar', 'stdin.mac', '--key-id', 'alias/logs', '--json'], 'a\0b\0c');
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, records: 3, framing: 'delimiter' });
    writeFileSync(path('x.ndjson'), '{"a":1}\nnope\n');
    const nd = await cli(['sign', 'x.ndjson', '--key-id', 'alias/logs', '--framing', 'ndjson']);
    expect(nd.code).toBe(2);
    expect(nd.stderr).toMatch(/line 2 is not valid JSON/);
  });

  it('a key disabled between sign and verify: clear error, exit 3', async () => {
    writeFileSync(path('t.log'), lines(10).join(''));
    expect((await cli(['sign', 't.log', '--key-id', 'alias/temp'])).code).toBe(0);
    expect((await cli(['keys', 'disable', '--key-id', 'alias/temp'])).code).toBe(0);
    const v = await cli(['verify', 't.log', '--key-id', 'alias/temp']);
    expect(v.code).toBe(3);
    expect(v.stderr).toMatch(
      /^kms-hmac: DisabledException: arn:aws:kms:us-east-1:111122223333:key\/[0-9a-f-]+ is disabled\.\n$/,
    );
    const s = await cli(['sign', 't.log', '--key-id', 'alias/temp']);
    expect(s.code).toBe(3);
    expect(s.stderr).toMatch(/DisabledException/);
  });

  it('verify without --key-id: exit 2, and it says why the sidecar cannot name the key', async () => {
    const v = await cli(['verify', 'app.log']);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/verify needs --key-id: the key to trust/);
    expect(v.stderr).toMatch(/sign it again with a key of their own/);
    expect(v.stdout).toBe('');
  });

  it('a log edited and signed again with another key of the same store: exit 1, naming both keys', async () => {
    const a = JSON.parse((await cli(['keys', 'describe', '--key-id', 'alias/logs'])).stdout).KeyMetadata.Arn as string;
    const b = JSON.parse((await cli(['keys', 'describe', '--key-id', 'alias/other'])).stdout).KeyMetadata.Arn as string;
    const t = lines(50);
    writeFileSync(path('forged.log'), t.join(''));
    expect((await cli(['sign', 'forged.log', '--key-id', 'alias/logs'])).code).toBe(0);
    t[10] = 'line 11 edited\r\n';
    writeFileSync(path('forged.log'), t.join(''));
    expect((await cli(['sign', 'forged.log', '--key-id', 'alias/other'])).code).toBe(0);
    for (const keyId of ['alias/logs', a, `arn:aws:kms:us-east-1:111122223333:alias/logs`]) {
      const v = await cli(['verify', 'forged.log', '--key-id', keyId]);
      expect(v.code, keyId).toBe(1);
      expect(v.stdout).toMatch(/^TAMPERED: .*\(wrong-key 1\)/);
      expect(v.stdout).toContain(`made with key ${b}`);
      expect(v.stdout).toContain(`not the expected key ${a}`);
    }
    // the key that made it verifies it only when the caller names that key
    expect((await cli(['verify', 'forged.log', '--key-id', 'alias/other'])).code).toBe(0);
  });

  it('a sidecar from another log (exit 1), not a sidecar (exit 2), missing files (exit 2)', async () => {
    writeFileSync(path('b.log'), lines(1000, 'other').join(''));
    expect((await cli(['sign', 'b.log', '--key-id', 'alias/logs'])).code).toBe(0);
    const foreign = await cli(['verify', 'app.log', '--sidecar', 'b.log.mac', '--key-id', 'alias/logs']);
    expect(foreign.code).toBe(1);
    expect(foreign.stdout).toMatch(/made for another log/);

    const notSidecar = await cli(['verify', 'app.log', '--sidecar', 'app.log', '--key-id', 'alias/logs']);
    expect(notSidecar.code).toBe(2);
    expect(notSidecar.stderr).toMatch(/not a kms-hmac log sidecar/);
    const missing = await cli(['verify', 'nope.log', '--key-id', 'alias/logs']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ENOENT/);
    const missingKey = await cli(['sign', 'app.log', '--key-id', 'alias/nope', '--out', 'n.mac']);
    expect(missingKey.code).toBe(3);
    expect(missingKey.stderr).toMatch(/NotFoundException/);
  });

  it('a sidecar cut short (what a crashed signer leaves) and a truncated log: exit 1 and named', async () => {
    expect(
      (await cli(['sign', 'app.log', '--key-id', 'alias/logs', '--out', 'blocks.mac', '--checkpoint-every', '300']))
        .code,
    ).toBe(0);
    const sc = readFileSync(path('blocks.mac'));
    writeFileSync(path('cut.mac'), sc.subarray(0, sc.length - 100)); // the trailer and part of the last block
    const a = await cli(['verify', 'app.log', '--sidecar', 'cut.mac', '--key-id', 'alias/logs']);
    expect(a.code).toBe(1);
    expect(a.stdout).toMatch(
      /^INCOMPLETE: app\.log: 100 records are not signed yet by cut\.mac; nothing was tampered with\n/,
    );
    expect(a.stdout).toMatch(/signed through record 900 \(checkpoint 2, [^)]+\); open: no trailer yet/);
    expect(a.stdout).toMatch(/lines 901-1000: unsigned/);
    writeFileSync(path('short.log'), lines(990).join(''));
    const b = await cli(['verify', 'short.log', '--sidecar', 'app.log.mac', '--key-id', 'alias/logs']);
    expect(b.code).toBe(1);
    expect(b.stdout).toMatch(/log truncated: signed records #991-1000 missing at the end/);
  });
});

describe('every verify the CLI shows names --key-id', () => {
  it('kms-hmac --help, verify --help and the demo', async () => {
    const [top, verify, demo] = await Promise.all([
      cli(['--help']),
      cli(['verify', '--help']),
      cli(['demo', '--records', '20000']),
    ]);
    expect(demo.code).toBe(0);
    for (const out of [top.stdout, verify.stdout, demo.stdout]) {
      const shown = out.split('\n').filter((l) => /kms-hmac verify /.test(l));
      expect(shown.length).toBeGreaterThan(0);
      for (const l of shown) expect(l).toMatch(/--key-id /);
    }
    expect(verify.stdout).toMatch(/--key-id <id> +the key to trust \(required\)/);
  });
});
