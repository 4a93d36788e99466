/**
 * Multi-buffer SIMD paths of the native addon (native/mb/): every path this
 * CPU can run — "off" (OpenSSL one message at a time), "sse2" (the generic
 * lane kernel compiled for baseline x86-64, so its logic is proven on every
 * x86-64 CPU), "avx2" (8 SHA-256 / 4 SHA-512 lanes), "shani" (2 interleaved
 * SHA-NI streams), "avx512" (16 / 8 lanes, where the CPU has AVX-512) — must
 * give the bytes node:crypto gives, for every message length 0..4200, every
 * batch size 1..100 (every partial-lane count), mixed lengths, all four
 * algorithms, in packed, sync/async and verify forms. Lane paths are
 * forced onto every batch (setSimdPath(name, true)) so tiny batches reach the
 * lanes too; "auto" is the shipped dispatch (the calibrated cost model).
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createNativeBackend, loadNativeBinding, type NativeBinding } from '../src/backend/native.js';
import { random } from './support/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LANE_PATHS = ['sse2', 'avx2', 'shani', 'avx512'];

/** The addon's SIMD diagnostics, beyond what the backend uses (native/mb/mb_exports.h). */
interface SimdDiagnostics {
  simdChoice(algorithm: number, count: number, length: number): string;
  simdCalibration(): { cpu: string; sha256: CalibratedFamily; sha512: CalibratedFamily };
}
interface CalibratedFamily {
  calibrationCpuMs: number;
  paths: Record<string, { perBatchNs: number; perMessageNs: number; perRoundNs: number; lanes: number }>;
}
const binding = loadNativeBinding() as NativeBinding & SimdDiagnostics;
const loadPath = binding.simdPath;
afterAll(() => {
  binding.setSimdPath(loadPath, false);
});

// Which instantiations this run proves, and which it cannot (and why).
const status = Object.fromEntries(
  binding.simdStatus.split('; ').map((entry) => {
    const at = entry.indexOf(': ');
    return [entry.slice(0, at), entry.slice(at + 2)];
  }),
);
console.info(
  `SIMD paths tested here: ${binding.simdPaths.join(', ')}` +
    LANE_PATHS.filter((p) => status[p] !== 'ok')
      .map((p) => `; not tested: ${p} (${status[p]})`)
      .join(''),
);

const ALGS = [
  { index: 0, hash: 'sha224', name: 'HMAC_SHA_224' },
  { index: 1, hash: 'sha256', name: 'HMAC_SHA_256' },
  { index: 2, hash: 'sha384', name: 'HMAC_SHA_384' },
  { index: 3, hash: 'sha512', name: 'HMAC_SHA_512' },
] as const;

// [label, path, force]
const PATHS: [string, string, boolean][] = [
  ['off', 'off', false],
  ...binding.simdPaths.filter((p) => p !== 'off').map((p): [string, string, boolean] => [p, p, true]),
  ['auto', loadPath, false],
];

function pack(messages: Uint8Array[]): { data: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(messages.length + 1);
  for (let i = 0; i < messages.length; i++) offsets[i + 1] = offsets[i] + messages[i].length;
  // One spare byte in front: message starts land on odd addresses.
  const backing = new Uint8Array(offsets[messages.length] + 1);
  const data = backing.subarray(1);
  messages.forEach((m, i) => data.set(m, offsets[i]));
  return { data, offsets };
}

function expected(hash: string, key: Uint8Array, messages: Uint8Array[], macLength: number): Buffer {
  const out = Buffer.alloc(messages.length * macLength);
  messages.forEach((m, i) =>
    createHmac(hash, key)
      .update(m)
      .digest()
      .copy(out, i * macLength),
  );
  return out;
}

function firstMismatch(got: Uint8Array, want: Uint8Array, macLength: number, messages: Uint8Array[]): string {
  for (let i = 0; i * macLength < want.length; i++) {
    const a = Buffer.from(got.subarray(i * macLength, (i + 1) * macLength));
    const b = want.subarray(i * macLength, (i + 1) * macLength);
    if (!a.equals(b)) return `message ${i} (length ${messages[i].length}) of ${messages.length}`;
  }
  return 'none';
}

const randomMessage = (n: number) => new Uint8Array(random.bytes(n));
const randomLengths = (n: number, max: number) => Array.from({ length: n }, () => random.int(max + 1));

/** Loads the addon in a fresh process with `env` and returns what it reports. */
function probe(env: Record<string, string>): { path: string; reason: string; paths: string[]; status: string } {
  const script =
    "const b = require('node-gyp-build')(process.cwd());" +
    'process.stdout.write(JSON.stringify({ path: b.simdPath, reason: b.simdReason, paths: b.simdPaths, status: b.simdStatus }))';
  const r = spawnSync(process.execPath, ['-e', script], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { path: string; reason: string; paths: string[]; status: string };
}

describe('SIMD path selection', () => {
  it("reports the selection, the reason, the available paths and every path's status", () => {
    expect(binding.simdPaths[0]).toBe('off');
    expect(binding.simdPath).toBe(binding.simdPaths.length > 1 ? 'auto' : 'off');
    expect(binding.simdReason.length).toBeGreaterThan(0);
    expect(Object.keys(status)).toEqual(LANE_PATHS);
    // A path is offered exactly when its status is "ok" (CPU support and self-test).
    for (const p of LANE_PATHS) expect(binding.simdPaths.includes(p), p).toBe(status[p] === 'ok');
    if (process.arch === 'x64') expect(status.sse2).toBe('ok'); // the baseline instantiation runs on every x86-64
    expect(createNativeBackend(binding).details.simdStatus).toBe(binding.simdStatus);
  });

  it('setSimdPath switches between auto and the paths, and rejects unknown or unavailable ones', () => {
    for (const p of binding.simdPaths) expect(binding.setSimdPath(p)).toBe(p);
    if (binding.simdPaths.length > 1) expect(binding.setSimdPath('auto')).toBe('auto');
    expect(() => binding.setSimdPath('sse9')).toThrow(RangeError);
    for (const p of LANE_PATHS.filter((q) => status[q] !== 'ok')) {
      expect(() => binding.setSimdPath(p)).toThrow(RangeError);
    }
    expect(() => binding.setSimdPath(1 as never)).toThrow(TypeError);
    binding.setSimdPath(loadPath, false);
    expect(binding.simdPath).toBe(loadPath);
  });

  it('KMS_HMAC_SIMD forces a path at load; unusable values fall back to off with a reason', () => {
    expect(probe({ KMS_HMAC_SIMD: 'off' }).path).toBe('off');
    expect(probe({ KMS_HMAC_SIMD: 'bogus' })).toMatchObject({
      path: 'off',
      reason: expect.stringMatching(/unknown value/),
    });
    for (const p of binding.simdPaths) expect(probe({ KMS_HMAC_SIMD: p }).path).toBe(p);
    for (const p of LANE_PATHS.filter((q) => status[q] !== 'ok')) {
      const r = probe({ KMS_HMAC_SIMD: p });
      expect(r.path).toBe('off');
      expect(r.reason).toContain(status[p]);
    }
  });

  it.runIf(binding.simdPaths.length > 1)('a path that fails its self-test is never offered, and says why', () => {
    const victim = binding.simdPaths[1];
    const r = probe({ KMS_HMAC_SIMD_SELFTEST_FAIL: victim });
    expect(r.paths).not.toContain(victim);
    expect(r.status).toMatch(new RegExp(`${victim}: self-test failed: .*KMS_HMAC_SIMD_SELFTEST_FAIL`));
    const forced = probe({ KMS_HMAC_SIMD_SELFTEST_FAIL: victim, KMS_HMAC_SIMD: victim });
    expect(forced.path).toBe('off');
    expect(forced.reason).toMatch(/self-test failed/);
  });

  it('dispatch: one message stays on OpenSSL, a forced path takes every batch it has a kernel for', () => {
    binding.setSimdPath(loadPath, false);
    for (const alg of ALGS) {
      expect(binding.simdChoice(alg.index, 1, 64)).toBe('off');
      expect(binding.simdChoice(alg.index, 0, 64)).toBe('off');
      // Which path wins a big batch is the calibration's call (OpenSSL, under ASan).
      expect(binding.simdPaths).toContain(binding.simdChoice(alg.index, 4096, 1024));
      for (const p of binding.simdPaths) {
        binding.setSimdPath(p, true);
        const hasKernel = p !== 'off' && !(p === 'shani' && alg.index >= 2);
        expect(binding.simdChoice(alg.index, 3, 64), `${p} ${alg.name}`).toBe(hasKernel ? p : 'off');
      }
      binding.setSimdPath(loadPath, false);
    }
  });

  it('the cost model has a figure for OpenSSL and for each lane path of each family', () => {
    const cal = binding.simdCalibration();
    expect(cal.cpu.length).toBeGreaterThan(0);
    for (const family of [cal.sha256, cal.sha512]) {
      expect(family.paths.off.lanes).toBe(1);
      for (const [p, c] of Object.entries(family.paths)) {
        expect(binding.simdPaths).toContain(p);
        expect(c.perBatchNs + c.perMessageNs + c.perRoundNs, p).toBeGreaterThan(0);
      }
      expect(family.calibrationCpuMs).toBeGreaterThanOrEqual(0);
    }
    expect(Object.keys(cal.sha512.paths)).not.toContain('shani'); // SHA-NI has no SHA-512
  });
});

describe.each(PATHS)('path %s', (label, path, force) => {
  const use = () => binding.setSimdPath(path, force);

  describe.each(ALGS)('$name', ({ index, hash }) => {
    const keyBytes = randomMessage(index * 37 + 20);
    const key = new binding.Key(index, keyBytes);
    const macLength = binding.macLengths[index];

    it('every message length 0..4200 in one packed batch', () => {
      use();
      const messages = Array.from({ length: 4201 }, (_, len) => randomMessage(len));
      const { data, offsets } = pack(messages);
      const out = new Uint8Array(messages.length * macLength);
      key.macPackedInto(data, offsets, out);
      const want = expected(hash, keyBytes, messages, macLength);
      expect(firstMismatch(out, want, macLength, messages)).toBe('none');
    });

    it('batch sizes 1..100 (every partial-lane count), equal and mixed lengths', () => {
      use();
      for (let n = 1; n <= 100; n++) {
        const len = random.int(300);
        for (const messages of [
          Array.from({ length: n }, () => randomMessage(len)),
          randomLengths(n, 1100).map(randomMessage),
        ]) {
          const out = new Uint8Array(n * macLength);
          const { data, offsets } = pack(messages);
          key.macPackedInto(data, offsets, out);
          const want = expected(hash, keyBytes, messages, macLength);
          expect(firstMismatch(out, want, macLength, messages), `n=${n}`).toBe('none');
        }
      }
    });

    it('mixed lengths 0..4200: packed, async and verify agree with node:crypto', async () => {
      use();
      const messages = randomLengths(600, 4200).map(randomMessage);
      const want = expected(hash, keyBytes, messages, macLength);
      const { data, offsets } = pack(messages);
      const packed = new Uint8Array(want.length);
      key.macPackedInto(data, offsets, packed);
      expect(firstMismatch(packed, want, macLength, messages)).toBe('none');
      // Async: 600 messages split across the pool threads.
      expect(firstMismatch(await key.macPackedAsync(data, offsets), want, macLength, messages)).toBe('none');

      // Verify: every third MAC corrupted in one bit, one truncated.
      const macs = Uint8Array.from(want);
      const bad = new Set<number>();
      for (let i = 0; i < messages.length; i += 3) {
        macs[i * macLength + (i % macLength)] ^= 1 << (i % 8);
        bad.add(i);
      }
      const results = new Uint8Array(messages.length);
      key.verifyPackedInto(data, offsets, macs, results);
      results.forEach((r, i) => expect(r, `verifyPacked ${i}`).toBe(bad.has(i) ? 0 : 1));
      const asyncResults = await key.verifyPackedAsync(data, offsets, macs);
      asyncResults.forEach((r, i) => expect(r, `verifyPackedAsync ${i}`).toBe(bad.has(i) ? 0 : 1));
    });

    it(`${label}: one long message among many short ones, and empty batches`, () => {
      use();
      const messages = [randomMessage(9000), ...randomLengths(40, 20).map(randomMessage), randomMessage(5000)];
      const out = new Uint8Array(messages.length * macLength);
      const { data, offsets } = pack(messages);
      key.macPackedInto(data, offsets, out);
      expect(firstMismatch(out, expected(hash, keyBytes, messages, macLength), macLength, messages)).toBe('none');
      const empty = new Uint8Array(0);
      key.macPackedInto(empty, new Uint32Array(1), empty);
    });
  });
});
