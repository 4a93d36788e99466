/**
 * Forward-secure streams (issue 22): `sign --follow --forward-secure` as a
 * service runs it (the built CLI in a child process), killed and restarted;
 * its key epochs; what an intruder who takes the host over after an epoch
 * change holds — the key store and its passphrase, the sidecar, every file
 * of the signer, the signer's whole memory — and that none of it makes a
 * sidecar for an earlier epoch that `verify --checkpoints` accepts; and the
 * seed made by a remote KMS (a real `kms-hmac serve`), one GenerateMac per
 * stream.
 */
import { random } from './support/random.js';
import {
  appendFileSync,
  closeSync,
  copyFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMacKey } from '../src/mac/key.js';
import { anchorLine, parseAnchor, type Anchor } from '../src/logs/anchors.js';
import { engineFromMacKey, type MacEngine } from '../src/logs/engine.js';
import { followLog } from '../src/logs/follow.js';
import { verifyLog } from '../src/logs/verify.js';
import { runCli, type CliRun } from './cli-run.js';
import { blocks, epochKey } from './log-oracle.js';
import { BIN, WRITER, jsonLines, sleep, start, until, type Proc } from './log-procs.js';
import { CRED, startServe, stopServe } from './server-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-fs-'));
const PASSPHRASE = 'forward secure test passphrase';
const env = { KMS_HMAC_KEYSTORE: join(dir, 'keystore.db'), KMS_HMAC_PASSPHRASE_FILE: join(dir, 'passphrase') };
const p = (n: string) => join(dir, n);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (args: string[]): Promise<CliRun> => runCli(args, { cwd: dir, env });
const material = random.bytes(32);
let engine: MacEngine;

beforeAll(async () => {
  writeFileSync(env.KMS_HMAC_PASSPHRASE_FILE, `${PASSPHRASE}\n`, { mode: 0o600 });
  const created = await cli([
    'keys',
    'create',
    '--key-spec',
    'HMAC_256',
    '--origin',
    'EXTERNAL',
    '--alias',
    'alias/fs',
  ]);
  const md = JSON.parse(created.stdout).KeyMetadata;
  expect((await cli(['keys', 'import', '--key-id', md.KeyId, '--material-hex', material.toString('hex')])).code).toBe(
    0,
  );
  engine = engineFromMacKey(createMacKey('HMAC_SHA_256', material), md.Arn, 'HMAC_SHA_256');
});

const writer = (log: string) => start(WRITER, [log, '--line', '100', '--burst', '10', '--every', '5'], dir);
const follower = (log: string, shipped: string, ...args: string[]) =>
  start(
    BIN,
    [
      'sign',
      '--follow',
      log,
      '--key-id',
      'alias/fs',
      '--json',
      '--forward-secure',
      '--checkpoint-every',
      '200',
      '--checkpoints-out',
      shipped,
      ...args,
    ],
    dir,
    env,
  );
const checkpoints = (f: Proc) => jsonLines(f).filter((e) => e.event === 'checkpoint');
const signedBy = (f: Proc) => (checkpoints(f).at(-1)?.records as number | undefined) ?? 0;
const shippedLines = (path: string): Anchor[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => parseAnchor(l))
    .filter((a): a is Anchor => a !== null);

async function verify(log: string, shipped: string, ...args: string[]) {
  const r = await cli(['verify', log, '--key-id', 'alias/fs', '--checkpoints', shipped, '--json', ...args]);
  return { code: r.code, report: r.stdout ? JSON.parse(r.stdout) : null, stderr: r.stderr };
}

describe('sign --follow --forward-secure', () => {
  it('kill -9 at random moments and restart: each restart a new stream in the same sidecar, chained; every checkpointed record verifies with the shipped checkpoints', {
    timeout: 300_000,
  }, async () => {
    const log = p('kill.log');
    const shipped = p('kill.jsonl');
    writeFileSync(log, '');
    const w = writer(log);
    let signed = 0;
    const kills = 8;
    for (let i = 0; i < kills; i++) {
      const f = follower(log, shipped, '--checkpoint-interval', '0.1', '--epoch', '0.3s');
      await until('started', () => jsonLines(f).some((e) => e.event === 'start'));
      await sleep(100 + random.int(400));
      f.child.kill('SIGKILL');
      await f.exited;
      const r = await verifyLog(log, `${log}.mac`, { engine, checkpoints: shipped, maxGapMs: 600_000 });
      expect(r.tampered, `kill ${i}: ${JSON.stringify(r.issues.slice(0, 3))}`).toBe(false);
      expect(r.verified, `kill ${i}`).toBe(r.signedRecords);
      expect(r.signedRecords, `kill ${i}: nothing signed is lost`).toBeGreaterThanOrEqual(signed);
      expect(r.keys).toBe('forward-secure');
      signed = r.signedRecords;
    }
    w.child.kill('SIGTERM');
    await w.exited;
    const lines = JSON.parse(w.out[0]!).lines as number;
    const last = follower(log, shipped, '--checkpoint-interval', '0.1', '--epoch', '0.3s');
    await until('all signed', () => signedBy(last) >= lines);
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    const v = await verify(log, shipped, '--max-gap', '600');
    expect(v.code, JSON.stringify(v.report?.issues)).toBe(0);
    expect(v.report).toMatchObject({ ok: true, closed: true, records: lines, verified: lines, keys: 'forward-secure' });
    expect(v.report.streams.length).toBeGreaterThan(1); // one stream per restart that signed something
    const epochs = shippedLines(shipped)
      .filter((a) => a.type === 'checkpoint')
      .map((a) => a.epoch ?? 0);
    expect(Math.max(...epochs)).toBeGreaterThan(0);
  });

  it('kill -9, restart, verify with the default maximum gap: exit 0', async () => {
    const log = p('once.log');
    const shipped = p('once.jsonl');
    writeFileSync(log, 'first\n');
    const a = follower(log, shipped, '--checkpoint-interval', '3');
    await until('a checkpoint', () => checkpoints(a).length >= 1);
    appendFileSync(log, 'second\n');
    await sleep(200);
    a.child.kill('SIGKILL');
    await a.exited;
    appendFileSync(log, 'third\n');
    const b = follower(log, shipped, '--checkpoint-interval', '3');
    await until('restarted as a new stream', () => jsonLines(b).some((e) => e.event === 'start' && e.restart === true));
    await until('signed', () => signedBy(b) >= 3);
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    const v = await verify(log, shipped);
    expect([v.code, v.report.issues]).toEqual([0, []]);
    expect(v.report.records).toBe(3);
  });

  it('without --checkpoints-out: refused (the nonce would have nowhere to go); verify without --checkpoints: refused', async () => {
    writeFileSync(p('nosink.log'), 'x\n');
    const r = await cli(['sign', '--follow', 'nosink.log', '--key-id', 'alias/fs', '--forward-secure']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--forward-secure needs --checkpoints-out/);
    expect(
      (await cli(['sign', 'nosink.log', '--key-id', 'alias/fs', '--forward-secure', '--checkpoints-out', 'ns.jsonl']))
        .code,
    ).toBe(0);
    const v = await cli(['verify', 'nosink.log', '--key-id', 'alias/fs']);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(
      /forward-secure: its keys are derived from a nonce that only its shipped checkpoints hold/,
    );
    expect((await cli(['verify', 'nosink.log', '--key-id', 'alias/fs', '--checkpoints', 'ns.jsonl'])).code).toBe(0);
  });
});

/** SHA-256's state after one block (what an HMAC key handle holds for key ^ ipad or key ^ opad), as little- and big-endian words. */
function midstates(key: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (const pad of [0x36, 0x5c]) {
    const block = Buffer.alloc(64, pad);
    for (let i = 0; i < key.length; i++) block[i] = key[i]! ^ pad;
    const h = sha256.create();
    h.update(block);
    const words = (h as unknown as { get(): number[] }).get();
    const le = Buffer.alloc(32);
    const be = Buffer.alloc(32);
    words.forEach((w, i) => {
      le.writeUInt32LE(w >>> 0, i * 4);
      be.writeUInt32BE(w >>> 0, i * 4);
    });
    out.push(le, be);
  }
  return out;
}

/** Every readable byte of a (stopped) process's memory, region by region. */
function* memoryOf(pid: number): Generator<Buffer> {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const m of maps) {
      const [range, perms, , , , name] = m.split(/\s+/);
      if (!perms!.startsWith('r') || name === '[vvar]' || name === '[vsyscall]') continue;
      const [lo, hi] = range!.split('-').map((x) => Number.parseInt(x, 16));
      for (let at = lo!; at < hi!; at += 64 << 20) {
        const buf = Buffer.alloc(Math.min(64 << 20, hi! - at) + 64);
        let n = 0;
        try {
          n = readSync(fd, buf, 0, buf.length - 64, at);
        } catch {
          break; // (a region that cannot be read: not memory the process can use either)
        }
        yield buf.subarray(0, n);
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('forward security: the whole host state after an epoch change', () => {
  it('holds no earlier epoch key, seed or nonce (memory, disk), and nothing it holds forges an earlier epoch', {
    timeout: 180_000,
  }, async () => {
    const log = p('fs.log');
    const shipped = p('fs.jsonl');
    writeFileSync(log, '');
    const w = writer(log);
    const f = follower(log, shipped, '--checkpoint-interval', '0.1', '--epoch', '0.5s');
    await until('epoch 3', () => checkpoints(f).some((e) => (e.epoch as number) >= 3), 60_000);
    await sleep(150); // an epoch key just destroyed is wiped at once: no grace period for it to linger in
    f.child.kill('SIGSTOP');
    const lines = shippedLines(shipped);
    const stream = lines.find((a) => a.type === 'stream')!;
    const sid = Buffer.from(stream.streamId, 'hex');
    const nonce = Buffer.from(stream.nonce as string, 'hex');
    const current = Math.max(...lines.filter((a) => a.type === 'checkpoint').map((a) => a.epoch ?? 0));
    expect(current).toBeGreaterThanOrEqual(3);

    // what must be gone: every seed, ratchet state and MAC key of the epochs before the current one (as bytes, and as
    // the hash states a key handle holds), and the nonce that, with the KMS key, would re-derive them all
    const secrets: { what: string; bytes: Buffer }[] = [{ what: 'the nonce', bytes: nonce }];
    for (let e = 0; e < current; e++) {
      const k = epochKey(material, sid, nonce, e);
      for (const [name, bytes] of [
        [`S${e}`, k.state],
        [`K${e}`, k.key],
      ] as const) {
        secrets.push({ what: name, bytes });
        for (const m of midstates(bytes)) secrets.push({ what: `${name}'s HMAC state`, bytes: m });
      }
    }
    // the check itself can find a secret: the current epoch's key is in memory, as it must be
    const live = epochKey(material, sid, nonce, current);
    let liveFound = false;
    const found = new Set<string>();
    let scanned = 0;
    for (const region of memoryOf(f.child.pid!)) {
      scanned += region.length;
      for (const s of secrets) if (region.includes(s.bytes)) found.add(s.what);
      if (midstates(live.key).some((m) => region.includes(m))) liveFound = true;
    }
    f.child.kill('SIGKILL');
    await f.exited;
    await new Promise<void>((r) => {
      w.child.kill('SIGTERM');
      void w.exited.then(() => r());
    });
    expect(scanned).toBeGreaterThan(10 << 20);
    expect(liveFound).toBe(true);
    expect([...found]).toEqual([]);

    // the host's disk: the key store, the passphrase, the log, the sidecar, and every other file the signer left
    const diskSecrets = [
      nonce,
      nonce.toString('hex'),
      nonce.toString('base64'),
      epochKey(material, sid, nonce, 0).seed,
    ];
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.jsonl') || !statSync(p(name)).isFile()) continue; // (the sinks: off the host)
      const bytes = readFileSync(p(name));
      for (const s of diskSecrets) expect(bytes.includes(s), `${name} holds a secret`).toBe(false);
    }

    // the intruder's attempts on the earlier epochs, with everything above: each is caught
    const good = await verify(log, shipped, '--max-gap', '600'); // untouched: what the killed signer left
    expect(good.report.tampered, JSON.stringify(good.report?.issues)).toBe(false);
    expect(good.report.verified).toBe(good.report.signedRecords);
    const sc = readFileSync(`${log}.mac`);
    const b = blocks(sc);
    const epoch0 = b.filter((x) => x.epoch === 0).at(-1)!;
    const text = readFileSync(log);
    const edited = Buffer.from(text);
    edited[10] ^= 0x20; // a record of epoch 0

    // 1. the record edited and its MAC, and every checkpoint after it, made again with the key in hand (epoch n's)
    const forged = Buffer.from(sc);
    const kN = createMacKey('HMAC_SHA_256', live.key);
    const recMac = (seq: number, rec: Buffer) => {
      const input = Buffer.concat([sid, Buffer.alloc(8), Buffer.from([0]), rec]);
      input.writeBigUInt64BE(BigInt(seq), 16);
      return Buffer.from(kN.mac(input));
    };
    const firstLine = edited.subarray(0, edited.indexOf(10) + 1);
    recMac(0, firstLine).copy(forged, b[0]!.at + 112);
    writeFileSync(p('forged1.log'), edited);
    writeFileSync(p('forged1.log.mac'), forged);
    const r1 = await verify(p('forged1.log'), shipped, '--max-gap', '600');
    expect(r1.code).toBe(1);
    expect(r1.report.tampered).toBe(true);

    // 2. the edited log signed afresh in its place, forward-secure, with the KMS key (key store + passphrase), shipped to
    //    the sink too
    copyFileSync(shipped, p('fs2.jsonl'));
    writeFileSync(log, edited);
    expect(
      (await cli(['sign', 'fs.log', '--key-id', 'alias/fs', '--forward-secure', '--checkpoints-out', 'fs2.jsonl']))
        .code,
    ).toBe(0);
    const r2 = await verify(log, p('fs2.jsonl'), '--max-gap', '600');
    expect(r2.code).toBe(1);
    expect(r2.report.issues.find((i: { kind: string }) => i.kind === 'fork')?.message).toMatch(/at the same path/);

    // 3. the log and sidecar cut at the end of epoch 0, edited after it, and continued by a signer of the intruder's
    //    (a new stream chained to epoch 0's last checkpoint, its nonce shipped to the sink)
    copyFileSync(shipped, p('fs3.jsonl'));
    const cutLog = Buffer.concat([text.subarray(0, epoch0.logBytes), Buffer.from('forged after epoch 0\n')]);
    writeFileSync(p('forged3.log'), cutLog);
    writeFileSync(p('forged3.log.mac'), sc.subarray(0, epoch0.end));
    const intruder = follower(p('forged3.log'), p('fs3.jsonl'), '--checkpoint-interval', '0.1');
    await until('the intruder signed', () => signedBy(intruder) > epoch0.records);
    intruder.child.kill('SIGTERM');
    expect(await intruder.exited).toBe(0);
    const r3 = await verify(p('forged3.log'), p('fs3.jsonl'), '--max-gap', '600');
    expect(r3.code).toBe(1);
    expect(r3.report.counts.fork, JSON.stringify(r3.report.issues)).toBeGreaterThanOrEqual(1);

    // 4. the pair cut at the end of epoch 0 and left at that
    writeFileSync(p('forged4.log'), text.subarray(0, epoch0.logBytes));
    writeFileSync(p('forged4.log.mac'), sc.subarray(0, epoch0.end));
    const r4 = await verify(p('forged4.log'), shipped, '--max-gap', '600');
    expect(r4.code).toBe(1);
    expect(r4.report.counts['anchor-missing']).toBe(1);
    kN.destroy();
  });
});

describe('the seed made by a remote KMS: kms-hmac serve', () => {
  it('followLog and verifyLog with a KMSClient at the endpoint: one GenerateMac per stream, none per record', {
    timeout: 120_000,
  }, async () => {
    const home = mkdtempSync(join(dir, 'serve-'));
    const store = join(home, 'serve.db');
    const serve = await startServe(['--keystore', store], home, { KMS_HMAC_PASSPHRASE: PASSPHRASE });
    const kmsClient = new KMSClient({ endpoint: serve.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
    try {
      const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
      const key = await kmsClient.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
      const keyId = key.KeyMetadata!.Arn!;
      const calls: Record<string, number> = {};
      const kms = {
        send: (command: { constructor: { name: string } }, ...rest: unknown[]) => {
          calls[command.constructor.name] = (calls[command.constructor.name] ?? 0) + 1;
          return kmsClient.send(command as GenerateMacCommand, ...(rest as []));
        },
      };
      const log = join(home, 'remote.log');
      const shipped = join(home, 'remote.jsonl');
      writeFileSync(log, Array.from({ length: 20_000 }, (_, i) => `record ${i}\n`).join(''));
      const ac = new AbortController();
      const out: string[] = [];
      const done = followLog(log, {
        kms,
        keyId,
        forwardSecure: true,
        epochMs: 200,
        checkpointIntervalMs: 50,
        signal: ac.signal,
        onCheckpoint: (a) => {
          out.push(anchorLine(a));
        },
      });
      await until('signed', () => out.some((l) => l.includes('"records":20000')));
      appendFileSync(log, 'one more\n');
      await sleep(600); // more epochs
      ac.abort();
      const s = await done;
      expect(s.records).toBe(20_001);
      writeFileSync(shipped, out.join(''));
      expect(calls.GenerateMacCommand).toBe(1); // the stream's seed
      expect(calls.VerifyMacCommand ?? 0).toBe(0);
      const epochs = out
        .map((l) => parseAnchor(l)!)
        .filter((a) => a.type === 'checkpoint')
        .map((a) => a.epoch!);
      expect(Math.max(...epochs)).toBeGreaterThan(1);

      const r = await verifyLog(log, `${log}.mac`, { kms, keyId, checkpoints: shipped, maxGapMs: 60_000 });
      expect(r.issues).toEqual([]);
      expect(r).toMatchObject({ ok: true, records: 20_001, keys: 'forward-secure' });
      expect(calls.GenerateMacCommand).toBe(2); // and one to re-derive them
      // a record changed is found, by line, as with any sidecar
      const text = readFileSync(log);
      text[text.indexOf('record 777')] = 0x52;
      writeFileSync(join(home, 'changed.log'), text);
      const bad = await verifyLog(join(home, 'changed.log'), `${log}.mac`, {
        kms,
        keyId,
        checkpoints: shipped,
        maxGapMs: 60_000,
      });
      expect(bad.issues.map((i) => [i.kind, i.line])).toEqual([['modified', 778]]);
      // a kms-keyed sidecar cannot be signed through a remote KMS: record by record would be a request each
      writeFileSync(join(home, 'x.log'), 'x\n');
      await expect(followLog(join(home, 'x.log'), { kms, keyId, signal: AbortSignal.abort() })).rejects.toThrow(
        /forward-secure streams only/,
      );
    } finally {
      kmsClient.destroy();
      await stopServe(serve);
    }
  });
});
