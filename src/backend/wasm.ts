/**
 * The WebAssembly backends ('wasm-simd', 'wasm-scalar'): HMAC-SHA-2 from the
 * WebAssembly module built from assembly/ (AssemblyScript), embedded by
 * src/backend/wasm-binaries.ts and driven by wasm-hmac.ts.
 *
 * One instance of the module per backend on the calling thread, plus one per async
 * worker (wasm-worker.ts). Compiled modules are cached; instantiation is
 * synchronous so backend selection stays sync.
 *
 * The same argument rules, in the same order and with the same messages, as
 * the native addon (native/js_args.cc), so the backends are interchangeable
 * under hostile input too.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  byteLength,
  bufferProblem,
  copyInto,
  isUint32Array,
  isUint8Array,
  overlaps,
  plainOffsets,
  plainView,
} from '../mac/views.js';
import { algorithmCode, BLOCK_LENGTH, MAC_ALGORITHMS, MAC_LENGTH } from './types.js';
import type { Backend, BackendKey, BackendName, MacAlgorithm } from './types.js';
import { WASM_HASH, WASM_SCALAR_BASE64, WASM_SIMD_BASE64 } from './wasm-binaries.js';
import { partLayout, workBytes, SLOT_SIZE, WA, WasmHmac, type PartJob, type WasmModule } from './wasm-hmac.js';

export { WasmHmac } from './wasm-hmac.js';
export type WasmVariant = 'simd' | 'scalar';

/**
 * Async work in compression-function calls (workBytes / block length). Measured on the
 * development machine (docs/performance.md): a round trip to a worker
 * (post, wake, post back, settle) costs about what the SIMD module needs for
 * ~1,000 blocks. Below INLINE_BLOCKS the calling thread does the batch
 * itself; a part sent to a worker is at least MIN_PART_BLOCKS.
 */
const INLINE_BLOCKS = 1024;
const MIN_PART_BLOCKS = 2048;

// ------------------------------------------------------------ module cache

const modules = new Map<WasmVariant, WasmModule>();

function wasmBytes(variant: WasmVariant): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(Buffer.from(variant === 'simd' ? WASM_SIMD_BASE64 : WASM_SCALAR_BASE64, 'base64'));
}

/** Whether this runtime can run the SIMD128 build. */
export function wasmSimdSupported(): boolean {
  try {
    return WA?.validate(wasmBytes('simd')) ?? false;
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

// A module file next to this one: dist/backend/wasm-worker.js once built.
// (Under vitest, src/ has only wasm-worker.ts: test/support/ts-hooks.js
// lets Node load it.)
const WORKER_URL = new URL('./wasm-worker.js', import.meta.url);

/**
 * The parent's Node options minus --input-type, which only applies to code
 * given as a string (`node --input-type=module -e …`) and makes Node refuse
 * to start a worker from a file.
 */
function workerExecArgv(): string[] {
  const argv: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (arg === '--input-type') i++;
    else if (!arg.startsWith('--input-type=')) argv.push(arg);
  }
  return argv;
}

interface PendingPart {
  resolve: (buffer: ArrayBuffer) => void;
  reject: (error: Error) => void;
  worker: PoolWorker;
}
interface PoolWorker {
  worker: Worker;
  pending: number;
}

/**
 * One instance of the module per worker, up to `size` workers, started on demand.
 * Workers are unref()ed while idle, so they never keep the process alive,
 * and ref()ed while they hold a part, so an awaited batch cannot be cut
 * short by the process exiting. Part buffers come back from the workers and
 * are reused, so a steady stream of batches allocates nothing.
 */
class WorkerPool {
  private readonly workers: PoolWorker[] = [];
  private readonly parts = new Map<number, PendingPart>();
  private readonly spare: ArrayBuffer[] = [];
  private nextId = 1;

  constructor(
    private readonly module: WasmModule,
    readonly size: number,
  ) {}

  /** A buffer of at least `size` bytes for one part (recycled when possible). */
  takeBuffer(size: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const length = this.spare[i]!.byteLength;
      if (length >= size && (best < 0 || length < this.spare[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.spare.splice(best, 1)[0]!;
    return new ArrayBuffer(Math.max(64 * 1024, size + (size >>> 2)));
  }

  giveBuffer(buffer: ArrayBuffer): void {
    if (this.spare.length >= 2 * this.size || buffer.byteLength > 64 * 1024 * 1024) return;
    this.spare.push(buffer);
  }

  /** Runs one part on the least busy worker; resolves with its buffer, results inside. */
  run(job: Omit<PartJob, 'id'>): Promise<ArrayBuffer> {
    return new Promise((resolve, reject) => {
      const pw = this.pick();
      const id = this.nextId++;
      this.parts.set(id, { resolve, reject, worker: pw });
      if (pw.pending++ === 0) pw.worker.ref();
      try {
        pw.worker.postMessage({ ...job, id }, [job.buffer]);
      } catch (err) {
        this.parts.delete(id);
        this.settle(pw);
        reject(err as Error);
      }
    });
  }

  private spawn(): PoolWorker {
    const worker = new Worker(WORKER_URL, { workerData: { module: this.module }, execArgv: workerExecArgv() });
    const pw: PoolWorker = { worker, pending: 0 };
    worker.unref();
    worker.on('message', (msg: { id: number; buffer?: ArrayBuffer; error?: string }) => {
      const part = this.parts.get(msg.id);
      if (!part) return;
      this.parts.delete(msg.id);
      this.settle(pw);
      if (msg.error !== undefined) part.reject(new Error(`kms-hmac wasm worker: ${msg.error}`));
      else part.resolve(msg.buffer!);
    });
    const fail = (err: Error) => {
      const i = this.workers.indexOf(pw);
      if (i >= 0) this.workers.splice(i, 1);
      for (const [id, part] of this.parts) {
        if (part.worker !== pw) continue;
        this.parts.delete(id);
        part.reject(new Error(`kms-hmac wasm worker failed: ${err.message}`));
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
}

// ------------------------------------------------------- argument checks

function bytesArg(value: unknown, what: string): Uint8Array {
  if (!isUint8Array(value)) throw new TypeError(`${what} must be a Uint8Array`);
  const problem = bufferProblem(value);
  if (problem !== undefined) throw new TypeError(`${what} ${problem}`);
  return value;
}

function outputArg(value: unknown, needed: number, what: string): Uint8Array {
  const out = plainView(bytesArg(value, what));
  if (out.length < needed) throw new RangeError(`${what} is too small: need ${needed} bytes, have ${out.length}`);
  return out;
}

function indexArg(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer`);
  return value;
}

interface Packed {
  data: Uint8Array;
  offsets: Uint32Array;
  count: number;
}

/** data + offsets as plain views, checked like native GetPacked. */
function packedArgs(data: unknown, offsets: unknown): Packed {
  const bytes = plainView(bytesArg(data, 'data'));
  if (!isUint32Array(offsets)) throw new TypeError('offsets must be a Uint32Array');
  const problem = bufferProblem(offsets);
  if (problem !== undefined) throw new TypeError(`offsets ${problem}`);
  const offs = plainOffsets(offsets);
  if (offs.length === 0) throw new RangeError('offsets must have n+1 entries (at least 1)');
  let previous = 0;
  for (let i = 0; i < offs.length; i++) {
    const offset = offs[i]!;
    if (offset > bytes.length) throw new RangeError(`offsets[${i}] is past the end of data`);
    if (offset < previous) throw new RangeError(`offsets must not decrease (offsets[${i}])`);
    previous = offset;
  }
  return { data: bytes, offsets: offs, count: offs.length - 1 };
}

/** Whether `out` (its first `length` bytes) shares memory with any input. */
function overlapsInputs(out: Uint8Array, length: number, batch: Packed, macs: Uint8Array | null): boolean {
  return (
    overlaps(out, length, batch.data, batch.data.byteLength) ||
    overlaps(out, length, batch.offsets, batch.offsets.byteLength) ||
    (macs !== null && overlaps(out, length, macs, macs.byteLength))
  );
}

// ----------------------------------------------------------------- backend

export interface WasmBackendOptions {
  /** Async worker count (default os.availableParallelism(): one per core). */
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

class WasmBackend implements Backend {
  readonly name: BackendName;
  readonly details: Readonly<Record<string, string | number | boolean>>;
  readonly hmac: WasmHmac;
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private pool: WorkerPool | undefined;

  constructor(
    readonly variant: WasmVariant,
    private readonly module: WasmModule,
    private readonly threads: number,
  ) {
    this.hmac = new WasmHmac(new WA!.Instance(module, {}));
    if (this.hmac.SLOT_SIZE !== SLOT_SIZE) throw new Error('kms-hmac wasm: key slot size does not match the module');
    this.name = variant === 'simd' ? 'wasm-simd' : 'wasm-scalar';
    this.details = Object.freeze({
      simd: this.hmac.simd,
      simdLanes: this.hmac.simd ? 'SHA-224/256 x4 (i32x4), SHA-384/512 x2 (i64x2)' : 'none',
      threads,
      keySlots: this.hmac.KEY_SLOTS,
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
    return this.hmac.KEY_SLOTS - 1;
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
      this.hmac.writeSlot(this.swapSlot, token.spill);
      this.swapOwner = token.id;
    }
    return this.swapSlot;
  }

  /** Wipes a key's state wherever it is and frees its slot. */
  release(token: SlotToken): void {
    if (token.spill !== null) {
      token.spill.fill(0);
      if (this.swapOwner === token.id) {
        this.hmac.wipeSlot(this.swapSlot);
        this.swapOwner = 0;
      }
    } else {
      this.hmac.wipeSlot(token.slot);
      this.freeSlots.push(token.slot);
    }
  }

  createKey(algorithm: MacAlgorithm, keyMaterial: Uint8Array): BackendKey {
    if (!MAC_ALGORITHMS.includes(algorithm)) throw new RangeError(`unsupported MAC algorithm: ${String(algorithm)}`);
    const material = plainView(bytesArg(keyMaterial, 'keyMaterial'));
    const slot = this.allocSlot();
    const target = slot >= 0 ? slot : this.swapSlot;
    const token: SlotToken = { backend: this, id: nextKeyId++, slot: target, spill: null };
    try {
      if (slot < 0) this.swapOwner = 0; // the swap slot is overwritten below
      this.hmac.setKey(target, algorithmCode(algorithm), material);
    } catch (err) {
      this.hmac.wipeSlot(target);
      if (slot >= 0) this.freeSlots.push(slot);
      throw err;
    }
    if (slot < 0) {
      token.spill = this.hmac.readSlot(target);
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
  private readonly blockLength: number;
  private destroyed = false;
  onDestroy: (() => void) | undefined;

  constructor(
    private readonly backend: WasmBackend,
    readonly algorithm: MacAlgorithm,
    private readonly token: SlotToken,
  ) {
    this.macLength = MAC_LENGTH[algorithm];
    this.alg = algorithmCode(algorithm);
    this.blockLength = BLOCK_LENGTH[algorithm];
  }

  private live(): number {
    if (this.destroyed) throw new Error('the key was destroyed');
    return this.backend.slotFor(this.token);
  }

  macInto(message: Uint8Array, out: Uint8Array, outOffset: number): void {
    const msg = bytesArg(message, 'message');
    const target = bytesArg(out, 'out');
    const offset = indexArg(outOffset, 'outOffset');
    const slot = this.live();
    const room = byteLength(target);
    if (offset > room || room - offset < this.macLength)
      throw new RangeError('out is too small for the MAC at outOffset');
    this.backend.hmac.macInto(slot, this.alg, this.macLength, msg, target, offset);
  }

  verify(message: Uint8Array, mac: Uint8Array): boolean {
    const msg = bytesArg(message, 'message');
    const expected = bytesArg(mac, 'mac');
    return this.backend.hmac.verify(this.live(), this.alg, this.macLength, msg, expected);
  }

  macPackedInto(data: Uint8Array, offsets: Uint32Array, out: Uint8Array): void {
    const batch = packedArgs(data, offsets);
    const slot = this.live();
    this.macAll(slot, batch, outputArg(out, batch.count * this.macLength, 'out'));
  }

  verifyPackedInto(data: Uint8Array, offsets: Uint32Array, macs: Uint8Array, results: Uint8Array): void {
    const batch = packedArgs(data, offsets);
    const slot = this.live();
    const expected = outputArg(macs, batch.count * this.macLength, 'macs');
    this.verifyAll(slot, batch, expected, outputArg(results, batch.count, 'results'));
  }

  macPackedAsync(data: Uint8Array, offsets: Uint32Array, out?: Uint8Array): Promise<Uint8Array> {
    try {
      const batch = packedArgs(data, offsets);
      this.live();
      const length = batch.count * this.macLength;
      return this.runAsync(batch, null, out === undefined ? undefined : outputArg(out, length, 'out'), out, length);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  verifyPackedAsync(
    data: Uint8Array,
    offsets: Uint32Array,
    macs: Uint8Array,
    results?: Uint8Array,
  ): Promise<Uint8Array> {
    try {
      const batch = packedArgs(data, offsets);
      this.live();
      const expected = outputArg(macs, batch.count * this.macLength, 'macs');
      const target = results === undefined ? undefined : outputArg(results, batch.count, 'results');
      return this.runAsync(batch, expected, target, results, batch.count);
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

  /** MACs into `out`; through a scratch buffer when `out` overlaps an input, so every input is read first. */
  private macAll(slot: number, batch: Packed, out: Uint8Array): void {
    const length = batch.count * this.macLength;
    const hmac = this.backend.hmac;
    if (!overlapsInputs(out, length, batch, null)) {
      hmac.packed(slot, this.alg, this.macLength, batch.data, batch.offsets, 0, out);
      return;
    }
    const scratch = new Uint8Array(length);
    hmac.packed(slot, this.alg, this.macLength, batch.data, batch.offsets, 0, scratch);
    out.set(scratch);
  }

  private verifyAll(slot: number, batch: Packed, macs: Uint8Array, results: Uint8Array): void {
    const hmac = this.backend.hmac;
    const target = overlapsInputs(results, batch.count, batch, macs) ? new Uint8Array(batch.count) : results;
    hmac.packed(slot, this.alg, this.macLength, batch.data, batch.offsets, 1, macs, target);
    if (target !== results) results.set(target);
  }

  /**
   * Small batches run here and now. Larger ones are split into parts of
   * about equal work, one per worker, each copied once into a recycled
   * buffer that is transferred to the worker and back. The caller's `out`
   * (if any) is written when every part is done, after checking it is still
   * usable.
   */
  private async runAsync(
    batch: Packed,
    macs: Uint8Array | null,
    out: Uint8Array | undefined,
    callerOut: Uint8Array | undefined,
    length: number,
  ): Promise<Uint8Array> {
    const { offsets, count } = batch;
    const work = (e: number): number => workBytes(offsets, 0, e, this.blockLength);
    const total = work(count);
    const blocks = total / this.blockLength;
    if (blocks < INLINE_BLOCKS) {
      const target = out ?? new Uint8Array(length);
      if (macs === null) this.macAll(this.live(), batch, target);
      else this.verifyAll(this.live(), batch, macs, target);
      return callerOut ?? target;
    }

    const pool = this.backend.workerPool();
    const parts = Math.max(1, Math.min(pool.size, Math.floor(blocks / MIN_PART_BLOCKS)));
    const keyState = this.backend.hmac.readSlot(this.live());
    const pending: { first: number; promise: Promise<ArrayBuffer> }[] = [];
    try {
      let first = 0;
      for (let p = 1; p <= parts; p++) {
        // The first message at which p/parts of the work is done (the last part takes the rest).
        let end = count;
        if (p < parts) {
          const target = (total * p) / parts;
          let lo = first;
          while (lo < end) {
            const mid = (lo + end) >>> 1;
            if (work(mid) >= target) end = mid;
            else lo = mid + 1;
          }
        }
        if (end > first) pending.push({ first, promise: this.sendPart(pool, batch, macs, keyState, first, end) });
        first = end;
      }
    } finally {
      keyState.fill(0);
    }

    const buffers = await Promise.all(pending.map((part) => part.promise));
    const result =
      callerOut === undefined ? new Uint8Array(length) : outputArg(callerOut, length, macs ? 'results' : 'out');
    const stride = macs === null ? this.macLength : 1;
    pending.forEach((part, i) => {
      const buffer = buffers[i]!;
      const partCount = (pending[i + 1]?.first ?? count) - part.first;
      const at = partLayout(partCount, 0, this.macLength, macs !== null);
      copyInto(result, new Uint8Array(buffer, at.results, at.resultsLength), part.first * stride);
      pool.giveBuffer(buffer);
    });
    return callerOut ?? result;
  }

  private sendPart(
    pool: WorkerPool,
    batch: Packed,
    macs: Uint8Array | null,
    keyState: Uint8Array,
    first: number,
    end: number,
  ): Promise<ArrayBuffer> {
    const { data, offsets } = batch;
    const ml = this.macLength;
    const count = end - first;
    const base = offsets[first]!;
    const dataLength = offsets[end]! - base;
    const at = partLayout(count, dataLength, ml, macs !== null);
    const buffer = pool.takeBuffer(at.size);
    const bytes = new Uint8Array(buffer);
    bytes.set(keyState, 0);
    const partOffsets = new Uint32Array(buffer, at.offsets, count + 1);
    for (let i = 0; i <= count; i++) partOffsets[i] = offsets[first + i]! - base;
    if (macs !== null) bytes.set(macs.subarray(first * ml, end * ml), at.macs);
    bytes.set(data.subarray(base, base + dataLength), at.data);
    return pool.run({ alg: this.alg, ml, verify: macs !== null, count, dataLength, buffer });
  }
}

const backends = new Map<string, WasmBackend>();

/**
 * Loads (once per variant and thread count) a WebAssembly backend. Throws
 * a clear Error when the variant cannot run here (e.g. no SIMD128).
 */
export function loadWasmBackend(variant: WasmVariant, options: WasmBackendOptions = {}): Backend {
  if (variant !== 'simd' && variant !== 'scalar') throw new RangeError(`unknown wasm variant: ${String(variant)}`);
  const requested = options.threads;
  if (requested !== undefined && (typeof requested !== 'number' || !(requested >= 1))) {
    throw new RangeError('threads must be a number >= 1');
  }
  const threads = Math.floor(requested ?? availableParallelism());
  const cacheKey = `${variant}:${threads}`;
  let backend = backends.get(cacheKey);
  if (!backend) {
    backend = new WasmBackend(variant, compiledModule(variant), threads);
    backends.set(cacheKey, backend);
  }
  return backend;
}

/** Test hook: the module instance (exports, memory) behind a backend from loadWasmBackend. */
export function wasmHmacOf(backend: Backend): WasmHmac {
  if (!(backend instanceof WasmBackend)) throw new TypeError('not a wasm backend');
  return backend.hmac;
}
