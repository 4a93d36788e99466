/**
 * WebAssembly-specific tests. The shared backend suite (backend.test.ts)
 * already runs wasm-simd and wasm-scalar against node:crypto; this file
 * covers what only the WebAssembly module has: the generated module being current,
 * the SIMD lane scheduler with mixed lengths, the module's state after errors,
 * memory wiping, SIMD detection and the worker pool.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MacAlgorithm } from '../src/backend/types.js';
import { loadWasmBackend, wasmHmacOf, wasmSimdSupported, type WasmVariant } from '../src/backend/wasm.js';
import { WASM_HASH } from '../src/backend/wasm-binaries.js';
import { FRAMER_WASM_HASH } from '../src/logs/framer-binary.js';
import { random } from './support/random.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_HASH: Record<MacAlgorithm, string> = {
  HMAC_SHA_224: 'sha224',
  HMAC_SHA_256: 'sha256',
  HMAC_SHA_384: 'sha384',
  HMAC_SHA_512: 'sha512',
};
const ALGS = Object.keys(NODE_HASH) as MacAlgorithm[];
const VARIANTS: WasmVariant[] = ['simd', 'scalar'];

const oracle = (alg: MacAlgorithm, key: Uint8Array, msg: Uint8Array) =>
  createHmac(NODE_HASH[alg], key).update(msg).digest();

/** Deterministic shuffle (xorshift32) so a failure is reproducible. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let x = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function pack(messages: Uint8Array[]): { data: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(messages.length + 1);
  for (let i = 0; i < messages.length; i++) offsets[i + 1] = offsets[i]! + messages[i]!.length;
  const data = new Uint8Array(offsets[messages.length]!);
  messages.forEach((m, i) => data.set(m, offsets[i]!));
  return { data, offsets };
}

/** Index of `needle` in `hay`, or -1. */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle));
}

describe('generated module', () => {
  it('src/backend/wasm-binaries.ts and src/logs/framer-binary.ts match a fresh build of assembly/ (run npm run build:wasm if this fails)', () => {
    const out = mkdtempSync(join(tmpdir(), 'kms-hmac-wasm-'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts/build-wasm.js'), '--out', out, '--no-generate'], {
        stdio: 'pipe',
      });
      expect(JSON.parse(readFileSync(join(out, 'hashes.json'), 'utf8'))).toEqual({
        hmac: WASM_HASH,
        framer: FRAMER_WASM_HASH,
      });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('SIMD detection', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.resetModules();
  });

  it('reports SIMD on this Node and in details', () => {
    expect(wasmSimdSupported()).toBe(true);
    expect(loadWasmBackend('simd').details.simd).toBe(true);
    expect(loadWasmBackend('simd').name).toBe('wasm-simd');
    expect(loadWasmBackend('scalar').details.simd).toBe(false);
    expect(loadWasmBackend('scalar').name).toBe('wasm-scalar');
  });

  it('throws a clear error for the SIMD variant when WebAssembly.validate rejects it, and scalar still loads', async () => {
    vi.resetModules();
    const realValidate = WebAssembly.validate.bind(WebAssembly);
    const simdBytes = Buffer.from((await import('../src/backend/wasm-binaries.js')).WASM_SIMD_BASE64, 'base64');
    vi.spyOn(WebAssembly, 'validate').mockImplementation((bytes) =>
      Buffer.from(bytes as Uint8Array).equals(simdBytes) ? false : realValidate(bytes),
    );
    const fresh = await import('../src/backend/wasm.js');
    expect(fresh.wasmSimdSupported()).toBe(false);
    expect(() => fresh.loadWasmBackend('simd')).toThrow(/does not support WebAssembly SIMD128/);
    const scalar = fresh.loadWasmBackend('scalar');
    const key = scalar.createKey('HMAC_SHA_256', new Uint8Array(16));
    const out = new Uint8Array(32);
    key.macInto(new Uint8Array(3), out, 0);
    expect(Buffer.from(out)).toEqual(oracle('HMAC_SHA_256', new Uint8Array(16), new Uint8Array(3)));
    key.destroy();
  });
});

describe.each(VARIANTS)('wasm-%s', (variant) => {
  const backend = () => loadWasmBackend(variant);

  describe('mixed lengths in one batch (SIMD lanes finish at different blocks)', () => {
    it.each(ALGS)('%s: every length 0..1000, shuffled, packed / verify', (alg) => {
      const keyBytes = random.bytes(alg.includes('256') ? 64 : 100);
      const key = backend().createKey(alg, keyBytes);
      const lengths = shuffled(
        Array.from({ length: 1001 }, (_, i) => i),
        0x5eed + alg.length,
      );
      const messages = lengths.map((n) => random.bytes(n));
      const expected = Buffer.concat(messages.map((m) => oracle(alg, keyBytes, m)));
      const { data, offsets } = pack(messages);
      const ml = key.macLength;

      const packed = new Uint8Array(messages.length * ml);
      key.macPackedInto(data, offsets, packed);
      expect(Buffer.from(packed).equals(expected)).toBe(true);

      // Every 7th MAC corrupted: exactly those verify false.
      const macs = Uint8Array.from(expected);
      for (let i = 0; i < messages.length; i += 7) macs[i * ml + (i % ml)]! ^= 0x01;
      const results = new Uint8Array(messages.length);
      key.verifyPackedInto(data, offsets, macs, results);
      for (let i = 0; i < messages.length; i++) expect(results[i], `message ${i}`).toBe(i % 7 === 0 ? 0 : 1);
      key.destroy();
    });

    it.each(ALGS)('%s: the last busy lane hands over to the scalar path at every block position', (alg) => {
      // One message of length L with short companions: the companions finish
      // first, leaving L's lane alone mid-inner-hash, on its length-only block,
      // or with only the outer block left, depending on L.
      const keyBytes = random.bytes(33);
      const key = backend().createKey(alg, keyBytes);
      const ml = key.macLength;
      for (let len = 0; len <= 400; len++) {
        for (const shape of [
          [len, 0, 0, 0],
          [0, 0, 0, len],
          [len, 0],
          [3, len, 200, 1, 0],
        ]) {
          const messages = shape.map((n) => random.bytes(n));
          const out = new Uint8Array(messages.length * ml);
          const { data, offsets } = pack(messages);
          key.macPackedInto(data, offsets, out);
          const expected = Buffer.concat(messages.map((m) => oracle(alg, keyBytes, m)));
          if (!Buffer.from(out).equals(expected))
            throw new Error(`${alg}: wrong MAC for batch lengths ${shape.join(',')}`);
        }
      }
      key.destroy();
    });

    it('batches of 1, 2, 3, 5 messages (idle lanes) and empty batches', () => {
      const keyBytes = random.bytes(32);
      const key = backend().createKey('HMAC_SHA_256', keyBytes);
      for (const n of [0, 1, 2, 3, 5]) {
        const messages = Array.from({ length: n }, (_, i) => random.bytes(i * 97));
        const out = new Uint8Array(n * 32);
        const { data, offsets } = pack(messages);
        key.macPackedInto(data, offsets, out);
        expect(Buffer.from(out).equals(Buffer.concat(messages.map((m) => oracle('HMAC_SHA_256', keyBytes, m))))).toBe(
          true,
        );
      }
      key.destroy();
    });

    it('a batch larger than the 1 MiB I/O region and MAX_BATCH, with a message larger than the region', () => {
      const keyBytes = random.bytes(20);
      const key = backend().createKey('HMAC_SHA_256', keyBytes);
      const messages = [
        ...Array.from({ length: 20_000 }, (_, i) => random.bytes(i % 67)),
        random.bytes(1_500_000),
        ...Array.from({ length: 300 }, () => random.bytes(4096)),
      ];
      const expected = Buffer.concat(messages.map((m) => oracle('HMAC_SHA_256', keyBytes, m)));
      const out = new Uint8Array(messages.length * 32);
      const { data, offsets } = pack(messages);
      key.macPackedInto(data, offsets, out);
      expect(Buffer.from(out).equals(expected)).toBe(true);
      key.destroy();
    });
  });

  describe('inputs larger than the static regions', () => {
    it.each(ALGS)('%s: keys longer than the 4 KiB key window, messages longer than the 1 MiB data region', (alg) => {
      const msg = random.bytes(1_300_000);
      for (const keyLen of [4095, 4096, 4097, 10_000]) {
        const keyBytes = random.bytes(keyLen);
        const key = backend().createKey(alg, keyBytes);
        const expected = oracle(alg, keyBytes, msg);
        const out = new Uint8Array(key.macLength);
        key.macInto(msg, out, 0);
        expect(Buffer.from(out)).toEqual(expected);
        expect(key.verify(msg, expected)).toBe(true);
        const bad = Uint8Array.from(expected);
        bad[0]! ^= 0x80;
        expect(key.verify(msg, bad)).toBe(false);
        const results = new Uint8Array(2);
        const { data, offsets } = pack([msg, msg.subarray(1)]);
        key.verifyPackedInto(data, offsets, Buffer.concat([expected, expected]), results);
        expect([...results]).toEqual([1, 0]);
        key.destroy();
      }
    });
  });

  describe('state after errors', () => {
    it('rejects bad input with typed errors and still computes correct MACs afterwards', async () => {
      const keyBytes = random.bytes(48);
      const key = backend().createKey('HMAC_SHA_384', keyBytes);
      const msg = random.bytes(333);
      const good = oracle('HMAC_SHA_384', keyBytes, msg);
      const check = () => {
        const out = new Uint8Array(48);
        key.macInto(msg, out, 0);
        expect(Buffer.from(out)).toEqual(good);
        const packed = new Uint8Array(96);
        key.macPackedInto(Buffer.concat([msg, msg]), new Uint32Array([0, 333, 666]), packed);
        expect(Buffer.from(packed)).toEqual(Buffer.concat([good, good]));
        expect(key.verify(msg, good)).toBe(true);
      };
      const data = new Uint8Array(100);
      expect(() => key.macPackedInto(data, new Uint32Array([0, 50, 10]), new Uint8Array(96))).toThrow(RangeError);
      check();
      expect(() => key.macPackedInto(data, new Uint32Array([0, 101]), new Uint8Array(48))).toThrow(RangeError);
      expect(() => key.macPackedInto(data, new Uint32Array([]), new Uint8Array(48))).toThrow(RangeError);
      expect(() => key.macPackedInto(data, new Uint32Array([0, 50]), new Uint8Array(47))).toThrow(RangeError);
      expect(() => key.macPackedInto(data, [0, 50] as unknown as Uint32Array, new Uint8Array(48))).toThrow(TypeError);
      expect(() => key.macInto('abc' as unknown as Uint8Array, new Uint8Array(48), 0)).toThrow(TypeError);
      expect(() => key.macInto(msg, new Uint8Array(48), 1)).toThrow(RangeError);
      expect(() => key.verifyPackedInto(msg, new Uint32Array([0, 1]), new Uint8Array(47), new Uint8Array(1))).toThrow(
        RangeError,
      );
      await expect(key.macPackedAsync(data, new Uint32Array([5, 1]))).rejects.toThrow(RangeError);
      expect(key.verify(msg, good.subarray(0, 47))).toBe(false);
      check();
      expect(() => backend().createKey('HMAC_SHA_999' as MacAlgorithm, keyBytes)).toThrow(RangeError);
      expect(() => backend().createKey('HMAC_SHA_256', 'key' as unknown as Uint8Array)).toThrow(TypeError);
      check();
      key.destroy();
      expect(() => key.macInto(msg, new Uint8Array(48), 0)).toThrow(/destroyed/);
      await expect(key.macPackedAsync(msg, new Uint32Array([0, 1]))).rejects.toThrow(/destroyed/);
      key.destroy(); // idempotent
    });

    it('the module itself rejects bad arguments and offsets with a status, never reading outside DATA', () => {
      const b = backend();
      const hmac = wasmHmacOf(b);
      const keyBytes = random.bytes(32);
      const key = b.createKey('HMAC_SHA_256', keyBytes);
      const ex = hmac.ex;
      // Offsets pointing into other regions (decreasing, past DATA): status 2, no output.
      hmac.u32.set([0, 10, 5], hmac.OFFS >>> 2);
      expect(ex.batch(0, 1, 2, 0, 0)).toBe(2);
      hmac.u32.set([0, hmac.DATA_SIZE + 64], hmac.OFFS >>> 2);
      expect(ex.batch(0, 1, 1, 0, 0)).toBe(2);
      expect(ex.batch(0, 1, hmac.MAX_BATCH + 1, 0, 0)).toBe(2);
      expect(ex.batch(hmac.KEY_SLOTS, 1, 1, 0, 0)).toBe(1);
      expect(ex.batch(0, 9, 1, 0, 0)).toBe(1);
      expect(ex.macOne(0, 1, hmac.DATA_SIZE + 1)).toBe(1);
      expect(ex.verifyOne(0, 4, 1)).toBe(-1);
      expect(ex.keySetup(hmac.KEY_SLOTS, 1, 0)).toBe(1);
      expect(ex.keySetup(0, 1, 65)).toBe(1);
      expect(ex.streamInit(7, -1)).toBe(1);
      expect(ex.streamUpdate(2, 1)).toBe(1);
      const msg = random.bytes(1000);
      const out = new Uint8Array(32);
      key.macInto(msg, out, 0);
      expect(Buffer.from(out)).toEqual(oracle('HMAC_SHA_256', keyBytes, msg));
      key.destroy();
    });
  });

  describe('memory hygiene', () => {
    it('the key window is wiped after setup; the key slot is wiped on destroy', () => {
      const b = backend();
      const hmac = wasmHmacOf(b);
      const mem = hmac.u8;
      for (const [alg, len] of [
        ['HMAC_SHA_256', 40],
        ['HMAC_SHA_512', 100],
        ['HMAC_SHA_256', 200], // longer than the block: hashed in the stream context first
      ] as const) {
        const keyBytes = random.bytes(len);
        const key = b.createKey(alg, keyBytes);
        // Raw key material is nowhere in linear memory, key window and scratch are zero.
        expect(indexOfBytes(mem, keyBytes.subarray(0, 16))).toBe(-1);
        expect(mem.subarray(hmac.KEYWIN, hmac.KEYWIN + hmac.KEYWIN_SIZE).every((x) => x === 0)).toBe(true);
        // The precomputed inner/outer states are in some slot: find it via a non-zero slot scan.
        const out = new Uint8Array(key.macLength);
        key.macInto(new Uint8Array(5), out, 0);
        const slots: number[] = [];
        for (let s = 0; s < 64; s++) {
          const at = hmac.KEYS + s * hmac.SLOT_SIZE;
          if (mem.subarray(at, at + hmac.SLOT_SIZE).some((x) => x !== 0)) slots.push(s);
        }
        expect(slots.length).toBeGreaterThan(0);
        const before = slots.map((s) => hmac.readSlot(s));
        key.destroy();
        const after = slots.map((s) => hmac.readSlot(s));
        const wiped = after.filter((st, i) => st.every((x) => x === 0) && before[i]!.some((x) => x !== 0));
        expect(wiped.length).toBe(1);
        // The wiped state appears nowhere else in memory.
        const state = before[after.findIndex((st, i) => st.every((x) => x === 0) && before[i]!.some((x) => x !== 0))]!;
        expect(indexOfBytes(mem, state.subarray(0, 32))).toBe(-1);
        expect(indexOfBytes(mem, state.subarray(64, 96))).toBe(-1);
      }
    });

    it('freed slots are reused, so many short-lived keys do not exhaust the slot table', () => {
      const b = backend();
      const hmac = wasmHmacOf(b);
      const slots = hmac.KEY_SLOTS;
      const holds = (slot: number) => hmac.readSlot(slot).some((x) => x !== 0);
      const inUse = () => Array.from({ length: slots }, (_, s) => holds(s));
      const msg = new TextEncoder().encode('reused');
      const out = new Uint8Array(28);
      const before = inUse();
      let slot = -1;
      for (let i = 0; i < slots + 10; i++) {
        const material = new Uint8Array([i & 0xff, i >> 8]);
        const key = b.createKey('HMAC_SHA_224', material);
        if (i === 0) slot = inUse().findIndex((used, s) => used && !before[s]);
        // Every key lives in the regular slot the one before it freed, never in the swap slot (the
        // last one), where keys go once the table is full: a table's worth and more of them, one by one.
        expect(slot).toBeGreaterThanOrEqual(0);
        expect(slot).toBeLessThan(slots - 1);
        expect(holds(slot), `key ${i}`).toBe(true);
        key.macInto(msg, out, 0);
        expect(Buffer.from(out), `key ${i}`).toEqual(oracle('HMAC_SHA_224', material, msg));
        key.destroy();
        expect(holds(slot), `key ${i}`).toBe(false);
      }
      expect(inUse()).toEqual(before);
    });

    it('more live keys than slots: the extras share the swap slot and stay correct, interleaved', () => {
      const b = backend();
      const hmac = wasmHmacOf(b);
      const n = hmac.KEY_SLOTS + 3;
      const keys = Array.from({ length: n }, (_, i) => {
        const material = new Uint8Array(4);
        new DataView(material.buffer).setUint32(0, i);
        return { material, key: b.createKey('HMAC_SHA_256', material) };
      });
      const msg = new TextEncoder().encode('interleaved');
      const out = new Uint8Array(32);
      // Alternate spilled keys with each other and with slotted ones.
      for (const i of [n - 1, 0, n - 2, n - 1, 5, n - 3, n - 3, n - 2]) {
        keys[i]!.key.macInto(msg, out, 0);
        expect(Buffer.from(out), `key ${i}`).toEqual(oracle('HMAC_SHA_256', keys[i]!.material, msg));
      }
      const swap = hmac.readSlot(hmac.KEY_SLOTS - 1);
      expect(swap.some((x) => x !== 0)).toBe(true);
      for (const { key } of keys) key.destroy();
      // Everything is wiped, the swap slot included.
      const at = hmac.KEYS;
      expect(hmac.u8.subarray(at, at + hmac.KEY_SLOTS * hmac.SLOT_SIZE).every((x) => x === 0)).toBe(true);
    });
  });

  describe('async worker pool', () => {
    it('splits a large batch across workers and equals the sync result, for mac and verify', async () => {
      const keyBytes = random.bytes(64);
      const key = backend().createKey('HMAC_SHA_512', keyBytes);
      const messages = Array.from({ length: 5000 }, (_, i) => random.bytes((i * 31) % 700));
      const { data, offsets } = pack(messages);
      const sync = new Uint8Array(messages.length * 64);
      key.macPackedInto(data, offsets, sync);
      const pending = key.macPackedAsync(data, offsets);
      data.fill(0); // inputs were copied before returning
      const asyncOut = await pending;
      expect(Buffer.from(asyncOut).equals(Buffer.from(sync))).toBe(true);
      const macs = Uint8Array.from(sync);
      macs[64 * 10] ^= 1;
      const { data: data2 } = pack(messages);
      const results = await key.verifyPackedAsync(data2, offsets, macs);
      expect(results.length).toBe(messages.length);
      expect(results.reduce((a, x) => a + x, 0)).toBe(messages.length - 1);
      expect(results[10]).toBe(0);
      key.destroy();
    });
  });
});

describe('worker threads do not keep the process alive', () => {
  const distWasm = join(ROOT, 'dist/backend/wasm.js');
  it.skipIf(!existsSync(distWasm))('a script awaiting an async batch from dist/ prints the MAC and exits', () => {
    const script = `
      import { loadWasmBackend } from ${JSON.stringify(distWasm)};
      const key = loadWasmBackend('simd').createKey('HMAC_SHA_256', new Uint8Array(32).fill(1));
      const msgs = Array.from({ length: 3000 }, (_, i) => new Uint8Array(i % 50).fill(i & 255));
      const offsets = new Uint32Array(msgs.length + 1);
      msgs.forEach((m, i) => (offsets[i + 1] = offsets[i] + m.length));
      const data = new Uint8Array(offsets[msgs.length]);
      msgs.forEach((m, i) => data.set(m, offsets[i]));
      const out = await key.macPackedAsync(data, offsets);
      console.log(Buffer.from(out.subarray(32 * 2999)).toString('hex'));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.error).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    const expected = createHmac('sha256', new Uint8Array(32).fill(1))
      .update(new Uint8Array(2999 % 50).fill(2999 & 255))
      .digest('hex');
    expect(r.stdout.trim()).toBe(expected);
  });
});
