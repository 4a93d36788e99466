/**
 * kms-hmac/pino and kms-hmac/winston in real applications (child processes:
 * test/fixtures/pino-app.mjs, winston-app.mjs): records written, the
 * application killed with SIGKILL, started again, ended; `kms-hmac verify`
 * with the shipped checkpoints exits 0. The transports are resolved by the
 * package's own name, as an application would (package.json "exports").
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-run.js';
import { start, until } from './log-procs.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-transports-'));
const env = { KMS_HMAC_KEYSTORE: join(dir, 'keystore.db'), KMS_HMAC_PASSPHRASE_FILE: join(dir, 'passphrase') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cli = (args: string[]) => runCli(args, { cwd: dir, env });
const app = (name: string) => fileURLToPath(new URL(`./fixtures/${name}-app.mjs`, import.meta.url));
const lineCount = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').length - 1 : 0);
const shippedCheckpoints = (f: string) =>
  existsSync(f)
    ? readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"type":"checkpoint"')).length
    : 0;

beforeAll(async () => {
  writeFileSync(env.KMS_HMAC_PASSPHRASE_FILE, 'transports test passphrase\n', { mode: 0o600 });
  expect((await cli(['keys', 'create', '--key-spec', 'HMAC_256', '--alias', 'alias/app'])).code).toBe(0);
});

describe.each(['pino', 'winston'])('kms-hmac/%s', (name) => {
  it('records written, kill -9, restart, end: verify --checkpoints exits 0', { timeout: 120_000 }, async () => {
    const log = join(dir, `${name}.log`);
    const shipped = join(dir, `${name}.checkpoints`);
    const first = start(app(name), [log, shipped, '2000', 'stay'], dir, env);
    await until(
      '2,000 records in the log and a checkpoint shipped',
      () => lineCount(log) >= 2000 && shippedCheckpoints(shipped) >= 1,
      60_000,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    expect(lineCount(log)).toBe(2000);
    const again = start(app(name), [log, shipped, '1000', 'end'], dir, env);
    expect(await again.exited, again.stderr()).toBe(0);
    expect(again.out).toContain('closed');

    // The time between the kill and the restart is a real silence of the signer (logs-anchors tests
    // that it is reported); on a loaded machine the restart alone can take longer than 3 intervals.
    const maxGap = ['--max-gap', '120'];
    const v = await cli(['verify', log, '--key-id', 'alias/app', '--checkpoints', shipped, ...maxGap, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const report = JSON.parse(v.stdout);
    expect(report).toMatchObject({ ok: true, closed: true, records: 3000, verified: 3000, keys: 'forward-secure' });
    expect(report.streams.length).toBe(2); // the restart began a new stream, chained to the first
    const text = readFileSync(log, 'utf8').split('\n');
    expect(JSON.parse(text[2999]!)).toMatchObject({ [name === 'pino' ? 'msg' : 'message']: 'request handled', i: 999 });

    // and an edit is caught
    const edited = text.join('\n').replace('"i":1500,', '"i":1501,');
    writeFileSync(join(dir, `${name}-edited.log`), edited);
    const bad = await cli([
      'verify',
      join(dir, `${name}-edited.log`),
      '--sidecar',
      `${log}.mac`,
      '--key-id',
      'alias/app',
      '--checkpoints',
      shipped,
      ...maxGap,
      '--json',
    ]);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).issues.map((i: { kind: string; line: number }) => [i.kind, i.line])).toEqual([
      ['modified', 1501],
    ]);
  });
});
