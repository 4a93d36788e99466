/**
 * The WebAssembly backends ('wasm-simd', 'wasm-scalar'): HMAC-SHA-2 from the
 * AssemblyScript engine in assembly/, embedded by src/backend/wasm-binaries.ts.
 *
 * One instance per backend (plus one per async worker). Compiled modules are
 * cached; instantiation is synchronous so backend selection stays sync.
 * Inputs are copied into the engine's static regions and results copied out,
 * one call per chunk of messages (never one call per message).
 *
 * WASM memory (fixed size, addresses exported by the module, see
 * assembly/layout.ts):
 *
 *   DATA 1 MiB | OFFS (MAX_BATCH+1) u32 | OUT MAX_BATCH x 64 B | RES | KEYS 8192 x 128 B | KEYWIN 4 KiB | scratch
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { MAC_LENGTH } from './types.js';
import type { Backend, BackendKey, BackendName, MacAlgorithm } from './types.js';
import { WASM_HASH, WASM_SCALAR_BASE64, WASM_SIMD_BASE64 } from './wasm-binaries.js';

export type WasmVariant = 'simd' | 'scalar';

// The slice of the WebAssembly JS API used here, typed locally: the
// project's lib (ES2022 + @types/node) declares no WebAssembly globals.
interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
}
const WA = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

const ALG_CODE: Readonly<Record<MacAlgorithm, number>> = {
  HMAC_SHA_224: 0,
  HMAC_SHA_256: 1,
  HMAC_SHA_384: 2,
  HMAC_SHA_512: 3,
};

/** Batches smaller than this many messages or bytes stay on one worker. */
const MIN_PART_MESSAGES = 64;
const MIN_PART_BYTES = 32 * 1024;
/** Per-message cost (in bytes) used to balance parts across workers. */
const MESSAGE_COST = 64;

// ------------------------------------------------------------------ engine

/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * Drives one WebAssembly instance of the engine. Self-contained on purpose
 * (no imports, no closure over module state): its source text is also
 * evaluated inside the async worker threads, so src/ (vitest) and dist/
 * (tsc output) need no separate worker file.
 */
export class WasmEngine {
  // `declare`: no class-field emit, so the source text stays plain ES2015
  // class syntax whatever a bundler's target (it is eval'd in workers).
  declare readonly ex: any;
  declare readonly memory: WasmMemory;
  declare readonly u8: Uint8Array;
  declare readonly u32: Uint32Array;
  declare readonly DATA: number;
  declare readonly DATA_SIZE: number;
  declare readonly OFFS: number;
  declare readonly OUT: number;
  declare readonly RES: number;
  declare readonly KEYS: number;
  declare readonly KEYWIN: number;
  declare readonly KEYWIN_SIZE: number;
  declare readonly KEY_SLOTS: number;
  declare readonly SLOT_SIZE: number;
  declare readonly MAX_BATCH: number;
  declare readonly simd: boolean;

  constructor(instance: WasmInstance) {
    const ex: any = instance.exports;
    this.ex = ex;
    this.memory = ex.memory;
    // Fixed-size memory (initial == maximum): these views never detach.
    this.u8 = new Uint8Array(this.memory.buffer);
    this.u32 = new Uint32Array(this.memory.buffer);
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
  private stream(slot: number, alg: number, msg: Uint8Array): void {
    const ex = this.ex;
    if (ex.streamInit(alg, slot) !== 0) throw new Error('kms-hmac wasm: bad stream arguments');
    for (let p = 0; p < msg.length; p += this.DATA_SIZE) {
      const chunk = msg.subarray(p, p + this.DATA_SIZE);
      this.u8.set(chunk, this.DATA);
      ex.streamUpdate(0, chunk.length);
    }
  }

  macInto(slot: number, alg: number, ml: number, msg: Uint8Array, out: Uint8Array, outOffset: number): void {
    if (msg.length <= this.DATA_SIZE) {
      this.u8.set(msg, this.DATA);
      if (this.ex.macOne(slot, alg, msg.length) !== 0) throw new Error('kms-hmac wasm: bad MAC arguments');
    } else {
      this.stream(slot, alg, msg);
      if (this.ex.streamMacFinal(slot, 0) < 0) throw new Error('kms-hmac wasm: bad MAC arguments');
    }
    out.set(this.u8.subarray(this.OUT, this.OUT + ml), outOffset);
  }

  /** Constant-time inside WASM; a MAC of another length is false. */
  verify(slot: number, alg: number, ml: number, msg: Uint8Array, mac: Uint8Array): boolean {
    if (mac.length !== ml) return false;
    let r: number;
    if (msg.length <= this.DATA_SIZE) {
      this.u8.set(msg, this.DATA);
      this.u8.set(mac, this.OUT);
      r = this.ex.verifyOne(slot, alg, msg.length);
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
   * expected MACs at ml stride; 1/0 per message into `results`.
   */
  packed(
    slot: number, alg: number, ml: number, data: Uint8Array, offsets: Uint32Array,
    mode: number, io: Uint8Array, results?: Uint8Array,
  ): void {
    const n = offsets.length - 1;
    const { u8, u32, DATA, DATA_SIZE, OUT, RES, MAX_BATCH } = this;
    let i = 0;
    while (i < n) {
      const start = offsets[i];
      if (offsets[i + 1] - start > DATA_SIZE) {
        const msg = data.subarray(start, offsets[i + 1]);
        if (mode === 0) this.macInto(slot, alg, ml, msg, io, i * ml);
        else results![i] = this.verify(slot, alg, ml, msg, io.subarray(i * ml, i * ml + ml)) ? 1 : 0;
        i++;
        continue;
      }
      const limit = Math.min(n, i + MAX_BATCH);
      let j = i + 1;
      while (j < limit && offsets[j + 1] - start <= DATA_SIZE) j++;
      const count = j - i;
      u8.set(data.subarray(start, offsets[j]), DATA);
      u32.set(offsets.subarray(i, j + 1), this.OFFS >>> 2);
      if (mode === 1) u8.set(io.subarray(i * ml, j * ml), OUT);
      const rc = this.ex.batch(slot, alg, count, start, mode);
      if (rc !== 0) throw new RangeError(`kms-hmac wasm: batch rejected (${rc === 2 ? 'bad offsets' : 'bad arguments'})`);
      if (mode === 0) io.set(u8.subarray(OUT, OUT + count * ml), i * ml);
      else results!.set(u8.subarray(RES, RES + count), i);
      i = j;
    }
  }

  /** Array batch: messages copied straight into DATA, one WASM call per chunk. */
  array(
    slot: number, alg: number, ml: number, messages: readonly Uint8Array[],
    mode: number, out: Uint8Array | null, macs: readonly Uint8Array[] | null, results: Uint8Array | null,
  ): void {
    const n = messages.length;
    const { u8, u32, DATA, DATA_SIZE, OUT, RES, MAX_BATCH } = this;
    const offs = this.OFFS >>> 2;
    let i = 0;
    while (i < n) {
      if (messages[i].length > DATA_SIZE) {
        if (mode === 0) this.macInto(slot, alg, ml, messages[i], out!, i * ml);
        else results![i] = this.verify(slot, alg, ml, messages[i], macs![i]) ? 1 : 0;
        i++;
        continue;
      }
      let count = 0;
      let cursor = 0;
      u32[offs] = 0;
      while (i + count < n && count < MAX_BATCH) {
        const m = messages[i + count];
        if (cursor + m.length > DATA_SIZE) break;
        u8.set(m, DATA + cursor);
        cursor += m.length;
        count++;
        u32[offs + count] = cursor;
      }
      if (mode === 1) {
        for (let k = 0; k < count; k++) {
          const mac = macs![i + k];
          if (mac.length === ml) u8.set(mac, OUT + k * ml);
          else u8.fill(0, OUT + k * ml, OUT + k * ml + ml);
        }
      }
      const rc = this.ex.batch(slot, alg, count, 0, mode);
      if (rc !== 0) throw new RangeError('kms-hmac wasm: batch rejected its arguments');
      if (mode === 0) {
        out!.set(u8.subarray(OUT, OUT + count * ml), i * ml);
      } else {
        results!.set(u8.subarray(RES, RES + count), i);
        for (let k = 0; k < count; k++) if (macs![i + k].length !== ml) results![i + k] = 0;
      }
      i += count;
    }
  }
}
/* eslint-enable @typescript-eslint/no-explicit-any */

// ------------------------------------------------------------ module cache

const modules = new Map<WasmVariant, WasmModule>();

function wasmBytes(variant: WasmVariant): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(Buffer.from(variant === 'simd' ? WASM_SIMD_BASE64 : WASM_SCALAR_BASE64, 'base64'));
}

/** Whether this JavaScript engine can run the SIMD128 build. */
export function wasmSimdSupported(): boolean {
  try {
    return WA !== undefined && WA.validate(wasmBytes('simd'));
  } catch {
    return false;
  }
}

function compiledModule(variant: WasmVariant): WasmModule {
  let mod = modules.get(variant);
  if (mod) return mod;
  if (WA === undefined) throw new Error('kms-hmac: WebAssembly is not available in this JavaScript engine');
  const bytes = wasmBytes(variant);
  if (!WA.validate(bytes)) {
    throw new Error(
      variant === 'simd'
        ? 'kms-hmac: this JavaScript engine does not support WebAssembly SIMD128 (the wasm-scalar backend does not need it)'
        : 'kms-hmac: the WebAssembly module failed validation',
    );
  }
  mod = new WA.Module(bytes);
  modules.set(variant, mod);
  return mod;
}

// ------------------------------------------------------------- worker pool

interface Job {
  resolve: (r: Uint8Array) => void;
  reject: (e: Error) => void;
  worker: PoolWorker;
}
interface PoolWorker {
  worker: Worker;
  pending: number;
}

let workerSource: string | undefined;
function getWorkerSource(): string {
  // The engine class's own source text, so the worker runs exactly the same
  // chunking code as the main thread (works from src/ and from dist/).
  // Dynamic import, not require(): eval workers inherit the parent's
  // execArgv, so the same code must parse as CommonJS and as an ES module
  // (e.g. under --input-type=module).
  workerSource ??= `'use strict';
const WasmEngine = (${WasmEngine.toString()});
import('node:worker_threads').then(({ parentPort, workerData }) => {
  const engine = new WasmEngine(new WebAssembly.Instance(workerData.module, {}));
  parentPort.on('message', (job) => {
    const { id, keyState, alg, ml, data, offsets, macs } = job;
    try {
      engine.writeSlot(0, keyState);
      keyState.fill(0);
      const n = offsets.length - 1;
      let result;
      if (macs) {
        result = new Uint8Array(n);
        engine.packed(0, alg, ml, data, offsets, 1, macs, result);
      } else {
        result = new Uint8Array(n * ml);
        engine.packed(0, alg, ml, data, offsets, 0, result);
      }
      engine.wipeSlot(0);
      parentPort.postMessage({ id, result }, [result.buffer]);
    } catch (err) {
      engine.wipeSlot(0);
      parentPort.postMessage({ id, error: String((err && err.message) || err) });
    }
  });
});
`;
  return workerSource;
}

/**
 * One WASM instance per worker. Workers are unref()ed while idle, so they
 * never keep the process alive, and ref()ed while they hold a job, so an
 * awaited batch cannot be cut short by the process exiting.
 */
class WorkerPool {
  private readonly workers: PoolWorker[] = [];
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;

  constructor(
    private readonly module: WasmModule,
    readonly size: number,
  ) {}

  private spawn(): PoolWorker {
    const worker = new Worker(getWorkerSource(), { eval: true, workerData: { module: this.module } });
    const pw: PoolWorker = { worker, pending: 0 };
    worker.unref();
    worker.on('message', (msg: { id: number; result?: Uint8Array; error?: string }) => {
      const job = this.jobs.get(msg.id);
      if (!job) return;
      this.jobs.delete(msg.id);
      this.settle(pw);
      if (msg.error !== undefined) job.reject(new Error(`kms-hmac wasm worker: ${msg.error}`));
      else job.resolve(msg.result!);
    });
    const fail = (err: Error) => {
      const i = this.workers.indexOf(pw);
      if (i >= 0) this.workers.splice(i, 1);
      for (const [id, job] of this.jobs) {
        if (job.worker !== pw) continue;
        this.jobs.delete(id);
        job.reject(new Error(`kms-hmac wasm worker failed: ${err.message}`));
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.workers.push(pw);
    return pw;
  }

  private settle(pw: PoolWorker): void {
    if (--pw.pending === 0) pw.worker.unref();
  }

  private pick(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const w of this.workers) if (!best || w.pending < best.pending) best = w;
    if ((!best || best.pending > 0) && this.workers.length < this.size) return this.spawn();
    return best!;
  }

  run(job: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const pw = this.pick();
      const id = this.nextId++;
      this.jobs.set(id, { resolve, reject, worker: pw });
      if (pw.pending++ === 0) pw.worker.ref();
      try {
        pw.worker.postMessage({ ...job, id }, transfer);
      } catch (err) {
        this.jobs.delete(id);
        this.settle(pw);
        reject(err);
      }
    });
  }
}

// ----------------------------------------------------------------- backend

export interface WasmBackendOptions {
  /** Async worker count (default min(os.availableParallelism(), 4)). */
  threads?: number;
}

/**
 * Key slots: slots 0 .. KEY_SLOTS-2 hold one key each. Keys created beyond
 * that are "spilled": their 128-byte state lives in a JS buffer and is copied
 * into the last slot (the swap slot) when used after another spilled key, so
 * the number of live keys is unbounded and only the extras pay a copy.
 * Keys that are garbage-collected without destroy() are wiped and freed too.
 */
interface SlotToken {
  backend: WasmBackend;
  id: number;
  slot: number;
  spill: Uint8Array | null;
}
const slotRegistry = new FinalizationRegistry<SlotToken>((token) => token.backend.release(token));
let nextKeyId = 1;

function checkBytes(name: string, v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
}

function checkPacked(data: unknown, offsets: unknown): number {
  checkBytes('data', data);
  if (!(offsets instanceof Uint32Array)) throw new TypeError('offsets must be a Uint32Array');
  if (offsets.length < 1) throw new RangeError('offsets must have n + 1 entries');
  const n = offsets.length - 1;
  let prev = offsets[0];
  for (let i = 1; i <= n; i++) {
    const o = offsets[i];
    if (o < prev) throw new RangeError(`offsets must be non-decreasing (offsets[${i}] < offsets[${i - 1}])`);
    prev = o;
  }
  if (prev > data.length) throw new RangeError('offsets point past the end of data');
  return n;
}

function checkArray(name: string, messages: unknown): asserts messages is readonly Uint8Array[] {
  if (!Array.isArray(messages)) throw new TypeError(`${name} must be an array of Uint8Array`);
  for (let i = 0; i < messages.length; i++) {
    if (!(messages[i] instanceof Uint8Array)) throw new TypeError(`${name}[${i}] must be a Uint8Array`);
  }
}

function checkOut(name: string, out: unknown, need: number): asserts out is Uint8Array {
  checkBytes(name, out);
  if (out.length < need) throw new RangeError(`${name} is too small: ${out.length} < ${need} bytes`);
}

/** Concatenates messages into packed form (a copy, for workers). */
function pack(messages: readonly Uint8Array[]): { data: Uint8Array; offsets: Uint32Array } {
  const offsets = new Uint32Array(messages.length + 1);
  let total = 0;
  for (let i = 0; i < messages.length; i++) offsets[i + 1] = total += messages[i].length;
  const data = new Uint8Array(total);
  for (let i = 0; i < messages.length; i++) data.set(messages[i], offsets[i]);
  return { data, offsets };
}

class WasmBackend implements Backend {
  readonly name: BackendName;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  readonly engine: WasmEngine;
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private pool: WorkerPool | undefined;

  constructor(
    readonly variant: WasmVariant,
    private readonly module: WasmModule,
    private readonly threads: number,
  ) {
    this.engine = new WasmEngine(new WA!.Instance(module, {}));
    this.name = variant === 'simd' ? 'wasm-simd' : 'wasm-scalar';
    this.details = Object.freeze({
      simd: this.engine.simd,
      simdLanes: this.engine.simd ? 'SHA-224/256 x4 (i32x4), SHA-384/512 x2 (i64x2)' : 'none',
      threads,
      keySlots: this.engine.KEY_SLOTS,
      wasmHash: WASM_HASH.slice(0, 16),
    });
  }

  workerPool(): WorkerPool {
    this.pool ??= new WorkerPool(this.module, this.threads);
    return this.pool;
  }

  /** The swap slot's current spilled key (0: none). */
  private swapOwner = 0;

  private get swapSlot(): number {
    return this.engine.KEY_SLOTS - 1;
  }

  /** A free slot, or -1 when every regular slot is taken. */
  private allocSlot(): number {
    const slot = this.freeSlots.pop();
    if (slot !== undefined) return slot;
    if (this.nextSlot >= this.swapSlot) return -1;
    return this.nextSlot++;
  }

  /** The slot holding this key's state now (copies a spilled state in when needed). */
  slotFor(token: SlotToken): number {
    if (token.spill === null) return token.slot;
    if (this.swapOwner !== token.id) {
      this.engine.writeSlot(this.swapSlot, token.spill);
      this.swapOwner = token.id;
    }
    return this.swapSlot;
  }

  /** Wipes a key's state wherever it is and frees its slot. */
  release(token: SlotToken): void {
    if (token.spill !== null) {
      token.spill.fill(0);
      if (this.swapOwner === token.id) {
        this.engine.wipeSlot(this.swapSlot);
        this.swapOwner = 0;
      }
    } else {
      this.engine.wipeSlot(token.slot);
      this.freeSlots.push(token.slot);
    }
  }

  createKey(algorithm: MacAlgorithm, keyMaterial: Uint8Array): BackendKey {
    if (!Object.hasOwn(ALG_CODE, algorithm)) throw new RangeError(`unsupported MAC algorithm: ${String(algorithm)}`);
    checkBytes('keyMaterial', keyMaterial);
    const slot = this.allocSlot();
    const target = slot >= 0 ? slot : this.swapSlot;
    const token: SlotToken = { backend: this, id: nextKeyId++, slot: target, spill: null };
    try {
      if (slot < 0) this.swapOwner = 0; // the swap slot is overwritten below
      this.engine.setKey(target, ALG_CODE[algorithm], keyMaterial);
    } catch (err) {
      this.engine.wipeSlot(target);
      if (slot >= 0) this.freeSlots.push(slot);
      throw err;
    }
    if (slot < 0) {
      token.spill = this.engine.readSlot(target);
      this.swapOwner = token.id;
    }
    const key = new WasmKey(this, algorithm, token);
    slotRegistry.register(key, token, key);
    key.onDestroy = () => {
      slotRegistry.unregister(key);
      this.release(token);
    };
    return key;
  }
}

class WasmKey implements BackendKey {
  readonly macLength: number;
  private readonly alg: number;
  private destroyed = false;
  onDestroy: (() => void) | undefined;

  constructor(
    private readonly backend: WasmBackend,
    readonly algorithm: MacAlgorithm,
    private readonly token: SlotToken,
  ) {
    this.macLength = MAC_LENGTH[algorithm];
    this.alg = ALG_CODE[algorithm];
  }

  private live(): number {
    if (this.destroyed) throw new Error('kms-hmac: this key has been destroyed');
    return this.backend.slotFor(this.token);
  }

  macInto(message: Uint8Array, out: Uint8Array, outOffset: number): void {
    const slot = this.live();
    checkBytes('message', message);
    checkBytes('out', out);
    if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + this.macLength > out.length) {
      throw new RangeError('out has no room for the MAC at outOffset');
    }
    this.backend.engine.macInto(slot, this.alg, this.macLength, message, out, outOffset);
  }

  verify(message: Uint8Array, mac: Uint8Array): boolean {
    const slot = this.live();
    checkBytes('message', message);
    checkBytes('mac', mac);
    return this.backend.engine.verify(slot, this.alg, this.macLength, message, mac);
  }

  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): void {
    const slot = this.live();
    const n = checkPacked(data, offsets);
    checkOut('out', out, n * this.macLength);
    this.backend.engine.packed(slot, this.alg, this.macLength, data, offsets, 0, out);
  }

  macArrayInto(messages: readonly Uint8Array[], out: Uint8Array): void {
    const slot = this.live();
    checkArray('messages', messages);
    checkOut('out', out, messages.length * this.macLength);
    this.backend.engine.array(slot, this.alg, this.macLength, messages, 0, out, null, null);
  }

  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): void {
    const slot = this.live();
    const n = checkPacked(data, offsets);
    checkOut('macs', macs, n * this.macLength);
    checkOut('results', results, n);
    this.backend.engine.packed(slot, this.alg, this.macLength, data, offsets, 1, macs, results);
  }

  verifyArrayInto(messages: readonly Uint8Array[], macs: readonly Uint8Array[], results: Uint8Array): void {
    const slot = this.live();
    checkArray('messages', messages);
    checkArray('macs', macs);
    if (macs.length !== messages.length) throw new RangeError('macs must have one entry per message');
    checkOut('results', results, messages.length);
    this.backend.engine.array(slot, this.alg, this.macLength, messages, 1, null, macs, results);
  }

  /**
   * Splits the batch into parts balanced by bytes (+ a per-message cost),
   * one per worker, each a private copy transferred to its worker.
   */
  private async runAsync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array | null): Promise<Uint8Array> {
    const slot = this.live();
    const n = offsets.length - 1;
    const ml = this.macLength;
    const result = new Uint8Array(macs ? n : n * ml);
    if (n === 0) return result;
    const pool = this.backend.workerPool();
    const base = offsets[0];
    const totalCost = offsets[n] - base + MESSAGE_COST * n;
    const parts = Math.max(
      1,
      Math.min(pool.size, Math.floor(n / MIN_PART_MESSAGES), Math.floor((offsets[n] - base) / MIN_PART_BYTES) || 1),
    );
    const keyState = this.backend.engine.readSlot(slot);
    const promises: Promise<void>[] = [];
    let a = 0;
    for (let p = 1; p <= parts; p++) {
      let b = n;
      if (p < parts) {
        // First index whose cumulative cost reaches p/parts of the total.
        const target = (totalCost * p) / parts;
        let lo = a + 1;
        let hi = n;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (offsets[mid] - base + MESSAGE_COST * mid >= target) hi = mid;
          else lo = mid + 1;
        }
        b = lo;
      }
      const partOffsets = offsets.slice(a, b + 1);
      const partBase = partOffsets[0];
      for (let k = 0; k < partOffsets.length; k++) partOffsets[k] -= partBase;
      const partData = data.slice(partBase, offsets[b]);
      const partMacs = macs ? macs.slice(a * ml, b * ml) : undefined;
      const transfer = [partOffsets.buffer, partData.buffer, keyState.slice().buffer];
      const job: Record<string, unknown> = {
        keyState: new Uint8Array(transfer[2]),
        alg: this.alg,
        ml,
        data: partData,
        offsets: partOffsets,
        macs: partMacs,
      };
      if (partMacs) transfer.push(partMacs.buffer as ArrayBuffer);
      const at = macs ? a : a * ml;
      promises.push(pool.run(job, transfer as ArrayBuffer[]).then((r) => result.set(r, at)));
      a = b;
    }
    keyState.fill(0);
    await Promise.all(promises);
    return result;
  }

  macPackedAsync(data: Uint8Array, offsets: Uint32Array): Promise<Uint8Array> {
    try {
      this.live();
      checkPacked(data, offsets);
      return this.runAsync(data, offsets, null);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  macArrayAsync(messages: readonly Uint8Array[]): Promise<Uint8Array> {
    try {
      this.live();
      checkArray('messages', messages);
      const { data, offsets } = pack(messages);
      return this.runAsync(data, offsets, null);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  verifyPackedAsync(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array): Promise<Uint8Array> {
    try {
      this.live();
      const n = checkPacked(data, offsets);
      checkOut('macs', macs, n * this.macLength);
      return this.runAsync(data, offsets, macs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  verifyArrayAsync(messages: readonly Uint8Array[], macs: readonly Uint8Array[]): Promise<Uint8Array> {
    try {
      this.live();
      checkArray('messages', messages);
      checkArray('macs', macs);
      if (macs.length !== messages.length) throw new RangeError('macs must have one entry per message');
      const ml = this.macLength;
      const { data, offsets } = pack(messages);
      const flat = new Uint8Array(messages.length * ml);
      for (let i = 0; i < macs.length; i++) if (macs[i].length === ml) flat.set(macs[i], i * ml);
      return this.runAsync(data, offsets, flat).then((r) => {
        for (let i = 0; i < macs.length; i++) if (macs[i].length !== ml) r[i] = 0;
        return r;
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.onDestroy?.();
    this.onDestroy = undefined;
  }
}

const backends = new Map<string, WasmBackend>();

/**
 * Loads (once per variant and thread count) a WebAssembly backend. Throws
 * a clear Error when the variant cannot run here (e.g. no SIMD128).
 */
export function loadWasmBackend(variant: WasmVariant, options: WasmBackendOptions = {}): Backend {
  if (variant !== 'simd' && variant !== 'scalar') throw new RangeError(`unknown wasm variant: ${String(variant)}`);
  const threads = Math.max(1, Math.floor(options.threads ?? Math.min(availableParallelism(), 4)));
  const cacheKey = `${variant}:${threads}`;
  let backend = backends.get(cacheKey);
  if (!backend) {
    backend = new WasmBackend(variant, compiledModule(variant), threads);
    backends.set(cacheKey, backend);
  }
  return backend;
}

/** Test hook: the engine (exports, memory) behind a backend from loadWasmBackend. */
export function wasmEngineOf(backend: Backend): WasmEngine {
  if (!(backend instanceof WasmBackend)) throw new TypeError('not a wasm backend');
  return backend.engine;
}

