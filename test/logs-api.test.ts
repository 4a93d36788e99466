/**
 * The log API's boundary: what counts as a log (a path is a path, never
 * content), which key a verifier trusts (only the one it is given), and how
 * the sidecar reaches the disk (an exclusive temporary file, never through a
 * planted symlink).
 */
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { createMacKey } from '../src/mac/key.js';
import { createTemp, openExclusive } from '../src/logs/atomic-file.js';
import { engineFromMacKey } from '../src/logs/engine.js';
import { signLog } from '../src/logs/sign.js';
import { verifyLog } from '../src/logs/verify.js';
import { random } from './support/random.js';

const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-logs-api-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const p = (n: string) => join(dir, n);

const ARN_A = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-00000000000a';
const ARN_B = 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-00000000000b';
const engine = engineFromMacKey(createMacKey('HMAC_SHA_256', random.bytes(32)), ARN_A, 'HMAC_SHA_256');
const engineB = engineFromMacKey(createMacKey('HMAC_SHA_256', random.bytes(32)), ARN_B, 'HMAC_SHA_256');

const LOG = Buffer.from('one\ntwo\nthree\n');
writeFileSync(p('app.log'), LOG);

describe('a log is a path (string or URL), bytes, a byte stream or an async iterable of bytes', () => {
  it('every form signs and verifies the same content', async () => {
    async function* gen() {
      yield LOG.subarray(0, 5);
      yield new Uint8Array(LOG.subarray(5)); // a plain Uint8Array chunk
    }
    const forms: [string, () => unknown][] = [
      ['path string', () => p('app.log')],
      ['file URL', () => pathToFileURL(p('app.log'))],
      ['Buffer', () => LOG],
      ['Uint8Array', () => new Uint8Array(LOG)],
      ['Readable', () => Readable.from([LOG])],
      ['async generator', () => gen()],
    ];
    for (const [name, signInput] of forms) {
      const sc = p(`form-${name.replace(/ /g, '-')}.mac`);
      const s = await signLog(signInput() as never, sc, { engine });
      expect(s.records, name).toBe(3);
      for (const [other, verifyInput] of forms) {
        const r = await verifyLog(verifyInput() as never, pathToFileURL(sc), { engine });
        expect(r.ok, `${name} signed, ${other} verified`).toBe(true);
      }
    }
  });

  it('a path is never taken as content: verifyLog(path) checks the file, whatever the path string says', async () => {
    // signLog/verifyLog once signed the bytes of the path string itself (fixed in 0.2.0, CHANGELOG.md)
    const sc = p('path-attack.mac');
    await signLog(p('app.log'), sc, { engine });
    writeFileSync(p('app-edited.log'), 'one\nTWO\nthree\n');
    const r = await verifyLog(p('app-edited.log'), sc, { engine });
    expect(r.ok).toBe(false);
    expect(r.issues.map((i) => [i.kind, i.line])).toEqual([['modified', 2]]);
    await expect(signLog(p('does-not-exist.log'), p('x.mac'), { engine })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(verifyLog(p('does-not-exist.log'), sc, { engine })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('anything else is a TypeError, and so is a chunk that is not bytes', async () => {
    const bad: unknown[] = [undefined, null, 42, '', {}, [LOG], new ArrayBuffer(4), new Set([LOG]), () => LOG];
    for (const input of bad) {
      await expect(signLog(input as never, p('bad.mac'), { engine }), String(input)).rejects.toThrow(TypeError);
      await expect(verifyLog(input as never, p('form-Buffer.mac'), { engine })).rejects.toThrow(TypeError);
    }
    await expect(signLog(Readable.from(['text chunk']), p('bad.mac'), { engine })).rejects.toThrow(
      /must be a Uint8Array/,
    );
    await expect(signLog(LOG, 42 as never, { engine })).rejects.toThrow(/sidecar must be a file path/);
    await expect(verifyLog(LOG, '' as never, { engine })).rejects.toThrow(TypeError);
    expect(existsSync(p('bad.mac'))).toBe(false);
  });
});

describe('the verifier trusts only the key it is told to trust', () => {
  it('no key named: TypeError (the sidecar never chooses the key)', async () => {
    const sc = p('pin.mac');
    await signLog(LOG, sc, { engine });
    await expect(verifyLog(LOG, sc, {} as never)).rejects.toThrow(/name the key/);
    await expect(verifyLog(LOG, sc, undefined as never)).rejects.toThrow(TypeError);
    await expect(verifyLog(LOG, sc, { client: new KmsHmacClient() } as never)).rejects.toThrow(/keyId/);
    await expect(signLog(LOG, sc, {} as never)).rejects.toThrow(TypeError);
  });

  it('a sidecar made with another key is wrong-key, naming both keys; nothing else is checked', async () => {
    const sc = p('other-key.mac');
    await signLog(Buffer.from('one\nTWO\nthree\n'), sc, { engine: engineB });
    const r = await verifyLog(LOG, sc, { engine });
    expect(r.ok).toBe(false);
    expect(r.issues.map((i) => i.kind)).toEqual(['wrong-key']);
    expect(r.issues[0]!.message).toContain(`made with key ${ARN_B}`);
    expect(r.issues[0]!.message).toContain(`not the expected key ${ARN_A}`);
    expect(r.verified).toBe(0);
  });

  it('through the KMS client: keyId by alias, the algorithm taken from the sidecar', async () => {
    const client = new KmsHmacClient();
    const a = (await client.createKey({ KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata;
    const b = (await client.createKey({ KeySpec: 'HMAC_384', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata;
    await client.createAlias({ AliasName: 'alias/a', TargetKeyId: a.KeyId });
    const sc = p('client.mac');
    await signLog(LOG, sc, { client, keyId: 'alias/a' });
    expect((await verifyLog(LOG, sc, { client, keyId: 'alias/a' })).ok).toBe(true);
    expect((await verifyLog(LOG, sc, { client, keyId: a.Arn })).ok).toBe(true);
    const wrong = await verifyLog(LOG, sc, { client, keyId: b.KeyId });
    expect(wrong.issues.map((i) => i.kind)).toEqual(['wrong-key']);
    await client.close();
  });
});

describe('the sidecar is written through an exclusive temporary file', () => {
  it('openExclusive refuses anything already there: a file, a symlink, a dangling symlink', async () => {
    writeFileSync(p('victim'), 'precious');
    symlinkSync(p('victim'), p('link'));
    symlinkSync(p('nowhere'), p('dangling'));
    writeFileSync(p('plain'), 'x');
    for (const name of ['link', 'dangling', 'plain']) {
      await expect(openExclusive(p(name))).rejects.toMatchObject({ code: 'EEXIST' });
    }
    expect(readFileSync(p('victim'), 'utf8')).toBe('precious');
    expect(existsSync(p('nowhere'))).toBe(false);
  });

  it('temporary names are random; a symlink planted at the sidecar path is replaced, never followed', async () => {
    const a = await createTemp(p('t.mac'));
    const b = await createTemp(p('t.mac'));
    expect(a.path).not.toBe(b.path);
    await a.discard();
    await b.discard();

    writeFileSync(p('target-of-link'), 'must stay');
    symlinkSync(p('target-of-link'), p('planted.mac'));
    // the predictable name the old signer used, planted too
    symlinkSync(p('target-of-link'), p(`.planted.mac.${process.pid}.${Date.now()}.tmp`));
    await signLog(LOG, p('planted.mac'), { engine });
    expect(readFileSync(p('target-of-link'), 'utf8')).toBe('must stay');
    expect(lstatSync(p('planted.mac')).isSymbolicLink()).toBe(false);
    expect((await verifyLog(LOG, p('planted.mac'), { engine })).ok).toBe(true);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp') && !n.startsWith(`.planted.mac.${process.pid}`))).toEqual(
      [],
    );
  });

  it('a failed signing leaves no temporary file and no sidecar', async () => {
    const failing = { ...engine, macPacked: async () => Promise.reject(new Error('boom')) };
    await expect(signLog(LOG, p('failed.mac'), { engine: failing })).rejects.toThrow('boom');
    expect(readdirSync(dir).filter((n) => n.includes('failed.mac'))).toEqual([]);
  });
});
