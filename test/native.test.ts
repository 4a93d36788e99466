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
  const junk: unknown[] = [
    undefined,
    null,
    1,
    'x',
    {},
    [],
    new Uint32Array(2),
    new ArrayBuffer(2),
    Symbol('s'),
    () => 0,
  ];

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
      [
        'constructor',
        'destroy',
        'macInto',
        'macPackedAsync',
        'macPackedInto',
        'verify',
        'verifyPackedAsync',
        'verifyPackedInto',
      ].sort(),
    );
  });

  it('shared and detached buffers', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(8));
    expect(() => key.macInto(shared, out, 0)).toThrow(/SharedArrayBuffer/);
    expect(() => key.macInto(message, new Uint8Array(new SharedArrayBuffer(64)), 0)).toThrow(/SharedArrayBuffer/);
    expect(() => key.verify(message, new Uint8Array(new SharedArrayBuffer(32)))).toThrow(/SharedArrayBuffer/);
    expect(() => new binding.Key(1, shared)).toThrow(/keyMaterial must not be backed by a SharedArrayBuffer/);
    // The packed batch arguments may be shared memory (js_args.h): [0, 0] is one empty message.
    key.macPackedInto(message, new Uint32Array(new SharedArrayBuffer(8)), out);
    expect(Buffer.from(out.subarray(0, 32))).toEqual(createHmac('sha256', Buffer.alloc(32)).update('').digest());
    const buffer = new ArrayBuffer(8);
    const view = new Uint8Array(buffer);
    structuredClone(buffer, { transfer: [buffer] });
    expect(() => key.macInto(view, out, 0)).toThrow(/message is backed by a detached/);
    expect(() => key.macPackedInto(message, new Uint32Array([0, 8]), view)).toThrow(/out is backed by a detached/);
  });

  it('async calls never throw: bad arguments reject', async () => {
    await expect(key.macPackedAsync(message, new Uint32Array([0, 9]))).rejects.toThrow(RangeError);
    await expect(key.macPackedAsync(message, [0, 8] as never)).rejects.toThrow(TypeError);
    await expect(key.verifyPackedAsync(message, new Uint32Array([0, 8]), new Uint8Array(1))).rejects.toThrow(
      RangeError,
    );
    await expect(key.macPackedAsync(message, new Uint32Array([0, 8]), new Uint8Array(31))).rejects.toThrow(RangeError);
  });

  // The sanitizer build (npm run test:asan) compiles in a failure on a marked message (native/async_batch.cc).
  it.runIf(binding.faultInjection)('a failure while hashing an async batch rejects it; the pool goes on', async () => {
    const marker = Buffer.from('kms-hmac:fault-injection');
    const count = 8192;
    const data = Buffer.alloc(count * 64);
    for (let i = 0; i < count; i += 97) marker.copy(data, i * 64);
    const offsets = Uint32Array.from({ length: count + 1 }, (_, i) => i * 64);
    const faulty = new binding.Key(1, new Uint8Array(32));
    await expect(faulty.macPackedAsync(data, offsets)).rejects.toThrow(/failed on a worker thread/);
    await expect(faulty.verifyPackedAsync(data, offsets, new Uint8Array(count * 32))).rejects.toThrow(
      /failed on a worker thread/,
    );
    const clean = Buffer.alloc(count * 64, 7);
    const macs = await faulty.macPackedAsync(clean, offsets);
    expect(Buffer.from(macs.subarray(0, 32))).toEqual(
      createHmac('sha256', Buffer.alloc(32)).update(clean.subarray(0, 64)).digest(),
    );
    faulty.destroy();
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
    const r = run(
      `for (let i = 0; i < 4; i++) key.macPackedAsync(data, offsets); setImmediate(() => process.exit(3));`,
    );
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

  it('worker.terminate() while its batches read and write shared memory the main thread goes on using', () => {
    const r = run(`
      const { Worker } = require('node:worker_threads');
      const shared = new Uint8Array(new SharedArrayBuffer(data.length));
      shared.set(data);
      const sharedOffsets = new Uint32Array(new SharedArrayBuffer(offsets.byteLength));
      sharedOffsets.set(offsets);
      const out = new Uint8Array(new SharedArrayBuffer(count * 32));
      const worker = new Worker(${JSON.stringify(prelude)} + \`
        const { parentPort, workerData: { shared, sharedOffsets, out } } = require('node:worker_threads');
        for (let i = 0; i < 4; i++) key.macPackedAsync(shared, sharedOffsets, out);
        parentPort.postMessage('started');\`, { eval: true, env: process.env, workerData: { shared, sharedOffsets, out } });
      worker.on('message', async () => {
        await worker.terminate();
        out.fill(0);
        await key.macPackedAsync(shared, sharedOffsets, out);
        console.log(Buffer.from(out.subarray(out.length - 32)).toString('hex'));
      });`);
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(lastMac);
  });
});

/**
 * The async scheduler (native/async_batch.cc): a batch is copied unit by
 * unit while the pool threads hash the units already copied. Units are cut
 * by estimated work from the offsets alone, so shapes that stress the cut
 * (runs of empty messages, one message far longer than a unit) must still
 * give every message its own MAC.
 */
describe('async scheduler', () => {
  const ALGORITHMS = ['sha224', 'sha256', 'sha384', 'sha512'] as const;
  const MAC_LENGTHS = [28, 32, 48, 64];
  const material = new Uint8Array(48).map((_, i) => i * 7);

  function shapedBatch(seed: number) {
    const lengths: number[] = [];
    for (let i = 0; i < 400; i++) lengths.push(0); // a run of empty messages
    for (let i = 0; i < 1500; i++) lengths.push((i * 7919 + seed) % 1500);
    lengths.push(3 << 20); // far longer than a unit
    for (let i = 0; i < 1500; i++) lengths.push(i % 3 === 0 ? 0 : (i * 31 + seed) % 200);
    const offsets = new Uint32Array(lengths.length + 1);
    lengths.forEach((length, i) => (offsets[i + 1] = offsets[i]! + length));
    const data = new Uint8Array(offsets[lengths.length]!).map((_, i) => (i * 131 + seed) & 0xff);
    return { data, offsets, count: lengths.length };
  }

  it.each([0, 1, 2, 3])('%i: every message its own MAC, into fresh and into recycled memory', async (alg) => {
    const key = new binding.Key(alg, material);
    const { data, offsets, count } = shapedBatch(alg);
    const expected = Buffer.alloc(count * MAC_LENGTHS[alg]!);
    for (let i = 0; i < count; i++) {
      createHmac(ALGORITHMS[alg]!, material)
        .update(data.subarray(offsets[i], offsets[i + 1]))
        .digest()
        .copy(expected, i * MAC_LENGTHS[alg]!);
    }
    for (let round = 0; round < 3; round++) {
      const out = round === 2 ? new Uint8Array(expected.length) : undefined;
      const macs = await key.macPackedAsync(data, offsets, out);
      expect(Buffer.from(macs).equals(expected), `round ${round}`).toBe(true);
      const tampered = Uint8Array.from(expected);
      tampered[(count - 1) * MAC_LENGTHS[alg]!] ^= 1;
      const results = await key.verifyPackedAsync(data, offsets, tampered);
      expect(results.indexOf(0)).toBe(count - 1);
      expect(results.subarray(0, count - 1).every((r) => r === 1)).toBe(true);
    }
  });

  it('batches in flight together, of several keys and shapes, each settle with their own MACs', async () => {
    const keys = [0, 1, 2, 3].map((alg) => new binding.Key(alg, material));
    const batches = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => {
      const count = 500 + i * 700;
      const size = [16, 64, 300, 1024][i % 4]!;
      const offsets = new Uint32Array(count + 1).map((_, j) => j * size);
      const data = new Uint8Array(count * size).map((_, j) => (j * 17 + i) & 0xff);
      return { alg: i % 4, data, offsets, count, size };
    });
    const results = await Promise.all(batches.map((b) => keys[b.alg]!.macPackedAsync(b.data, b.offsets)));
    batches.forEach((b, i) => {
      const ml = MAC_LENGTHS[b.alg]!;
      for (const j of [0, b.count >> 1, b.count - 1]) {
        const mac = createHmac(ALGORITHMS[b.alg]!, material)
          .update(b.data.subarray(j * b.size, (j + 1) * b.size))
          .digest();
        expect(Buffer.from(results[i]!.subarray(j * ml, (j + 1) * ml)).equals(mac)).toBe(true);
      }
    });
  });

  it('small batches the calling thread ends itself, queued behind a large one, settle with their own MACs', async () => {
    const key = new binding.Key(1, material);
    const shape = (count: number, size: number, seed: number) => {
      const offsets = new Uint32Array(count + 1).map((_, j) => j * size);
      const data = new Uint8Array(count * size).map((_, j) => (j * 13 + seed) & 0xff);
      return { data, offsets, count, size };
    };
    const large = shape(200_000, 64, 1); // far past the calling thread's share: all on the pool
    const smalls = [2, 3, 4, 5, 6, 7].map((seed) => shape(3000, 48, seed));
    const before = binding.batchStats();
    const pending = [
      key.macPackedAsync(large.data, large.offsets),
      ...smalls.map((b) => key.macPackedAsync(b.data, b.offsets)),
    ];
    const results = await Promise.all(pending);
    [large, ...smalls].forEach((b, i) => {
      for (const j of [0, b.count >> 1, b.count - 1]) {
        const mac = createHmac('sha256', material)
          .update(b.data.subarray(j * b.size, (j + 1) * b.size))
          .digest();
        expect(Buffer.from(results[i]!.subarray(j * 32, (j + 1) * 32)).equals(mac)).toBe(true);
      }
    });
    const after = binding.batchStats();
    expect(after.poolBatches - before.poolBatches + after.inlineBatches - before.inlineBatches).toBe(7);
    // Whether a small batch is ended in the call depends on the machine's load; it is counted, never lost.
    expect(after.settledInCall - before.settledInCall).toBeLessThanOrEqual(6);
  });

  it('bad offsets are named at the first bad entry, however far into the batch', () => {
    const key = new binding.Key(1, material);
    const data = new Uint8Array(100_000);
    const offsets = new Uint32Array(50_001).map((_, i) => i * 2);
    offsets[40_000] = 1;
    expect(() => key.macPackedInto(data, offsets, new Uint8Array(50_000 * 32))).toThrow(
      'offsets must not decrease (offsets[40000])',
    );
    offsets[40_000] = 80_000;
    offsets[45_000] = 100_001;
    expect(() => key.macPackedInto(data, offsets, new Uint8Array(50_000 * 32))).toThrow(
      'offsets[45000] is past the end of data',
    );
  });
});
