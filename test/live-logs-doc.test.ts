/**
 * docs/live-logs.md, run as written: its commands, its systemd unit's
 * ExecStart, and the steps it gives for what logrotate does (rename,
 * copytruncate), with /var/log, /mnt/audit and /etc/kms-hmac moved into a
 * temporary directory. The unit is checked with systemd-analyze and the
 * logrotate configurations with `logrotate -d` where those tools are installed.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { track } from './support/process-group.js';

const BIN = fileURLToPath(new URL('../bin/kms-hmac.js', import.meta.url));
const WRITER = fileURLToPath(new URL('./fixtures/log-writer.mjs', import.meta.url));
const DOC = readFileSync(fileURLToPath(new URL('../docs/live-logs.md', import.meta.url)), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'kms-hmac-live-doc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The fenced code blocks of the page: info string and text. */
const blocks = [...DOC.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, text: m[2]! }));
const block = (lang: string, has: string) => {
  const b = blocks.find((x) => x.lang === lang && x.text.includes(has));
  if (!b) throw new Error(`docs/live-logs.md has no ${lang || 'plain'} block with ${has}`);
  return b.text;
};
const today = execFileSync('date', ['+%Y%m%d'], { encoding: 'utf8' }).trim();
const tool = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

/** A page's text with its system paths moved under `root`, and the CLI as this checkout's. */
function localize(text: string, root: string): string {
  return text
    .replaceAll('/usr/bin/kms-hmac', `"${process.execPath}" "${BIN}"`)
    .replace(/(^|\s)kms-hmac (?=sign|verify|keys)/gm, `$1"${process.execPath}" "${BIN}" `)
    .replaceAll('/var/log/', `${root}/var/log/`)
    .replaceAll('/mnt/audit/', `${root}/mnt/audit/`)
    .replaceAll('/etc/kms-hmac/', `${root}/etc/`)
    .replace(/2026112[12]/g, today);
}

/** The unit's ExecStart and Environment. */
function unit(root: string) {
  const text = localize(block('ini', '[Service]'), root);
  const exec = /^ExecStart=(.*)$/m.exec(text)![1]!;
  const env = Object.fromEntries([...text.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
  return { text, exec, env };
}

function setup(name: string) {
  const root = join(tmp, name);
  for (const d of ['var/log', 'mnt/audit']) mkdirSync(join(root, d), { recursive: true });
  const { env, exec } = unit(root);
  const sh = (cmd: string, extra: Record<string, string> = {}) =>
    spawnSync('sh', ['-c', cmd], { cwd: root, env: { ...process.env, ...env, ...extra }, encoding: 'utf8' });
  const service = (): { child: ChildProcess; exited: Promise<number | null> } => {
    const child = track(
      spawn('sh', ['-c', `exec ${exec}`], {
        cwd: root,
        env: { ...process.env, ...env },
        detached: true,
        stdio: 'ignore',
      }),
    );
    return { child, exited: new Promise((r) => child.on('close', r)) };
  };
  const app = () => {
    const child = track(
      spawn(process.execPath, [WRITER, join(root, 'var/log/app.log'), '--burst', '100', '--every', '5'], {
        detached: true,
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return {
      child,
      stop: () =>
        new Promise<number>((r) => child.on('close', () => r(JSON.parse(out).lines)) && child.kill('SIGTERM')),
    };
  };
  return {
    root,
    sh,
    service,
    app,
    log: join(root, 'var/log/app.log'),
    shipped: join(root, 'mnt/audit/app.checkpoints'),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms = 30_000) {
  const t = Date.now();
  while (!cond()) {
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
const shippedLines = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0);

describe('docs/live-logs.md', () => {
  const inShort = block('sh', 'sign --follow')
    .split('\n')
    .filter((l) => l.startsWith('kms-hmac'));
  /** The systemd section's setup, as written: the store, its passphrase file, the key. */
  const unitSetup = (t: ReturnType<typeof setup>) => {
    const r = t.sh(localize(block('sh', 'install -d -m 700 /etc/kms-hmac/'), t.root), {
      KMS_HMAC_KEYSTORE: '',
      KMS_HMAC_PASSPHRASE_FILE: '',
      KMS_HMAC_PASSPHRASE: '',
    });
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(statSync(join(t.root, 'etc', 'passphrase')).mode & 0o077).toBe(0);
    expect(JSON.parse(r.stdout).KeyMetadata.KeySpec).toBe('HMAC_256');
  };

  it('the unit runs the signer; a crash leaves INCOMPLETE, not TAMPERED; a restart resumes; a rename rotation as shown; verify as shown', {
    timeout: 180_000,
  }, async () => {
    const t = setup('rename');
    unitSetup(t);
    writeFileSync(t.log, '');
    const app = t.app();
    let svc = t.service();
    await until('checkpoints shipped', () => shippedLines(t.shipped) >= 3);
    svc.child.kill('SIGKILL'); // a crash
    await svc.exited;
    const crashed = t.sh(localize(inShort[2]!, t.root)); // kms-hmac verify … (forward-secure: with the shipped lines)
    expect(crashed.status).toBe(1);
    expect(crashed.stdout).toMatch(
      /^INCOMPLETE: .*: [\d,]+ records are not signed yet by .*; nothing was tampered with\n/,
    );
    expect(crashed.stdout).toMatch(
      /\n {2}signed through record [\d,]+ \(checkpoint \d+, \d{4}-\d\d-\d\dT[\d:.]+Z\); open: no trailer yet/,
    );
    expect(crashed.stdout).toMatch(/\n {2}lines? [\d-]+: unsigned \(after the last record the sidecar covers\)/);

    svc = t.service(); // Restart=on-failure
    await until('resumed and signing', () => shippedLines(t.shipped) >= 6);
    const rotate = localize(block('sh', 'mv /var/log/app.log'), t.root);
    expect(t.sh(rotate, { APP_PID: String(app.child.pid) }).status).toBe(0);
    await until('the old sidecar set aside', () => existsSync(`${t.log}-${today}.mac`));
    await until('signing the new file', () => existsSync(`${t.log}.mac`) && shippedLines(t.shipped) >= 9);
    await app.stop();
    await sleep(300);
    svc.child.kill('SIGTERM');
    expect(await svc.exited).toBe(0);

    expect(t.sh(localize(inShort[2]!, t.root)).status).toBe(0); // the live log, with its shipped checkpoints
    const rotated = t.sh(localize(block('sh', 'kms-hmac verify /var/log/app.log-2026'), t.root));
    expect([rotated.status, rotated.stderr]).toEqual([0, '']);
    expect(rotated.stdout).toMatch(/^OK: .* records verified/);
    expect(t.sh(`gzip "${t.log}-${today}"`).status).toBe(0); // logrotate's delayed compress, then the zcat line
    const zcat = t.sh(localize(block('sh', 'zcat'), t.root));
    expect([zcat.status, zcat.stderr]).toEqual([0, '']);
  });

  it('the copytruncate steps as shown: a new segment, the copy verifies except what copytruncate lost', {
    timeout: 120_000,
  }, async () => {
    const t = setup('copytruncate');
    unitSetup(t);
    writeFileSync(t.log, '');
    const app = t.app();
    const svc = t.service();
    await until('checkpoints shipped', () => shippedLines(t.shipped) >= 3);
    expect(t.sh(localize(block('sh', 'truncate -s 0'), t.root)).status).toBe(0);
    await until('the old sidecar set aside', () => existsSync(`${t.log}-${today}.mac`));
    await app.stop();
    await sleep(300);
    svc.child.kill('SIGTERM');
    expect(await svc.exited).toBe(0);
    const copy = t.sh(`${localize(block('sh', 'kms-hmac verify /var/log/app.log-2026'), t.root).trim()} --json`);
    const report = JSON.parse(copy.stdout);
    const kinds = Object.entries(report.counts as Record<string, number>)
      .filter(([, n]) => n > 0)
      .map(([k]) => k);
    expect(
      kinds.every((k) => k === 'log-truncated' || k === 'unsigned'),
      JSON.stringify(report.issues),
    ).toBe(true);
    expect(report.verified).toBeGreaterThan(0);
    expect(t.sh(localize(inShort[2]!, t.root)).status).toBe(0);
    expect(readdirSync(join(t.root, 'var/log')).sort()).toEqual(
      ['app.log', 'app.log.mac', `app.log-${today}`, `app.log-${today}.mac`].sort(),
    );
  });

  it.skipIf(!tool('systemd-analyze'))('the systemd unit passes systemd-analyze verify', () => {
    const dir = join(tmp, 'unit');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'kms-hmac-app.service');
    writeFileSync(
      file,
      unit(dir).text.replace(
        /^ExecStart=.*$/m,
        `ExecStart=${process.execPath} ${BIN} sign --follow ${dir}/app.log --key-id alias/logs`,
      ),
    );
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
  });

  it.skipIf(!tool('logrotate'))('the logrotate configurations pass logrotate -d', () => {
    const configs = blocks.filter((b) => b.lang === '' && b.text.includes('/var/log/app.log {'));
    expect(configs.length).toBe(2);
    configs.forEach((c, i) => {
      const root = join(tmp, `logrotate${i}`);
      mkdirSync(join(root, 'var/log'), { recursive: true });
      writeFileSync(join(root, 'var/log/app.log'), 'x\n');
      // The page's `create 0640 app app` names the application's account, which this machine may not have.
      const owner = `${userInfo().username} ${spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim()}`;
      writeFileSync(join(root, 'conf'), localize(c.text, root).replace(/(create \d+) app app/, `$1 ${owner}`));
      const r = spawnSync('logrotate', ['-d', '-s', join(root, 'state'), join(root, 'conf')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    });
  });
});
