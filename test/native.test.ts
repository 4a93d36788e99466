/**
 * The addon called directly, without the MacKey façade in front: it must
 * check every argument itself and answer bad input with TypeError/RangeError,
 * never an abort. It takes single messages and packed batches only.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadNativeBinding, type NativeBinding } from '../src/backend/native.js';

const binding: NativeBinding = loadNativeBinding();

describe('native addon exports', () => {
  it('reports OpenSSL 3.x and the digest and block sizes', () => {
    expect(binding.opensslVersion).toMatch(/^OpenSSL 3\./);
    expect(binding.opensslVersionNumber >>> 28).toBe(3);
    expect(binding.opensslVersion).toContain(process.versions.openssl);
    expect(binding.macLengths).toEqual([28, 32, 48, 64]);
    expect(binding.blockLengths).toEqual([64, 64, 128, 128]);
    expect(binding.asyncThreads).toBeGreaterThanOrEqual(1);
  });

  it('loading from a directory without a build is a catchable error', () => {
    expect(() => loadNativeBinding('/nonexistent-kms-hmac-dir')).toThrow();
  });
});

describe('native addon rejects bad input by itself', () => {
  const key = new binding.Key(1, new Uint8Array(32));
  const message = new Uint8Array(8);
  const out = new Uint8Array(64);
  const junk: unknown[] = [undefined, null, 1, 'x', {}, [], new Uint32Array(2), new ArrayBuffer(2), Symbol('s'), () => 0];

  it('constructor', () => {
    for (const bad of [undefined, -1, 4, 1.5, NaN, '1']) {
      expect(() => new binding.Key(bad as never, message)).toThrow(/algorithm/);
    }
    for (const bad of junk) expect(() => new binding.Key(0, bad as never)).toThrow(TypeError);
  });

  it('single and batch calls', () => {
    for (const bad of junk) {
      expect(() => key.macInto(bad as never, out, 0)).toThrow(TypeError);
      expect(() => key.macInto(message, bad as never, 0)).toThrow();
      expect(() => key.verify(message, bad as never)).toThrow(TypeError);
      if (!(bad instanceof Uint32Array)) expect(() => key.macPackedInto(message, bad as never, out)).toThrow(TypeError);
      expect(() => key.verifyPackedInto(message, new Uint32Array([0, 8]), bad as never, out)).toThrow(/macs/);
    }
    expect(() => key.macInto(message, out, -1)).toThrow(RangeError);
    expect(() => key.macInto(message, out, 33)).toThrow(RangeError);
    expect(() => key.macInto(message, out, Number.MAX_SAFE_INTEGER)).toThrow(RangeError);
    expect(() => key.macPackedInto(message, new Uint32Array([0, 9]), out)).toThrow(RangeError);
    expect(() => key.macPackedInto(message, new Uint32Array([4, 2]), out)).toThrow(RangeError);
    expect(() => key.macPackedInto(message, new Uint32Array(0), out)).toThrow(RangeError);
    expect(() => key.macPackedInto(message, new Uint32Array([0, 1, 2, 3]), new Uint8Array(95))).toThrow(RangeError);
    expect(() => key.verifyPackedInto(message, new Uint32Array([0, 8]), new Uint8Array(31), out)).toThrow(RangeError);
    expect(() => key.verifyPackedInto(message, new Uint32Array([0, 8]), out, new Uint8Array(0))).toThrow(RangeError);
  });

  it('the array forms are gone: native code never walks a JS array', () => {
    const methods = Object.getOwnPropertyNames(binding.Key.prototype).sort();
    expect(methods).toEqual(
      ['constructor', 'destroy', 'macInto', 'macPackedAsync', 'macPackedInto', 'verify', 'verifyPackedAsync', 'verifyPackedInto'].sort(),
    );
  });

  it('shared and detached buffers', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(8));
    expect(() => key.macInto(shared, out, 0)).toThrow(/SharedArrayBuffer/);
    expect(() => key.macInto(message, new Uint8Array(new SharedArrayBuffer(64)), 0)).toThrow(/SharedArrayBuffer/);
    expect(() => key.macPackedInto(message, new Uint32Array(new SharedArrayBuffer(8)), out)).toThrow(/SharedArrayBuffer/);
    const buffer = new ArrayBuffer(8);
    const view = new Uint8Array(buffer);
    structuredClone(buffer, { transfer: [buffer] });
    expect(() => key.macInto(view, out, 0)).toThrow(/message is backed by a detached/);
    expect(() => key.macPackedInto(message, new Uint32Array([0, 8]), view)).toThrow(/out is backed by a detached/);
  });

  it('async calls never throw: bad arguments reject', async () => {
    await expect(key.macPackedAsync(message, new Uint32Array([0, 9]))).rejects.toThrow(RangeError);
    await expect(key.macPackedAsync(message, [0, 8] as never)).rejects.toThrow(TypeError);
    await expect(key.verifyPackedAsync(message, new Uint32Array([0, 8]), new Uint8Array(1))).rejects.toThrow(RangeError);
    await expect(key.macPackedAsync(message, new Uint32Array([0, 8]), new Uint8Array(31))).rejects.toThrow(RangeError);
  });

  it('a destroyed key refuses work', () => {
    const doomed = new binding.Key(3, new Uint8Array(3));
    doomed.destroy();
    expect(() => doomed.macInto(message, out, 0)).toThrow(/destroyed/);
    return expect(doomed.macPackedAsync(message, new Uint32Array([0, 8]))).rejects.toThrow(/destroyed/);
  });
});

/**
 * The addon's own thread pool against the life cycle of Node.js
 * environments: a pending batch keeps the process alive, an idle pool does
 * not, and an environment that goes away with batches in flight (process
 * exit, worker.terminate()) never crashes the process.
 */
describe('async batches and environment life cycle', () => {
  const ROOT = fileURLToPath(new URL('..', import.meta.url));
  // Each script gets `binding` and a large `data`/`offsets` batch.
  const prelude = `
    const binding = require('node-gyp-build')(process.cwd());
    const count = 200000, size = 64;
    const data = new Uint8Array(count * size).fill(7);
    const offsets = new Uint32Array(count + 1).map((_, i) => i * size);
    const key = new binding.Key(1, new Uint8Array(32).fill(1));
  `;
  const run = (script: string) =>
    spawnSync(process.execPath, ['-e', prelude + script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const lastMac = createHmac('sha256', new Uint8Array(32).fill(1)).update(new Uint8Array(64).fill(7)).digest('hex');

  it('a pending batch keeps the process alive; the idle pool lets it exit', () => {
    const r = run(`key.macPackedAsync(data, offsets).then((out) =>
      console.log(Buffer.from(out.subarray(out.length - 32)).toString('hex')));`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(lastMac);
  });

  it('process.exit() with batches in flight', () => {
    const r = run(`for (let i = 0; i < 4; i++) key.macPackedAsync(data, offsets); setImmediate(() => process.exit(3));`);
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(3);
  });

  it('worker.terminate() with batches in flight, then more batches on the main thread', () => {
    const r = run(`
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(${JSON.stringify(prelude)} + \`
        const { parentPort } = require('node:worker_threads');
        for (let i = 0; i < 4; i++) key.macPackedAsync(data, offsets);
        parentPort.postMessage('started');\`, { eval: true, env: process.env });
      worker.on('message', async () => {
        await worker.terminate();
        const out = await key.macPackedAsync(data, offsets);
        console.log(Buffer.from(out.subarray(out.length - 32)).toString('hex'));
      });`);
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(lastMac);
  });
});
