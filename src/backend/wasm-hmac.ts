/**
 * WasmHmac drives one instance of the WebAssembly HMAC module (built from
 * assembly/): on the main thread for the sync calls (src/backend/wasm.ts)
 * and in each async worker (src/backend/wasm-worker.ts), so both run exactly
 * the same chunking code.
 * Inputs are copied into the module's static regions and results copied out,
 * one WASM call per chunk of messages (never one per message).
 *
 * WASM memory (fixed size, addresses exported by the module, see
 * assembly/layout.ts):
 *
 *   DATA 1 MiB | OFFS (MAX_BATCH+1) u32 | OUT MAX_BATCH x 64 B | RES | KEYS 8192 x 128 B | KEYWIN 4 KiB | scratch
 *
 * Callers pass plain views they own (src/mac/views.ts plainView): methods of a
 * caller's own subclass are never called here.
 */
import { byteLength, copyInto, plainView } from '../mac/views.js';
import { checkAlgorithmTable } from './types.js';

// The slice of the WebAssembly JS API used here, typed locally: the
// project's lib (ES2022 + @types/node) declares no WebAssembly globals.
export interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
}
export const WA = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** Bytes of one key slot: inner state @0, outer state @64 (assembly/layout.ts SLOT_SIZE). */
export const SLOT_SIZE = 128;

export class WasmHmac {
  // biome-ignore lint/suspicious/noExplicitAny: the module's exports, typed by the checks in the constructor
  readonly ex: any;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly DATA: number;
  readonly DATA_SIZE: number;
  readonly OFFS: number;
  readonly OUT: number;
  readonly RES: number;
  readonly KEYS: number;
  readonly KEYWIN: number;
  readonly KEYWIN_SIZE: number;
  readonly KEY_SLOTS: number;
  readonly SLOT_SIZE: number;
  readonly MAX_BATCH: number;
  readonly simd: boolean;

  constructor(instance: WasmInstance) {
    // biome-ignore lint/suspicious/noExplicitAny: as above
    const ex: any = instance.exports;
    this.ex = ex;
    const memory = ex.memory as WasmMemory;
    // Fixed-size memory (initial == maximum): these views never detach.
    this.u8 = new Uint8Array(memory.buffer);
    this.u32 = new Uint32Array(memory.buffer);
    this.DATA = ex.DATA.value;
    this.DATA_SIZE = ex.DATA_SIZE.value;
    this.OFFS = ex.OFFS.value;
    this.OUT = ex.OUT.value;
    this.RES = ex.RES.value;
    this.KEYS = ex.KEYS.value;
    this.KEYWIN = ex.KEYWIN.value;
    this.KEYWIN_SIZE = ex.KEYWIN_SIZE.value;
    this.KEY_SLOTS = ex.KEY_SLOTS.value;
    this.SLOT_SIZE = ex.SLOT_SIZE.value;
    this.MAX_BATCH = ex.MAX_BATCH.value;
    this.simd = ex.SIMD.value === 1;
    checkAlgorithmTable(
      'the WebAssembly module',
      ex.ALGORITHM_COUNT.value,
      ex.algorithmMacLength,
      ex.algorithmBlockLength,
    );
  }

  /** Precomputes the key's inner/outer states into `slot`; key copies are wiped. */
  setKey(slot: number, alg: number, key: Uint8Array): void {
    const ex = this.ex;
    try {
      let len = key.length;
      if (len > (alg >= 2 ? 128 : 64)) {
        // RFC 2104: keys longer than the block are hashed first.
        ex.streamInit(alg, -1);
        for (let p = 0; p < key.length; p += this.KEYWIN_SIZE) {
          const chunk = key.subarray(p, p + this.KEYWIN_SIZE);
          this.u8.set(chunk, this.KEYWIN);
          ex.streamUpdate(1, chunk.length);
        }
        len = ex.streamDigestToKeyWindow();
      } else {
        this.u8.set(key, this.KEYWIN);
      }
      if (ex.keySetup(slot, alg, len) !== 0) throw new Error('kms-hmac wasm: key setup rejected its arguments');
    } finally {
      ex.wipeScratch();
    }
  }

  readSlot(slot: number): Uint8Array {
    const at = this.KEYS + slot * this.SLOT_SIZE;
    return this.u8.slice(at, at + this.SLOT_SIZE);
  }

  writeSlot(slot: number, state: Uint8Array): void {
    this.u8.set(state, this.KEYS + slot * this.SLOT_SIZE);
  }

  wipeSlot(slot: number): void {
    this.ex.keyWipe(slot);
  }

  /** Streams a message larger than DATA through the inner hash. */
  private stream(slot: number, alg: number, message: Uint8Array): void {
    const ex = this.ex;
    const msg = plainView(message);
    if (ex.streamInit(alg, slot) !== 0) throw new Error('kms-hmac wasm: bad stream arguments');
    for (let p = 0; p < msg.length; p += this.DATA_SIZE) {
      const chunk = msg.subarray(p, p + this.DATA_SIZE);
      this.u8.set(chunk, this.DATA);
      ex.streamUpdate(0, chunk.length);
    }
  }

  /** MAC of `msg` into `out` at `outOffset` (room already checked). */
  macInto(slot: number, alg: number, ml: number, msg: Uint8Array, out: Uint8Array, outOffset: number): void {
    const length = byteLength(msg);
    if (length <= this.DATA_SIZE) {
      this.u8.set(msg, this.DATA);
      if (this.ex.macOne(slot, alg, length) !== 0) throw new Error('kms-hmac wasm: bad MAC arguments');
    } else {
      this.stream(slot, alg, msg);
      if (this.ex.streamMacFinal(slot, 0) < 0) throw new Error('kms-hmac wasm: bad MAC arguments');
    }
    copyInto(out, this.u8.subarray(this.OUT, this.OUT + ml), outOffset);
  }

  /** Constant-time inside WASM; a MAC of another length is false. */
  verify(slot: number, alg: number, ml: number, msg: Uint8Array, mac: Uint8Array): boolean {
    if (byteLength(mac) !== ml) return false;
    const length = byteLength(msg);
    let r: number;
    if (length <= this.DATA_SIZE) {
      this.u8.set(msg, this.DATA);
      this.u8.set(mac, this.OUT);
      r = this.ex.verifyOne(slot, alg, length);
    } else {
      this.stream(slot, alg, msg);
      this.u8.set(mac, this.OUT);
      r = this.ex.streamMacFinal(slot, 1);
    }
    if (r < 0) throw new Error('kms-hmac wasm: bad verify arguments');
    return r === 1;
  }

  /**
   * Packed batch, one WASM call per chunk (as many messages as fit DATA and
   * MAX_BATCH). mode 0: MACs into `io` at ml stride. mode 1: `io` holds the
   * expected MACs at ml stride; 1/0 per message into `results`. Writes go
   * chunk by chunk: outputs must not overlap the inputs (the caller
   * redirects them).
   */
  packed(
    slot: number,
    alg: number,
    ml: number,
    data: Uint8Array,
    offsets: Uint32Array,
    mode: number,
    io: Uint8Array,
    results?: Uint8Array,
  ): void {
    const n = offsets.length - 1;
    const { u8, u32, DATA, DATA_SIZE, OUT, RES, MAX_BATCH } = this;
    let i = 0;
    while (i < n) {
      const start = offsets[i]!;
      if (offsets[i + 1]! - start > DATA_SIZE) {
        const msg = data.subarray(start, offsets[i + 1]);
        if (mode === 0) this.macInto(slot, alg, ml, msg, io, i * ml);
        else results![i] = this.verify(slot, alg, ml, msg, io.subarray(i * ml, i * ml + ml)) ? 1 : 0;
        i++;
        continue;
      }
      const limit = Math.min(n, i + MAX_BATCH);
      let j = i + 1;
      while (j < limit && offsets[j + 1]! - start <= DATA_SIZE) j++;
      const count = j - i;
      u8.set(data.subarray(start, offsets[j]), DATA);
      u32.set(offsets.subarray(i, j + 1), this.OFFS >>> 2);
      if (mode === 1) u8.set(io.subarray(i * ml, j * ml), OUT);
      const rc = this.ex.batch(slot, alg, count, start, mode);
      if (rc !== 0)
        throw new RangeError(`kms-hmac wasm: batch rejected (${rc === 2 ? 'bad offsets' : 'bad arguments'})`);
      if (mode === 0) io.set(u8.subarray(OUT, OUT + count * ml), i * ml);
      else results!.set(u8.subarray(RES, RES + count), i);
      i = j;
    }
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * The work of packed messages [b, e), in bytes of compression-function input:
 * their bytes plus, per message, its padding (1 + blockLength / 8), half a
 * block of rounding on average and the outer hash's block. Async batches are
 * split by it so that parts cost the same whatever the mix of message
 * lengths, from the offsets alone (no pass over the messages, a binary search
 * for each split): the rule native/async_batch.cc cuts its units by.
 */
export function workBytes(offsets: Uint32Array, b: number, e: number, blockLength: number): number {
  const perMessage = 1 + blockLength / 8 + blockLength + blockLength / 2;
  return offsets[e]! - offsets[b]! + (e - b) * perMessage;
}

/**
 * One part of an async batch, as sent to a worker: a single ArrayBuffer
 * (transferred there and back, then recycled) laid out as
 *
 *   key state (SLOT_SIZE) | offsets (count+1) x u32 | MACs count x ml (verify) | results | data
 *
 * where results are count x ml MACs, or count bytes of 1/0 for verify.
 */
export interface PartJob {
  id: number;
  alg: number;
  ml: number;
  verify: boolean;
  count: number;
  dataLength: number;
  buffer: ArrayBuffer;
}

export interface PartLayout {
  offsets: number;
  macs: number;
  results: number;
  resultsLength: number;
  data: number;
  size: number;
}

export function partLayout(count: number, dataLength: number, ml: number, verify: boolean): PartLayout {
  const offsets = SLOT_SIZE;
  const macs = offsets + (count + 1) * 4;
  const results = macs + (verify ? count * ml : 0);
  const resultsLength = verify ? count : count * ml;
  const data = results + resultsLength;
  return { offsets, macs, results, resultsLength, data, size: data + dataLength };
}

/** Runs one part in `hmac`'s slot 0 and wipes the key state wherever it was. */
export function runPart(hmac: WasmHmac, job: PartJob): void {
  const at = partLayout(job.count, job.dataLength, job.ml, job.verify);
  const bytes = new Uint8Array(job.buffer);
  const keyState = bytes.subarray(0, SLOT_SIZE);
  try {
    hmac.writeSlot(0, keyState);
    keyState.fill(0);
    const offsets = new Uint32Array(job.buffer, at.offsets, job.count + 1);
    const data = bytes.subarray(at.data, at.data + job.dataLength);
    const results = bytes.subarray(at.results, at.results + at.resultsLength);
    if (job.verify) {
      hmac.packed(0, job.alg, job.ml, data, offsets, 1, bytes.subarray(at.macs, at.results), results);
    } else {
      hmac.packed(0, job.alg, job.ml, data, offsets, 0, results);
    }
  } finally {
    keyState.fill(0);
    hmac.wipeSlot(0);
  }
}
