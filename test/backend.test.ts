/**
 * The backend suite: one set of tests, run against every backend, each
 * loaded explicitly (never through the fallback), so a backend that fails to
 * build or load fails here instead of the suite silently testing another.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_NAMES, loadBackend, type Backend } from '../src/backend/index.js';
import { MAC_ALGORITHMS, type MacAlgorithm } from '../src/backend/types.js';
import { createMacKey, packMessages, type MacKey } from '../src/mac/key.js';
import { bytes } from './support/bytes.js';
import { random } from './support/random.js';

const vectors = JSON.parse(readFileSync(new URL('./fixtures/rfc4231.json', import.meta.url), 'utf8')) as {
  cases: {
    testCase: number;
    keyHex: string;
    dataHex: string;
    truncateBytes?: number;
    macHex: Record<MacAlgorithm, string>;
  }[];
};

const NODE_HASH: Record<MacAlgorithm, string> = {
  HMAC_SHA_224: 'sha224',
  HMAC_SHA_256: 'sha256',
  HMAC_SHA_384: 'sha384',
  HMAC_SHA_512: 'sha512',
};

function oracle(algorithm: MacAlgorithm, key: Uint8Array, message: Uint8Array): Buffer {
  return createHmac(NODE_HASH[algorithm], key).update(message).digest();
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function detachedView(): Uint8Array {
  const buffer = new ArrayBuffer(16);
  const view = new Uint8Array(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}

// KMS_HMAC_TEST_BACKENDS=native narrows the run (the sanitizer build tests native only).
const BACKENDS_UNDER_TEST = process.env.KMS_HMAC_TEST_BACKENDS?.split(',') ?? BACKEND_NAMES;

describe.each(BACKENDS_UNDER_TEST as typeof BACKEND_NAMES)('backend %s', (name) => {
  let backend: Backend;
  // Loaded here, not through the fallback: a backend that cannot load fails its own tests.
  beforeAll(() => {
    backend = loadBackend(name);
  });
  const keyFor = (algorithm: MacAlgorithm, material: Uint8Array): MacKey =>
    createMacKey(algorithm, material, { backend });

  it('is the backend it claims to be', () => {
    expect(backend.name).toBe(name);
    expect(keyFor('HMAC_SHA_256', new Uint8Array(1)).backend).toBe(name);
  });

  describe('RFC 4231 vectors', () => {
    for (const algorithm of MAC_ALGORITHMS) {
      it.each(vectors.cases.map((c) => [c.testCase, c] as const))(`${algorithm} case %i`, (_n, vector) => {
        const key = keyFor(algorithm, Buffer.from(vector.keyHex, 'hex'));
        const data = Buffer.from(vector.dataHex, 'hex');
        const expected = vector.macHex[algorithm];
        expect(hex(key.mac(data))).toBe(expected);
        expect(key.verify(data, Buffer.from(expected, 'hex'))).toBe(true);
        if (vector.truncateBytes) {
          // Case 5: KMS never truncates, so a truncated MAC is a mismatch.
          expect(key.verify(data, Buffer.from(expected, 'hex').subarray(0, vector.truncateBytes))).toBe(false);
        }
        key.destroy();
      });
    }
  });

  describe('differential against node:crypto', () => {
    it.each(MAC_ALGORITHMS)('%s: every key length 0..300', (algorithm) => {
      const message = bytes(77, 1);
      for (let length = 0; length <= 300; length++) {
        const material = bytes(length, length + 7);
        const key = keyFor(algorithm, material);
        expect(hex(key.mac(message)), `key length ${length}`).toBe(
          oracle(algorithm, material, message).toString('hex'),
        );
        key.destroy();
      }
    });

    it.each(MAC_ALGORITHMS)('%s: every message length 0..4200, single and packed', (algorithm) => {
      const material = bytes(40, 3);
      const key = keyFor(algorithm, material);
      const messages = Array.from({ length: 4201 }, (_, length) => bytes(length, length + 11));
      const { data, offsets } = packMessages(messages);
      const packed = key.macPacked(data, offsets);
      for (let length = 0; length <= 4200; length++) {
        const expected = oracle(algorithm, material, messages[length]!).toString('hex');
        expect(hex(key.mac(messages[length]!)), `message length ${length}`).toBe(expected);
        expect(hex(packed.subarray(length * key.macLength, (length + 1) * key.macLength)), `packed ${length}`).toBe(
          expected,
        );
      }
      key.destroy();
    });

    it.each(MAC_ALGORITHMS)('%s: random keys and mixed-length batches', (algorithm) => {
      for (let round = 0; round < 20; round++) {
        const material = random.bytes(round * 13);
        const key = keyFor(algorithm, material);
        const messages = Array.from({ length: 37 + round }, () => random.bytes(random.int(4200)));
        const macs = key.macBatch(messages);
        messages.forEach((message, i) =>
          expect(hex(macs[i]!)).toBe(oracle(algorithm, material, message).toString('hex')),
        );
        key.destroy();
      }
    });
  });

  describe('batch forms agree', () => {
    const algorithm: MacAlgorithm = 'HMAC_SHA_384';
    const material = bytes(200, 5);
    const messages = Array.from({ length: 1500 }, (_, i) => bytes((i * 37) % 1100, i));
    const { data, offsets } = packMessages(messages);

    it('batch equals single; packed equals array', () => {
      const key = keyFor(algorithm, material);
      const fromArray = key.macBatch(messages);
      const fromPacked = key.macPacked(data, offsets);
      messages.forEach((message, i) => {
        const single = hex(key.mac(message));
        expect(hex(fromArray[i]!)).toBe(single);
        expect(hex(fromPacked.subarray(i * 48, (i + 1) * 48))).toBe(single);
      });
    });

    it('async equals sync, for both forms and for verify', async () => {
      const key = keyFor(algorithm, material);
      const sync = key.macPacked(data, offsets);
      expect(hex(await key.macPackedAsync(data, offsets))).toBe(hex(sync));
      expect((await key.macBatchAsync(messages)).map(hex)).toEqual(key.macBatch(messages).map(hex));
      const tampered = sync.slice();
      tampered[5 * 48] ^= 1;
      const expected = messages.map((_, i) => (i === 5 ? 0 : 1));
      expect([...key.verifyPacked(data, offsets, tampered)]).toEqual(expected);
      expect([...(await key.verifyPackedAsync(data, offsets, tampered))]).toEqual(expected);
      const macs = key.macBatch(messages).map((m) => m.slice());
      macs[7] = macs[7]!.subarray(0, 10);
      const expectedArray = messages.map((_, i) => (i === 7 ? 0 : 1));
      expect([...key.verifyBatch(messages, macs)]).toEqual(expectedArray);
      expect([...(await key.verifyBatchAsync(messages, macs))]).toEqual(expectedArray);
    });

    it('macPackedInto honours a caller buffer and offsets that do not start at 0', () => {
      const key = keyFor(algorithm, material);
      const shifted = new Uint32Array([offsets[10]!, offsets[11]!, offsets[12]!]);
      const out = new Uint8Array(2 * 48 + 5);
      key.macPackedInto(data, shifted, out);
      expect(hex(out.subarray(0, 48))).toBe(hex(key.mac(messages[10]!)));
      expect(hex(out.subarray(48, 96))).toBe(hex(key.mac(messages[11]!)));
    });

    it('the async batch owns copies of its inputs', async () => {
      const key = keyFor(algorithm, material);
      const copy = data.slice();
      const expected = hex(key.macPacked(copy, offsets));
      const pending = key.macPackedAsync(copy, offsets);
      copy.fill(0xee); // mutating after the call must not change the result
      key.destroy(); // nor destroying the key while the batch runs
      expect(hex(await pending)).toBe(expected);
    });

    it('zero messages', async () => {
      const key = keyFor(algorithm, material);
      expect(key.macBatch([])).toEqual([]);
      expect(key.macPacked(new Uint8Array(0), new Uint32Array([0])).length).toBe(0);
      expect((await key.macPackedAsync(new Uint8Array(0), new Uint32Array([0]))).length).toBe(0);
      expect((await key.verifyBatchAsync([], [])).length).toBe(0);
    });
  });

  describe('verify', () => {
    it.each(MAC_ALGORITHMS)('%s rejects every single-bit flip and every truncation', (algorithm) => {
      const key = keyFor(algorithm, bytes(33, 9));
      const message = bytes(100, 10);
      const mac = key.mac(message).slice();
      expect(key.verify(message, mac)).toBe(true);
      for (let bit = 0; bit < mac.length * 8; bit++) {
        const flipped = mac.slice();
        flipped[bit >> 3] ^= 1 << (bit & 7);
        expect(key.verify(message, flipped)).toBe(false);
      }
      for (let length = 0; length < mac.length; length++)
        expect(key.verify(message, mac.subarray(0, length))).toBe(false);
      expect(key.verify(message, Buffer.concat([mac, Buffer.from([0])]))).toBe(false);
      const otherMessage = message.slice();
      otherMessage[0] ^= 1;
      expect(key.verify(otherMessage, mac)).toBe(false);
    });
  });

  describe('bad input never crashes', () => {
    const message = bytes(10, 2);
    let key: MacKey;
    let good: string;
    beforeAll(() => {
      key = keyFor('HMAC_SHA_256', bytes(32, 1));
      good = hex(key.mac(message));
    });

    it('wrong types', () => {
      for (const bad of [
        undefined,
        null,
        'text',
        42,
        {},
        [1, 2],
        new Uint16Array(4),
        new DataView(new ArrayBuffer(4)),
        new ArrayBuffer(4),
      ]) {
        expect(() => key.mac(bad as never)).toThrow(TypeError);
        expect(() => key.verify(bad as never, message)).toThrow(TypeError);
        expect(() => key.verify(message, bad as never)).toThrow(TypeError);
        expect(() => key.macBatch(bad as never)).toThrow(TypeError);
        expect(() => key.macBatch([message, bad as never])).toThrow(/messages\[1\]/);
        expect(() => key.macPacked(bad as never, new Uint32Array([0]))).toThrow(TypeError);
        expect(() => key.macPacked(message, bad as never)).toThrow(TypeError);
      }
      expect(() => createMacKey('HMAC_SHA_1' as never, message, { backend })).toThrow(TypeError);
      expect(() => createMacKey('HMAC_SHA_256', 'secret' as never, { backend })).toThrow(TypeError);
    });

    it('detached and shared buffers', () => {
      expect(() => key.mac(detachedView())).toThrow(/detached/);
      expect(() => key.verify(message, detachedView())).toThrow(/detached/);
      expect(() => key.macBatch([message, detachedView()])).toThrow(/detached/);
      expect(() => createMacKey('HMAC_SHA_256', detachedView(), { backend })).toThrow(/detached/);
      const shared = new Uint8Array(new SharedArrayBuffer(16));
      expect(() => key.mac(shared)).toThrow(/SharedArrayBuffer/);
      expect(() => key.macPacked(shared, new Uint32Array([0, 16]))).toThrow(/SharedArrayBuffer/);
      expect(() => key.macPacked(message, new Uint32Array(new SharedArrayBuffer(8)))).toThrow(/SharedArrayBuffer/);
    });

    it('offsets out of range or decreasing, outputs too small, mismatched counts', async () => {
      expect(() => key.macPacked(message, new Uint32Array([0, 11]))).toThrow(RangeError);
      expect(() => key.macPacked(message, new Uint32Array([0, 6, 3]))).toThrow(RangeError);
      expect(() => key.macPacked(message, new Uint32Array([]))).toThrow(RangeError);
      await expect(key.macPackedAsync(message, new Uint32Array([5, 2]))).rejects.toThrow(RangeError);
      expect(() => key.macPackedInto(message, new Uint32Array([0, 5, 10]), new Uint8Array(63))).toThrow(RangeError);
      expect(() => key.macInto(message, new Uint8Array(40), 9)).toThrow(RangeError);
      expect(() => key.macInto(message, new Uint8Array(40), -1)).toThrow(RangeError);
      expect(() => key.macInto(message, new Uint8Array(40), 1.5)).toThrow(RangeError);
      expect(() => key.verifyPacked(message, new Uint32Array([0, 10]), new Uint8Array(31))).toThrow(RangeError);
      expect(() => key.verifyBatch([message], [])).toThrow(RangeError);
    });

    it('the key still works after all of that', () => {
      expect(hex(key.mac(message))).toBe(good);
    });

    it('a million messages in one call', () => {
      const count = 1_000_000;
      const offsets = new Uint32Array(count + 1);
      for (let i = 0; i <= count; i++) offsets[i] = i * 16;
      const data = bytes(count * 16, 4);
      const out = key.macPacked(data, offsets);
      expect(out.length).toBe(count * 32);
      const last = data.subarray((count - 1) * 16);
      expect(hex(out.subarray((count - 1) * 32))).toBe(oracle('HMAC_SHA_256', bytes(32, 1), last).toString('hex'));
    });

    it('a destroyed key throws, and destroy is idempotent', () => {
      const doomed = keyFor('HMAC_SHA_512', bytes(64, 3));
      doomed.destroy();
      doomed.destroy();
      expect(doomed.destroyed).toBe(true);
      expect(() => doomed.mac(message)).toThrow(/destroyed/);
      expect(() => doomed.macBatch([message])).toThrow(/destroyed/);
    });

    it('key material never shows in inspect or JSON', async () => {
      const { inspect } = await import('node:util');
      const secret = Buffer.from('super-secret-key-material');
      const k = keyFor('HMAC_SHA_256', secret);
      expect(inspect(k, { showHidden: true, depth: 5 })).not.toContain('super-secret');
      expect(JSON.stringify(k)).not.toContain('super-secret');
    });
  });

  it('a huge async batch leaves the event loop free', async () => {
    const key = keyFor('HMAC_SHA_512', bytes(64, 8));
    // 250,000 16-byte messages: two SHA-512 blocks of hashing each for 16 bytes to copy, so the
    // hashing outlasts the call's copy of its inputs on any number of cores.
    const count = 250_000;
    const offsets = new Uint32Array(count + 1);
    for (let i = 0; i <= count; i++) offsets[i] = i * 16;
    const data = bytes(count * 16, 12);
    const batch = key.macPackedAsync(data, offsets);
    let settled = false;
    void batch.then(() => {
      settled = true;
    });
    await Promise.resolve();
    // The call returned before the MACs existed: they arrive through the event loop...
    expect(settled).toBe(false);
    // ...which keeps turning while they are computed elsewhere.
    let turns = 0;
    const spin = () => {
      if (settled) return;
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    const out = await batch;
    expect(turns).toBeGreaterThan(2);
    expect(out.length).toBe(count * 64);
    for (const i of [0, count >> 1, count - 1]) {
      const message = data.subarray(i * 16, (i + 1) * 16);
      expect(hex(out.subarray(i * 64, (i + 1) * 64))).toBe(
        oracle('HMAC_SHA_512', bytes(64, 8), message).toString('hex'),
      );
    }
  });
});
