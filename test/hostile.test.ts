/**
 * Hostile callers, through the public API (createMacKey / MacKey and the KMS
 * batch calls), against every backend, each loaded explicitly:
 *
 * - getters that detach or resize buffers, start another batch, or destroy
 *   the key while the arguments are read;
 * - Proxies whose length lies; typed-array subclasses whose accessors lie;
 * - resizable and growable ArrayBuffers;
 * - valueOf side effects on numeric arguments;
 * - every overlap of an output with data, offsets or MACs, for every packed
 *   form, sync and async;
 * - buffers detached or resized after an async call returned;
 * - destroy() while an async batch runs;
 * - shared memory (read in place by the packed forms): every mix of shared
 *   and unshared arguments, another thread rewriting the data or the
 *   offsets during batches, a growable buffer grown during a batch, the
 *   allocating thread exiting during a batch, destroy() during a batch.
 *
 * Every case may throw a typed error (TypeError, RangeError, a KMS error, or
 * the "destroyed"/"closed" Error). If it returns, every MAC equals
 * node:crypto's over the bytes each message held when it was read (raced
 * shared memory: over one of the states its bytes and bounds were in). The
 * process must never crash: `npm run test:asan` runs this file against the
 * sanitizer build of the addon.
 */
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_NAMES, loadBackend, type Backend } from '../src/backend/index.js';
import type { MacAlgorithm } from '../src/backend/types.js';
import { KmsHmacClient } from '../src/client/client.js';
import { BatchBuffer } from '../src/mac/batch-buffer.js';
import { createMacKey, packMessages, type MacKey } from '../src/mac/key.js';
import { bytes } from './support/bytes.js';

const BACKENDS_UNDER_TEST = (process.env.KMS_HMAC_TEST_BACKENDS?.split(',') ?? BACKEND_NAMES) as typeof BACKEND_NAMES;
const ALG: MacAlgorithm = 'HMAC_SHA_256';
const ML = 32;
const MATERIAL = bytes(32, 99);

const oracle = (message: Uint8Array, material = MATERIAL) => createHmac('sha256', material).update(message).digest();
const concatOracle = (messages: readonly Uint8Array[], material = MATERIAL) =>
  Buffer.concat(messages.map((m) => oracle(m, material)));

/** The bytes a view shows now; empty when it is detached or out of bounds. */
function snapshot(view: Uint8Array): Buffer {
  try {
    return Buffer.from(view.slice());
  } catch {
    return Buffer.alloc(0);
  }
}

function detach(buffer: ArrayBufferLike): ArrayBuffer {
  return structuredClone(buffer as ArrayBuffer, { transfer: [buffer as ArrayBuffer] });
}

// Resizable ArrayBuffer and growable SharedArrayBuffer (ES2024; the project's lib is ES2022).
type Resizable = ArrayBuffer & { resize(length: number): void };
const resizableBuffer = (length: number, max: number): Resizable =>
  new (ArrayBuffer as unknown as new (n: number, o: object) => Resizable)(length, { maxByteLength: max });
const growableShared = (length: number, max: number): SharedArrayBuffer =>
  new (SharedArrayBuffer as unknown as new (n: number, o: object) => SharedArrayBuffer)(length, { maxByteLength: max });

/** A message in its own resizable buffer, seen through a length-tracking view. */
function resizable(content: Uint8Array): Uint8Array {
  const view = new Uint8Array(resizableBuffer(content.length, 4 * content.length + 256));
  view.set(content);
  return view;
}

function resize(view: Uint8Array, length: number): void {
  (view.buffer as Resizable).resize(length);
}

type Memory = 'ArrayBuffer' | 'SharedArrayBuffer';
const MEMORIES: Memory[] = ['ArrayBuffer', 'SharedArrayBuffer'];

/** `content` copied into a view of its own type over new memory of `kind`. */
function inMemory<T extends Uint8Array | Uint32Array>(kind: Memory, content: T): T {
  const buffer =
    kind === 'ArrayBuffer' ? new ArrayBuffer(content.byteLength) : new SharedArrayBuffer(content.byteLength);
  const view = (content instanceof Uint32Array ? new Uint32Array(buffer) : new Uint8Array(buffer)) as T;
  view.set(content);
  return view;
}

/**
 * A worker thread that rewrites `target` (a view over shared memory) until
 * stopped: sweep after sweep, element positions[j] becomes states[(sweep +
 * j) % states.length][j], so at any moment the positions are in a mix of
 * states, each element in one of its own.
 */
class Writer {
  private readonly control = new Int32Array(new SharedArrayBuffer(8)); // [stop, sweeps]
  private readonly worker: Worker;

  constructor(target: Uint8Array | Uint32Array, positions: number[], states: number[][]) {
    const code = `
      const { workerData: { target, positions, states, control }, parentPort } = require('node:worker_threads');
      parentPort.postMessage('started');
      for (let sweep = 0; Atomics.load(control, 0) === 0; sweep++) {
        for (let j = 0; j < positions.length; j++) Atomics.store(target, positions[j], states[(sweep + j) % states.length][j]);
        Atomics.add(control, 1, 1);
      }`;
    this.worker = new Worker(code, { eval: true, workerData: { target, positions, states, control: this.control } });
  }

  /** Resolves once the writer is writing. */
  async started(): Promise<void> {
    await once(this.worker, 'message');
    while (Atomics.load(this.control, 1) === 0) await new Promise((r) => setTimeout(r, 1));
  }

  /** Stops the writer; resolves with the number of sweeps it made. */
  async stop(): Promise<number> {
    Atomics.store(this.control, 0, 1);
    await once(this.worker, 'exit');
    return Atomics.load(this.control, 1);
  }
}

/** `content` in a view of the same kind as `like` (resizable or not). */
const sameKind = (like: Uint8Array, content: Uint8Array) =>
  (like.buffer as Resizable & { resizable?: boolean }).resizable ? resizable(content) : new Uint8Array(content);

function isTypedError(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  if (!(error instanceof Error)) return false;
  return /destroyed|closed/.test(error.message) || (error as { $fault?: string }).$fault !== undefined;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(run: () => T | Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Either a typed error, or a value that passes `check`. Returns which. */
async function expectSafe<T>(run: () => T | Promise<T>, check: (value: T) => void): Promise<'value' | 'error'> {
  const outcome = await settle(run);
  if (!outcome.ok) {
    if (!isTypedError(outcome.error)) throw outcome.error;
    return 'error';
  }
  check(outcome.value);
  return 'value';
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const expectMacs = (got: Uint8Array, want: Buffer) => expect(hex(got)).toBe(want.toString('hex'));

/**
 * An array whose element reads are watched: `attack(i)` runs when element i
 * is read, before it is returned; `readAs[i]` records the bytes it showed
 * when it was returned, which are the bytes its MAC must cover.
 */
function watched(items: Uint8Array[], attack: (index: number) => void) {
  const readAs: Buffer[] = [];
  const array = new Proxy(items, {
    get(target, property, receiver) {
      if (typeof property === 'string' && /^\d+$/.test(property)) {
        const i = Number(property);
        attack(i);
        const value = target[i]!;
        readAs[i] = snapshot(value);
        return value;
      }
      return Reflect.get(target, property, receiver);
    },
  });
  return { array, readAs };
}

/** The attacks a getter can make while element `at` of a batch is read. */
interface Attack {
  name: string;
  /** Builds the batch's elements (they must survive the attack or fail it typedly). */
  items: (count: number) => Uint8Array[];
  run: (items: Uint8Array[], at: number, key: MacKey) => void;
}

const plainItems = (count: number) => Array.from({ length: count }, (_, i) => bytes(20 + ((i * 13) % 90), i));
const resizableItems = (count: number) => plainItems(count).map(resizable);

const ATTACKS: Attack[] = [
  { name: 'detaches an earlier element', items: plainItems, run: (items, at) => void detach(items[at - 1]!.buffer) },
  { name: 'detaches a later element', items: plainItems, run: (items, at) => void detach(items[at + 1]!.buffer) },
  { name: 'detaches the element being read', items: plainItems, run: (items, at) => void detach(items[at]!.buffer) },
  { name: 'shrinks an earlier element', items: resizableItems, run: (items, at) => resize(items[at - 1]!, 3) },
  { name: 'shrinks a later element to nothing', items: resizableItems, run: (items, at) => resize(items[at + 1]!, 0) },
  { name: 'grows a later element', items: resizableItems, run: (items, at) => resize(items[at + 1]!, 200) },
  {
    name: 'rewrites earlier and later elements',
    items: plainItems,
    run: (items, at) => {
      items[at - 1]!.fill(0xaa);
      items[at + 1]!.fill(0x55);
    },
  },
  {
    name: 'runs another batch with the same key',
    items: plainItems,
    run: (_items, _at, key) => {
      const inner = plainItems(40).map((m, i) => m.map((b) => b ^ i));
      expectMacs(Buffer.concat(key.macBatch(inner)), concatOracle(inner));
    },
  },
  { name: 'destroys the key', items: plainItems, run: (_items, _at, key) => key.destroy() },
];

describe.each(BACKENDS_UNDER_TEST)('hostile callers, backend %s', (name) => {
  let backend: Backend;
  beforeAll(() => {
    backend = loadBackend(name);
  });
  const newKey = () => createMacKey(ALG, MATERIAL, { backend });

  // Small batches run inline; 3000 messages of 20..110 bytes go to the
  // worker threads on every backend.
  describe.each([
    ['a small batch', 6],
    ['a batch for the worker threads', 3000],
  ] as const)('getters while %s is read', (_label, count) => {
    const at = Math.min(3, count - 2);

    describe.each(ATTACKS)('a getter that $name', (attack) => {
      it('macBatch / macBatchAsync: typed error, or each MAC over the bytes read', async () => {
        for (const call of ['macBatch', 'macBatchAsync'] as const) {
          const key = newKey();
          const items = attack.items(count);
          const { array, readAs } = watched(items, (i) => i === at && attack.run(items, at, key));
          await expectSafe(
            () => key[call](array),
            (macs) => expectMacs(Buffer.concat(macs), concatOracle(readAs)),
          );
        }
      });

      it('verifyBatch / verifyBatchAsync: typed error, or each result over the bytes read', async () => {
        for (const call of ['verifyBatch', 'verifyBatchAsync'] as const) {
          const key = newKey();
          const items = attack.items(count);
          const macItems = items.map((m) => sameKind(m, oracle(m)));
          const { array, readAs } = watched(items, (i) => i === at && attack.run(items, at, key));
          const macs = watched(macItems, (i) => i === at && attack.run(macItems, at, key));
          await expectSafe(
            () => key[call](array, macs.array),
            (results) => {
              const want = readAs.map((m, i) => (oracle(m).equals(macs.readAs[i]!) ? 1 : 0));
              expect([...results]).toEqual(want);
            },
          );
        }
      });

      it('packMessages: typed error, or exactly the bytes read', async () => {
        const items = attack.items(count);
        const { array, readAs } = watched(items, (i) => i === at && attack.run(items, at, newKey()));
        await expectSafe(
          () => packMessages(array),
          ({ data, offsets }) => {
            expect(offsets.length).toBe(count + 1);
            readAs.forEach((m, i) => expect(hex(data.subarray(offsets[i]!, offsets[i + 1]!))).toBe(m.toString('hex')));
          },
        );
      });

      it('KMS generateMacBatch / verifyMacBatch, sync and async', async () => {
        const client = new KmsHmacClient({ backend });
        const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
        const material = client.keyStore.getKey(KeyMetadata.KeyId)!.keyMaterial!;
        const base = { KeyId: KeyMetadata.KeyId, MacAlgorithm: ALG };
        const attackKms = (items: Uint8Array[]) => (i: number) => {
          if (i !== at) return;
          if (attack.name === 'destroys the key') client.destroy();
          else attack.run(items, at, newKey());
        };
        for (const call of ['generateMacBatch', 'generateMacBatchAsync'] as const) {
          const items = attack.items(count);
          const { array, readAs } = watched(items, attackKms(items));
          await expectSafe(
            () => client[call]({ ...base, Messages: array }),
            (out) => expectMacs(out.Macs, concatOracle(readAs, material)),
          );
        }
        for (const call of ['verifyMacBatch', 'verifyMacBatchAsync'] as const) {
          const items = attack.items(count);
          const macItems = items.map((m) => sameKind(m, oracle(m, material)));
          const { array, readAs } = watched(items, attackKms(items));
          const macs = watched(macItems, attackKms(macItems));
          await expectSafe(
            () => client[call]({ ...base, Messages: array, Macs: macs.array }),
            (out) => {
              const want = readAs.map((m, i) => (oracle(m, material).equals(macs.readAs[i]!) ? 1 : 0));
              expect([...out.MacValid]).toEqual(want);
            },
          );
        }
        await client.close();
      });
    });
  });

  describe('Proxies and lying lengths', () => {
    const items = plainItems(5);
    const lying = (length: unknown, onLength = () => {}) =>
      new Proxy(items, {
        get: (target, property, receiver) => {
          if (property === 'length') {
            onLength();
            return length;
          }
          return Reflect.get(target, property, receiver);
        },
      });

    it('an array length that is huge, negative, fractional, a string or an object is a typed error', async () => {
      let valueOfCalled = false;
      const object = {
        valueOf: () => {
          valueOfCalled = true;
          return 2;
        },
      };
      for (const length of [1e9, 2 ** 32, 2 ** 53, -1, 2.5, NaN, Infinity, '3', object, undefined]) {
        const key = newKey();
        for (const run of [
          (): unknown => key.macBatch(lying(length)),
          () => key.macBatchAsync(lying(length)),
          () => key.verifyBatch(lying(length), lying(length)),
          () => packMessages(lying(length)),
        ]) {
          expect(await expectSafe(run, () => expect.unreachable('a lying length must not succeed'))).toBe('error');
        }
      }
      expect(valueOfCalled).toBe(false);
    });

    it('a length smaller than the array: the first n messages, exactly', async () => {
      const key = newKey();
      expectMacs(Buffer.concat(key.macBatch(lying(3))), concatOracle(items.slice(0, 3)));
      expectMacs(Buffer.concat(await key.macBatchAsync(lying(2))), concatOracle(items.slice(0, 2)));
    });

    it('a length that changes between reads is read once', async () => {
      let reads = 0;
      const key = newKey();
      const array = lying(4, () => reads++);
      expectMacs(Buffer.concat(key.macBatch(array)), concatOracle(items.slice(0, 4)));
      expect(reads).toBe(1);
    });

    it('a Proxy around a Uint8Array is not a Uint8Array, wherever it is passed', async () => {
      const key = newKey();
      const fake = new Proxy(bytes(64, 1), {});
      const offsets = new Uint32Array([0, 64]);
      const out = new Uint8Array(64);
      for (const run of [
        (): unknown => key.mac(fake),
        () => key.macInto(bytes(4, 1), fake, 0),
        () => key.verify(fake, out),
        () => key.macBatch([fake]),
        () => key.macPacked(fake, offsets),
        () => key.macPackedInto(bytes(64, 1), offsets, fake),
        () => key.macPacked(bytes(64, 1), new Proxy(offsets, {})),
        () => key.macPackedAsync(fake, offsets),
        () => key.verifyPacked(bytes(64, 1), offsets, fake),
      ]) {
        const outcome = await settle(run);
        expect(outcome.ok).toBe(false);
        expect((outcome as { error: unknown }).error).toBeInstanceOf(TypeError);
      }
    });

    it('typed-array subclasses and own accessors that lie are never consulted', async () => {
      let calls = 0;
      const lie = (value: () => unknown) => ({
        configurable: true,
        get: () => {
          calls++;
          return value();
        },
      });
      const counted =
        <T>(value: () => T) =>
        () => {
          calls++;
          return value();
        };
      class Liar extends Uint8Array {}
      Object.defineProperties(Liar.prototype, {
        length: lie(() => 1e6),
        byteLength: lie(() => 1e6),
        byteOffset: lie(() => 7),
        buffer: lie(() => new ArrayBuffer(8)),
        subarray: { value: counted(() => new Uint8Array(3)) },
        slice: { value: counted(() => new Uint8Array(3)) },
        set: { value: () => void calls++ },
      });
      Object.defineProperty(
        Liar,
        Symbol.species,
        lie(() => Uint8Array),
      );
      const real = (view: Uint8Array) => new Uint8Array(Uint8Array.prototype.slice.call(view));
      const messages = [bytes(70, 1), bytes(0, 2), bytes(300, 3)];
      const { data: packed, offsets } = packMessages(messages);
      const data = new Liar(packed.length);
      Uint8Array.prototype.set.call(data, packed);
      const ownLength = bytes(50, 4);
      Object.defineProperty(
        ownLength,
        'length',
        lie(() => 0),
      );
      Object.defineProperty(ownLength, 'subarray', { value: counted(() => new Uint8Array(0)) });
      const key = newKey();
      const want = concatOracle(messages);
      calls = 0;
      const fromLiar = key.macPacked(data, offsets);
      const fromLiarAsync = await key.macPackedAsync(data, offsets);
      const out = new Liar(3 * ML);
      key.macPackedInto(packed, offsets, out);
      const single = key.mac(ownLength);
      const verified = key.verify(ownLength, oracle(bytes(50, 4)));
      const batch = key.macBatch([new Liar(4), ownLength]);
      expect(calls).toBe(0);
      expectMacs(fromLiar, want);
      expectMacs(fromLiarAsync, want);
      expectMacs(real(out), want);
      expectMacs(single, oracle(bytes(50, 4)));
      expect(verified).toBe(true);
      expectMacs(Buffer.concat(batch), concatOracle([new Uint8Array(4), bytes(50, 4)]));
    });

    it('an accessor element that detaches an element already read', async () => {
      const key = newKey();
      const items = plainItems(4);
      const original = items.map((m) => m.slice());
      const array = [...items];
      Object.defineProperty(array, 2, {
        enumerable: true,
        get() {
          detach(items[0]!.buffer);
          return items[2];
        },
      });
      expectMacs(Buffer.concat(key.macBatch(array)), concatOracle(original));
      // Element 0 is detached now: reading it again is a typed error.
      await expect(key.macBatchAsync(array)).rejects.toThrow(/messages\[0\] is backed by a detached ArrayBuffer/);
    });
  });

  describe('resizable and growable buffers', () => {
    const messages = plainItems(50);

    it('data, offsets and outputs over resizable ArrayBuffers (length-tracking views), sync and async', async () => {
      const key = newKey();
      const { data: packed, offsets: packedOffsets } = packMessages(messages);
      const data = resizable(packed);
      const offsets = new Uint32Array(resizableBuffer(packedOffsets.byteLength, 1 << 16));
      offsets.set(packedOffsets);
      const out = new Uint8Array(resizableBuffer(messages.length * ML, 1 << 16));
      const want = concatOracle(messages);
      expectMacs(key.macPackedInto(data, offsets, out), want);
      out.fill(0);
      expectMacs(await key.macPackedAsync(data, offsets, out), want);
      expectMacs(await key.macPackedAsync(data, offsets), want);
      expect([...key.verifyPacked(data, offsets, out)].every((r) => r === 1)).toBe(true);
    });

    it('growable SharedArrayBuffers: read in place by the packed forms, copied by the array forms, refused for single messages', async () => {
      const key = newKey();
      const shared = new Uint8Array(growableShared(64, 256));
      shared.set(bytes(64, 5));
      const offsets = new Uint32Array([0, 64]);
      const sharedOffsets = new Uint32Array(growableShared(8, 64));
      sharedOffsets.set(offsets);
      const want = oracle(bytes(64, 5));
      const out = new Uint8Array(growableShared(32, 64));
      expectMacs(key.macPacked(shared, offsets), want);
      expectMacs(key.macPackedInto(bytes(64, 5), sharedOffsets, out), want);
      expectMacs(await key.macPackedAsync(shared, sharedOffsets), want);
      expect([...key.verifyPacked(shared, offsets, out)]).toEqual([1]);
      for (const run of [
        (): unknown => key.mac(shared),
        () => key.macInto(bytes(3, 1), shared, 0),
        () => key.verify(bytes(3, 1), shared),
      ]) {
        const outcome = await settle(run);
        expect(outcome.ok).toBe(false);
        expect(String((outcome as { error: unknown }).error)).toMatch(/TypeError: .*SharedArrayBuffer/);
      }
      // The array forms copy each message when they read it.
      expectMacs(Buffer.concat(key.macBatch([shared, bytes(3, 1)])), concatOracle([bytes(64, 5), bytes(3, 1)]));
    });

    it('a view left out of bounds by a shrink reads as empty, or is refused', async () => {
      const key = newKey();
      const buffer = resizableBuffer(64, 128);
      const view = new Uint8Array(buffer, 16, 32);
      buffer.resize(8);
      await expectSafe(
        () => key.mac(view),
        (mac) => expectMacs(mac, oracle(new Uint8Array(0))),
      );
      await expectSafe(
        () => key.macBatch([view]),
        (macs) => expectMacs(macs[0]!, oracle(new Uint8Array(0))),
      );
    });
  });

  describe('numeric arguments', () => {
    it('valueOf and toString are never called; non-integers are RangeErrors', () => {
      const key = newKey();
      const message = bytes(10, 1);
      const out = new Uint8Array(64);
      let called = false;
      const sneaky = {
        valueOf: () => {
          called = true;
          detach(out.buffer);
          return 0;
        },
        toString: () => {
          called = true;
          return '0';
        },
      };
      expect(() => key.macInto(message, out, sneaky as never)).toThrow(TypeError);
      expect(() => key.macInto(message, out, new Number(0) as never)).toThrow(TypeError);
      expect(() => key.macInto(message, out, 0n as never)).toThrow(TypeError);
      for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, 33])
        expect(() => key.macInto(message, out, bad)).toThrow(RangeError);
      expect(called).toBe(false);
      expect(out.length).toBe(64);
      expectMacs(key.macInto(message, out, 32).subarray(32), oracle(message));
    });
  });

  describe('outputs that overlap inputs', () => {
    /**
     * One ArrayBuffer holding data (n messages), offsets (4-aligned) and,
     * for verify, MACs, at the given byte positions, plus an output view at
     * `out`. The expected results are computed from copies taken first.
     */
    function layout(
      count: number,
      place: { data: number; offsets: number; macs?: number; out: number },
      verify: boolean,
      memory: 'ArrayBuffer' | 'SharedArrayBuffer',
    ) {
      const messages = Array.from({ length: count }, (_, i) => bytes(8 + (i % 5) * 9, i + 7));
      const packed = packMessages(messages);
      const size = Math.max(
        place.data + packed.data.length,
        place.offsets + packed.offsets.byteLength,
        (place.macs ?? 0) + count * ML,
        place.out + count * ML,
      );
      const buffer = memory === 'ArrayBuffer' ? new ArrayBuffer(size + 64) : new SharedArrayBuffer(size + 64);
      const data = new Uint8Array(buffer, place.data, packed.data.length);
      const offsets = new Uint32Array(buffer, place.offsets, count + 1);
      const macs = new Uint8Array(buffer, place.macs ?? 0, count * ML);
      const out = new Uint8Array(buffer, place.out, verify ? count : count * ML);
      // Written in the order that leaves each region intact where they overlap: offsets last.
      if (verify) {
        macs.set(concatOracle(messages));
        macs[0]! ^= 1; // one wrong MAC
      }
      data.set(packed.data);
      offsets.set(packed.offsets);
      const dataCopy = data.slice();
      const offsetsCopy = offsets.slice();
      const read = Array.from({ length: count }, (_, i) => dataCopy.subarray(offsetsCopy[i]!, offsetsCopy[i + 1]!));
      const macsCopy = macs.slice();
      const wantMacs = concatOracle(read);
      const wantResults = read.map((m, i) => (oracle(m).equals(macsCopy.subarray(i * ML, (i + 1) * ML)) ? 1 : 0));
      return { data, offsets, macs, out, wantMacs, wantResults };
    }

    // [name, positions]; offsets must be 4-aligned.
    // Regions apart unless a layout overlaps them on purpose (400 messages: data
    // ~10 KiB, offsets ~1.6 KiB, MACs 12.5 KiB). Offsets must be 4-aligned.
    const MAC_LAYOUTS: [string, { data: number; offsets: number; out: number }][] = [
      ['out is data', { data: 0, offsets: 16384, out: 0 }],
      ['out starts inside data', { data: 0, offsets: 16384, out: 7 }],
      ['data starts inside out', { data: 5, offsets: 16384, out: 0 }],
      ['out covers the offsets', { data: 20480, offsets: 64, out: 0 }],
      ['out starts inside the offsets', { data: 20480, offsets: 0, out: 8 }],
      ['offsets inside out, out inside data', { data: 0, offsets: 40, out: 3 }],
      ['offsets inside data, out elsewhere', { data: 0, offsets: 12, out: 40000 }],
    ];
    const VERIFY_LAYOUTS: [string, { data: number; offsets: number; macs: number; out: number }][] = [
      ['results are the MACs', { data: 0, offsets: 16384, macs: 20480, out: 20480 }],
      ['results inside the MACs', { data: 0, offsets: 16384, macs: 20480, out: 20488 }],
      ['results inside data', { data: 0, offsets: 16384, macs: 20480, out: 9 }],
      ['results cover the offsets', { data: 40000, offsets: 100, macs: 20480, out: 96 }],
      ['MACs inside data, results inside both', { data: 0, offsets: 40000, macs: 10, out: 12 }],
    ];

    // In shared memory the async batch reads the inputs in place: an output
    // over them must still be written as if every input were read first.
    describe.each([
      ['4 messages', 4, 'ArrayBuffer'],
      ['400 messages (the worker threads for async)', 400, 'ArrayBuffer'],
      ['3000 messages (the worker threads for async, on every backend)', 3000, 'ArrayBuffer'],
      ['4 messages in a SharedArrayBuffer', 4, 'SharedArrayBuffer'],
      ['400 messages in a SharedArrayBuffer', 400, 'SharedArrayBuffer'],
      ['3000 messages in a SharedArrayBuffer', 3000, 'SharedArrayBuffer'],
    ] as const)('%s', (_label, count, memory) => {
      it.each(MAC_LAYOUTS)('macPackedInto / macPackedAsync(out): %s', async (_name, place) => {
        const key = newKey();
        let l = layout(count, place, false, memory);
        expectMacs(key.macPackedInto(l.data, l.offsets, l.out), l.wantMacs);
        l = layout(count, place, false, memory);
        const result = await key.macPackedAsync(l.data, l.offsets, l.out);
        expect(result).toBe(l.out);
        expectMacs(result, l.wantMacs);
      });

      it.each(VERIFY_LAYOUTS)('verifyPackedInto / verifyPackedAsync(results): %s', async (_name, place) => {
        const key = newKey();
        let l = layout(count, place, true, memory);
        expect([...key.verifyPackedInto(l.data, l.offsets, l.macs, l.out)]).toEqual(l.wantResults);
        l = layout(count, place, true, memory);
        expect([...(await key.verifyPackedAsync(l.data, l.offsets, l.macs, l.out))]).toEqual(l.wantResults);
      });
    });
  });

  describe('shared memory', () => {
    it.each([
      ['6 messages (inline)', 6],
      ['3000 messages (the worker threads)', 3000],
    ] as const)(
      'every mix of shared and unshared data, offsets, MACs and outputs, sync and async: %s',
      async (_label, count) => {
        const key = newKey();
        const messages = plainItems(count);
        const packed = packMessages(messages);
        const want = concatOracle(messages);
        const wrong = Uint8Array.from(want);
        wrong[ML] ^= 1; // message 1's MAC is wrong
        const wantResults = messages.map((_, i) => (i === 1 ? 0 : 1));
        for (const dataMemory of MEMORIES) {
          for (const offsetsMemory of MEMORIES) {
            const data = inMemory(dataMemory, packed.data);
            const offsets = inMemory(offsetsMemory, packed.offsets);
            for (const outMemory of [undefined, ...MEMORIES]) {
              const out = outMemory && inMemory(outMemory, new Uint8Array(want.length));
              if (out) expectMacs(key.macPackedInto(data, offsets, out), want);
              const fresh = out && inMemory(outMemory, new Uint8Array(want.length));
              const macs = await key.macPackedAsync(data, offsets, fresh);
              expectMacs(macs, want);
              if (fresh) expect(macs).toBe(fresh);
              for (const macsMemory of MEMORIES) {
                const expected = inMemory(macsMemory, wrong);
                const results = outMemory && inMemory(outMemory, new Uint8Array(count));
                if (results) expect([...key.verifyPackedInto(data, offsets, expected, results)]).toEqual(wantResults);
                const target = outMemory && inMemory(outMemory, new Uint8Array(count));
                expect([...(await key.verifyPackedAsync(data, offsets, expected, target))]).toEqual(wantResults);
              }
            }
          }
        }
      },
    );

    it('a worker thread rewriting the data during batches: every MAC is over one of the states the bytes were in', async () => {
      const key = newKey();
      const count = 3000;
      const messages = plainItems(count); // 20..109 bytes
      const batch = new BatchBuffer(ALG, { maxMessages: count, maxBytes: 1 << 20 });
      for (const m of messages) batch.append(m, oracle(m));
      // The writer flips the first and the last byte of every message between 0x00 and 0xff.
      const positions = messages.flatMap((_, i) => [batch.offsets[i]!, batch.offsets[i + 1]! - 1]);
      const states = [0x00, 0xff].map((v) => positions.map(() => v));
      const valid = messages.map((m) => {
        const macs = new Set<string>();
        for (const first of [0x00, 0xff]) {
          for (const last of [0x00, 0xff]) {
            const variant = Uint8Array.from(m);
            variant[0] = first;
            variant[m.length - 1] = last;
            macs.add(oracle(variant).toString('hex'));
          }
        }
        return macs;
      });
      const checkMacs = (macs: Uint8Array) => {
        for (let i = 0; i < count; i++) {
          const mac = Buffer.from(macs.buffer, macs.byteOffset + i * ML, ML).toString('hex');
          if (!valid[i]!.has(mac)) expect.fail(`MAC ${i} is over none of the states of message ${i}`);
        }
      };
      const checkResults = (results: Uint8Array) => expect(results.every((r) => r === 0 || r === 1)).toBe(true);
      const writer = new Writer(batch.data, positions, states);
      await writer.started();
      try {
        const offsets = batch.offsets.subarray(0, count + 1);
        const plainOffsets = offsets.slice();
        for (let round = 0; round < 8; round++) {
          checkMacs(await batch.macAsync(key));
          checkResults(await batch.verifyAsync(key));
          checkMacs(batch.mac(key));
          checkResults(batch.verify(key));
          checkMacs(await key.macPackedAsync(batch.data, plainOffsets));
          checkMacs(await key.macPackedAsync(batch.data, offsets, new Uint8Array(count * ML)));
          checkResults(await key.verifyPackedAsync(batch.data, plainOffsets, batch.macs.slice(0, count * ML)));
        }
      } finally {
        expect(await writer.stop()).toBeGreaterThan(0);
      }
      // With the writer gone the bytes hold still: the MACs of what they hold now.
      const now = Array.from({ length: count }, (_, i) => batch.data.slice(batch.offsets[i], batch.offsets[i + 1]));
      expectMacs(await batch.macAsync(key), concatOracle(now));
    }, 120_000);

    it('a worker thread rewriting the offsets during batches: a RangeError, or every MAC over bounds the offsets held', async () => {
      const key = newKey();
      const count = 3000;
      const size = 64;
      const data = inMemory('SharedArrayBuffer', bytes(count * size, 3));
      const offsets = inMemory(
        'SharedArrayBuffer',
        Uint32Array.from({ length: count + 1 }, (_, i) => i * size),
      );
      // Every 5th offset moves between its place and 17 bytes on, which any mix
      // of the others keeps in order; one of them also goes past the end of
      // data, and before its predecessor.
      const moving = Array.from({ length: count / 5 - 1 }, (_, j) => (j + 1) * 5);
      const bad = moving[moving.length >> 1]!;
      const shifts = [...Array.from({ length: 14 }, (_, k) => (k % 2) * 17), 'past', 'back'] as const;
      const states = shifts.map((shift) =>
        moving.map((i) => {
          if (i !== bad && typeof shift === 'string') return i * size;
          return shift === 'past' ? 0xffffffff : shift === 'back' ? (i - 2) * size : i * size + (shift as number);
        }),
      );
      const starts = (i: number) => (i % 5 === 0 && i > 0 && i < count ? [i * size, i * size + 17] : [i * size]);
      const valid = Array.from({ length: count }, (_, i) => {
        const macs = new Set<string>();
        for (const s of starts(i)) for (const e of starts(i + 1)) macs.add(oracle(data.subarray(s, e)).toString('hex'));
        return macs;
      });
      const outcomes = { value: 0, error: 0 };
      const check = async (run: () => Uint8Array | Promise<Uint8Array>) => {
        const outcome = await settle(run);
        if (!outcome.ok) {
          expect(outcome.error).toBeInstanceOf(RangeError);
          outcomes.error++;
          return;
        }
        outcomes.value++;
        for (let i = 0; i < count; i++) {
          const mac = Buffer.from(outcome.value.buffer, outcome.value.byteOffset + i * ML, ML).toString('hex');
          if (!valid[i]!.has(mac)) expect.fail(`MAC ${i} is over none of the bounds its offsets held`);
        }
      };
      const writer = new Writer(offsets, moving, states);
      await writer.started();
      expect(offsets.buffer).toBeInstanceOf(SharedArrayBuffer);
      try {
        const sharedOut = new Uint8Array(new SharedArrayBuffer(count * ML));
        for (let round = 0; round < 12; round++) {
          await check(() => key.macPackedAsync(data, offsets));
          await check(() => key.macPackedAsync(data, offsets, sharedOut));
          await check(() => key.macPacked(data, offsets));
          await check(() => key.macPackedAsync(bytes(count * size, 3), offsets));
          const verified = await settle(() => key.verifyPackedAsync(data, offsets, sharedOut));
          if (!verified.ok) expect(verified.error).toBeInstanceOf(RangeError);
          else expect(verified.value.every((r) => r === 0 || r === 1)).toBe(true);
        }
      } finally {
        expect(await writer.stop()).toBeGreaterThan(0);
      }
      expect(outcomes.value + outcomes.error).toBe(48);
    }, 120_000);

    it('growable buffers grown during the batch: it covers the lengths read at the call', async () => {
      const key = newKey();
      const messages = plainItems(3000);
      const packed = packMessages(messages);
      const want = concatOracle(messages);
      const grown = (content: Uint8Array | Uint32Array) => {
        const buffer = growableShared(content.byteLength, 4 * content.byteLength + 4096);
        const view = content instanceof Uint32Array ? new Uint32Array(buffer) : new Uint8Array(buffer);
        view.set(content);
        return view; // length-tracking
      };
      const grow = (view: ArrayBufferView) => {
        const buffer = view.buffer as SharedArrayBuffer & { grow(length: number): void; maxByteLength: number };
        buffer.grow(buffer.maxByteLength);
        new Uint8Array(buffer).fill(0xee, buffer.byteLength >> 1); // junk where nothing was
      };
      for (let round = 0; round < 3; round++) {
        const data = grown(packed.data) as Uint8Array;
        const offsets = grown(packed.offsets) as Uint32Array;
        const out = grown(new Uint8Array(want.length)) as Uint8Array;
        const macs = grown(want) as Uint8Array;
        const pending = key.macPackedAsync(data, offsets, out);
        const verified = key.verifyPackedAsync(data, offsets, macs);
        if (round === 0) {
          grow(data); // here, as soon as the calls return
          grow(offsets);
        } else {
          // From another thread, while the batches run.
          const code = `const { workerData } = require('node:worker_threads');
            for (const b of workerData) { b.grow(b.maxByteLength); new Uint8Array(b).fill(0xee, b.byteLength >> 1); }`;
          const worker = new Worker(code, { eval: true, workerData: [data.buffer, offsets.buffer, macs.buffer] });
          await once(worker, 'exit');
        }
        const result = await pending;
        expect(result).toBe(out);
        expectMacs(result.subarray(0, want.length), want);
        expect((await verified).every((r) => r === 1)).toBe(true);
        grow(out);
      }
    });

    it('the thread that allocated the memory exits during the batch', async () => {
      const key = newKey();
      const count = 3000;
      const code = `const { parentPort, workerData: count } = require('node:worker_threads');
        // (Filled in place: map() would return views over new, unshared memory.)
        const data = new Uint8Array(new SharedArrayBuffer(count * 64));
        data.forEach((_, i) => (data[i] = (i * 31) & 0xff));
        const offsets = new Uint32Array(new SharedArrayBuffer((count + 1) * 4));
        offsets.forEach((_, i) => (offsets[i] = i * 64));
        parentPort.postMessage({ data, offsets });
        parentPort.once('message', () => process.exit(0));`;
      const worker = new Worker(code, { eval: true, workerData: count });
      const [{ data, offsets }] = (await once(worker, 'message')) as [{ data: Uint8Array; offsets: Uint32Array }];
      expect(data.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(offsets.buffer).toBeInstanceOf(SharedArrayBuffer);
      const want = concatOracle(Array.from({ length: count }, (_, i) => data.slice(i * 64, (i + 1) * 64)));
      const pending = key.macPackedAsync(data, offsets, new Uint8Array(new SharedArrayBuffer(count * ML)));
      worker.postMessage('exit');
      await once(worker, 'exit');
      expectMacs(await pending, want);
    });

    it('destroy() while batches over shared memory run: they finish with their own copy of the key', async () => {
      const messages = plainItems(3000);
      const want = concatOracle(messages);
      const batch = new BatchBuffer(ALG, { maxMessages: 3000, maxBytes: 1 << 20 });
      for (const m of messages) batch.append(m, oracle(m));
      let key = newKey();
      const pending = batch.macAsync(key);
      key.destroy();
      expectMacs(await pending, want);
      key = newKey();
      const verified = batch.verifyAsync(key);
      key.destroy();
      expect((await verified).every((r) => r === 1)).toBe(true);
      await expect(batch.macAsync(key)).rejects.toThrow(/destroyed/);
      expect(batch.inFlight).toBe(false);
    });

    it('a BatchBuffer refuses its own methods while its batch is in flight', async () => {
      const key = newKey();
      const batch = new BatchBuffer(ALG, { maxMessages: 3000, maxBytes: 1 << 20 });
      for (const m of plainItems(3000)) batch.append(m);
      const pending = batch.macAsync(key);
      expect(batch.inFlight).toBe(true);
      for (const run of [
        () => batch.append(bytes(3, 1)),
        () => batch.reserve(3),
        () => batch.reset(),
        () => batch.mac(key),
        () => batch.verify(key),
      ]) {
        expect(run).toThrow(/in flight/);
      }
      await expect(batch.macAsync(key)).rejects.toThrow(/in flight/);
      await pending;
      expect(batch.inFlight).toBe(false);
      expect(batch.count).toBe(3000);
    });
  });

  describe('after an async call has returned', () => {
    const messages = Array.from({ length: 4000 }, (_, i) => bytes(16 + (i % 64), i));

    it('detaching or rewriting the inputs changes nothing', async () => {
      const key = newKey();
      const want = concatOracle(messages);
      for (const count of [3, messages.length]) {
        const { data, offsets } = packMessages(messages.slice(0, count));
        const pending = key.macPackedAsync(data, offsets);
        detach(data.buffer);
        detach(offsets.buffer);
        expectMacs(await pending, want.subarray(0, count * ML));
        const copies = messages.slice(0, count).map((m) => m.slice());
        const batch = key.macBatchAsync(copies);
        for (const m of copies) detach(m.buffer);
        expectMacs(Buffer.concat(await batch), want.subarray(0, count * ML));
        const macs = new Uint8Array(want.subarray(0, count * ML));
        const packed = packMessages(messages.slice(0, count));
        const verified = key.verifyPackedAsync(packed.data, packed.offsets, macs);
        macs.fill(0);
        detach(packed.data.buffer);
        expect((await verified).every((r) => r === 1)).toBe(true);
      }
    });

    it('an output detached, shrunk or grown before the batch ends: a typed error or the MACs in it', async () => {
      const key = newKey();
      const want = concatOracle(messages);
      const { data, offsets } = packMessages(messages);
      for (const [action, expectError] of [
        ['detach', TypeError],
        ['shrink', RangeError],
        ['grow', null],
      ] as const) {
        const out = new Uint8Array(resizableBuffer(want.length, 2 * want.length));
        const pending = key.macPackedAsync(data, offsets, out);
        let moved: ArrayBuffer | undefined;
        if (action === 'detach') moved = detach(out.buffer);
        else resize(out, action === 'shrink' ? 100 : 2 * want.length);
        const outcome = await settle(() => pending);
        if (outcome.ok) {
          // Written before the change (a batch small enough to run inline), or after it, into a buffer still large enough.
          const written = moved ? new Uint8Array(moved) : outcome.value;
          expectMacs(
            written.subarray(0, Math.min(written.length, want.length)),
            want.subarray(0, Math.min(written.length, want.length)),
          );
        } else {
          expect(expectError).not.toBeNull();
          expect(outcome.error).toBeInstanceOf(expectError!);
        }
      }
    });

    it('destroy() while async batches run: they finish with their own copy of the key', async () => {
      const want = concatOracle(messages);
      const { data, offsets } = packMessages(messages);
      let key = newKey();
      const packed = key.macPackedAsync(data, offsets);
      key.destroy();
      expectMacs(await packed, want);
      key = newKey();
      const array = key.macBatchAsync(messages);
      const verified = key.verifyPackedAsync(data, offsets, want);
      key.destroy();
      expectMacs(Buffer.concat(await array), want);
      expect((await verified).every((r) => r === 1)).toBe(true);
      await expect(key.macPackedAsync(data, offsets)).rejects.toThrow(/destroyed/);

      const client = new KmsHmacClient({ backend });
      const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
      const material = client.keyStore.getKey(KeyMetadata.KeyId)!.keyMaterial!;
      const pending = client.generateMacBatchAsync({
        KeyId: KeyMetadata.KeyId,
        MacAlgorithm: ALG,
        Data: data,
        Offsets: offsets,
      });
      await client.close(); // wipes every prepared key
      expectMacs((await pending).Macs, concatOracle(messages, material));
    });
  });
});
