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
  isShared,
  isUint32Array,
  isUint8Array,
  overlaps,
  plainOffsets,
  plainView,
} from '../mac/views.js';
import { algorithmCode, BLOCK_LENGTH, MAC_ALGORITHMS, MAC_LENGTH } from './types.js';
import type { Backend, BackendKey, BackendName, MacAlgorithm } from './types.js';
import { WASM_HASH, WASM_SCALAR_BASE64, WASM_SIMD_BASE64 } from './wasm-binaries.js';
import {
  type BatchJob,
  CONTROL_WORDS,
  NEXT,
  READY,
  SLOT_SIZE,
  WA,
  WasmHmac,
  type WasmModule,
  workBytes,
} from './wasm-hmac.js';

export { WasmHmac } from './wasm-hmac.js';
export type WasmVariant = 'simd' | 'scalar';

/**
 * Async work in compression-function calls (workBytes / block length). Measured on the
 * development machine (docs/performance.md): a round trip to a worker
 * (post, wake, post back, settle) costs about what the SIMD module needs for
 * ~1,000 blocks. Below INLINE_BLOCKS the calling thread does the batch
 * itself; each worker sent a batch gets at least MIN_PART_BLOCKS of it; the
 * workers take it in units of about UNIT_BLOCKS (~0.15 ms for the SIMD
 * module), so that they finish within a unit of each other.
 */
const INLINE_BLOCKS = 1024;
const MIN_PART_BLOCKS = 2048;
const UNIT_BLOCKS = 1024;

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
  resolve: () => void;
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
 * and ref()ed while they hold a batch, so an awaited batch cannot be cut
 * short by the process exiting. Batch areas (shared memory) come back when
 * their batch settles and are reused, so a steady stream of batches
 * allocates nothing.
 */
class WorkerPool {
  private readonly workers: PoolWorker[] = [];
  private readonly parts = new Map<number, PendingPart>();
  private readonly spare: SharedArrayBuffer[] = [];
  private nextId = 1;

  constructor(
    private readonly module: WasmModule,
    readonly size: number,
  ) {}

  /** Shared memory of at least `size` bytes for one batch's area (recycled when possible). */
  takeArea(size: number): SharedArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const length = this.spare[i]!.byteLength;
      if (length >= size && (best < 0 || length < this.spare[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.spare.splice(best, 1)[0]!;
    return new SharedArrayBuffer(Math.max(64 * 1024, size + (size >>> 2)));
  }

  giveArea(area: SharedArrayBuffer): void {
    if (this.spare.length >= 2 * this.size || area.byteLength > 64 * 1024 * 1024) return;
    this.spare.push(area);
  }

  /**
   * Sends `job` to `workers` different workers (the least busy, started as
   * needed; at most `size`). Each promise settles when its worker has left
   * the batch: it finished, failed, or died.
   */
  run(job: Omit<BatchJob, 'id' | 'keyState'>, keyState: Uint8Array, workers: number): Promise<void>[] {
    const chosen = new Set<PoolWorker>();
    const done: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) {
      const pw = this.pick(chosen);
      chosen.add(pw);
      done.push(
        new Promise((resolve, reject) => {
          const id = this.nextId++;
          this.parts.set(id, { resolve, reject, worker: pw });
          if (pw.pending++ === 0) pw.worker.ref();
          // Each worker gets its own copy of the key states, transferred (not cloned) and wiped there.
          const own = keyState.slice().buffer;
          try {
            pw.worker.postMessage({ ...job, id, keyState: own }, [own]);
          } catch (err) {
            new Uint8Array(own).fill(0);
            this.parts.delete(id);
            this.settle(pw);
            reject(err as Error);
          }
        }),
      );
    }
    return done;
  }

  private spawn(): PoolWorker {
    const worker = new Worker(WORKER_URL, { workerData: { module: this.module }, execArgv: workerExecArgv() });
    const pw: PoolWorker = { worker, pending: 0 };
    worker.unref();
    worker.on('message', (msg: { id: number; error?: string }) => {
      const part = this.parts.get(msg.id);
      if (!part) return;
      this.parts.delete(msg.id);
      this.settle(pw);
      if (msg.error !== undefined) part.reject(new Error(`kms-hmac wasm worker: ${msg.error}`));
      else part.resolve();
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

  /** The least busy worker not in `taken`, or a new one while there is room (an idle one first). */
  private pick(taken: Set<PoolWorker>): PoolWorker {
    let best: PoolWorker | undefined;
    for (const w of this.workers) if (!taken.has(w) && (!best || w.pending < best.pending)) best = w;
    if ((!best || best.pending > 0) && this.workers.length < this.size) return this.spawn();
    return best!;
  }
}

// ------------------------------------------------------- argument checks

/** A Uint8Array over an ArrayBuffer, or (`shared`: a packed batch argument) over a SharedArrayBuffer. */
function bytesArg(value: unknown, what: string, shared = false): Uint8Array {
  if (!isUint8Array(value)) throw new TypeError(`${what} must be a Uint8Array`);
  const problem = bufferProblem(value, shared);
  if (problem !== undefined) throw new TypeError(`${what} ${problem}`);
  return value;
}

/** A packed batch's output (or MACs), shared memory allowed: a plain view of at least `needed` bytes. */
function outputArg(value: unknown, needed: number, what: string): Uint8Array {
  const out = plainView(bytesArg(value, what, true));
  if (out.length < needed) throw new RangeError(`${what} is too small: need ${needed} bytes, have ${out.length}`);
  return out;
}

function indexArg(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${what} must be a non-negative integer`);
  return value;
}

interface Packed {
  /** A plain view, of the length read once here (shared memory may grow, never shrink). */
  data: Uint8Array;
  /** Never shared memory: shared offsets are copied once, and checked on the copy. */
  offsets: Uint32Array;
  count: number;
}

/**
 * Where shared offsets are copied to be checked: reused, since fresh memory
 * costs more than the copy (a 64 KiB array ~0.25 ms in page faults here,
 * the copy ~20 µs). Its contents are used only until the call that checked
 * them returns, or an async batch has copied them into its area (before its
 * first await), and no caller code runs in between.
 */
let offsetsScratch = new Uint32Array(1024);
const KEEP_OFFSETS = 1 << 20;

function offsetsRoom(entries: number): Uint32Array {
  if (offsetsScratch.length >= entries) return offsetsScratch.subarray(0, entries);
  const scratch = new Uint32Array(Math.max(entries, 2 * offsetsScratch.length));
  if (scratch.length <= KEEP_OFFSETS) offsetsScratch = scratch;
  return scratch.subarray(0, entries);
}

/** data + offsets as plain views, checked like native GetPacked (native/js_args.cc). */
function packedArgs(data: unknown, offsets: unknown): Packed {
  const bytes = plainView(bytesArg(data, 'data', true));
  if (!isUint32Array(offsets)) throw new TypeError('offsets must be a Uint32Array');
  const problem = bufferProblem(offsets, true);
  if (problem !== undefined) throw new TypeError(`offsets ${problem}`);
  const given = plainOffsets(offsets);
  const entries = given.length;
  if (entries === 0) throw new RangeError('offsets must have n+1 entries (at least 1)');
  // Checked in place, shared offsets could change between the check and
  // their use: each is read once, into our own memory, and checked there.
  const copy = isShared(given) ? offsetsRoom(entries) : undefined;
  const length = bytes.length;
  let previous = 0;
  for (let i = 0; i < entries; i++) {
    const offset = given[i]!;
    if (offset > length) throw new RangeError(`offsets[${i}] is past the end of data`);
    if (offset < previous) throw new RangeError(`offsets must not decrease (offsets[${i}])`);
    if (copy !== undefined) copy[i] = offset;
    previous = offset;
  }
  return { data: bytes, offsets: copy ?? given, count: entries - 1 };
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
   * Small batches run here and now. Larger ones go to the workers (one per
   * MIN_PART_BLOCKS of work, at most one per core) through a recycled area
   * of shared memory: the checked offsets, rebased; the unit bounds; copies
   * of the ArrayBuffer inputs, made after the workers were sent the batch;
   * and the results, unless they are written in place into the caller's
   * shared output. Shared inputs are read in place. The caller's other
   * outputs are written when every worker is done, after checking they are
   * still usable.
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
    const ml = this.macLength;
    const units = Math.max(1, Math.floor(blocks / UNIT_BLOCKS));
    const workers = Math.max(1, Math.min(pool.size, Math.floor(blocks / MIN_PART_BLOCKS)));
    const first = offsets[0]!;
    const dataLength = offsets[count]! - first;
    const copyData = !isShared(batch.data);
    const copyMacs = macs !== null && !isShared(macs);
    const inPlace = out !== undefined && isShared(out) && !overlapsInputs(out, length, batch, macs);
    // The area: control words | unit bounds | offsets | MACs (copied) | results (unless in place) | data (copied).
    const boundsAt = CONTROL_WORDS * 4;
    const offsetsAt = boundsAt + (units + 1) * 4;
    const macsAt = offsetsAt + (count + 1) * 4;
    const resultsAt = macsAt + (copyMacs ? count * ml : 0);
    const dataAt = resultsAt + (inPlace ? 0 : length);
    const area = pool.takeArea(dataAt + (copyData ? dataLength : 0));
    const control = new Int32Array(area, 0, CONTROL_WORDS);
    const bounds = new Uint32Array(area, boundsAt, units + 1);
    const rebased = new Uint32Array(area, offsetsAt, count + 1);
    const data = copyData ? new Uint8Array(area, dataAt, dataLength) : batch.data.subarray(first, first + dataLength);
    const expected = macs === null ? null : copyMacs ? new Uint8Array(area, macsAt, count * ml) : macs;
    const results = inPlace ? out : new Uint8Array(area, resultsAt, length);
    Atomics.store(control, NEXT, 0);
    Atomics.store(control, READY, 0);

    // The workers are sent the batch first, so that their wake-up (tens of
    // microseconds, more on a busy machine) overlaps the rest of this call;
    // a worker that comes in early waits for the units to be published.
    const keyState = this.backend.hmac.readSlot(this.live());
    let done: Promise<void>[];
    try {
      const job = { alg: this.alg, ml, units, control, bounds, offsets: rebased, data, macs: expected, out: results };
      done = pool.run(job, keyState, workers);
    } finally {
      keyState.fill(0);
    }
    try {
      rebased.set(offsets);
      if (first !== 0) for (let i = 0; i <= count; i++) rebased[i]! -= first;
      // Unit u ends at the first message where u/units of the work is done.
      for (let u = 1; u < units; u++) {
        const target = (total * u) / units;
        let lo = bounds[u - 1]!;
        let hi = count;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (work(mid) >= target) hi = mid;
          else lo = mid + 1;
        }
        bounds[u] = lo;
      }
      bounds[units] = count;
      if (copyData) copyInto(data, batch.data.subarray(first, first + dataLength), 0);
      if (copyMacs) copyInto(expected!, macs.subarray(0, count * ml), 0);
    } finally {
      // Published once, with one wake-up: a wake-up per unit would let the
      // woken workers preempt this thread's copy unit after unit. (Whatever
      // happened: no worker waits forever.)
      Atomics.store(control, READY, 1);
      Atomics.notify(control, READY);
    }

    const outcomes = await Promise.allSettled(done);
    try {
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      if (inPlace) return callerOut!;
      const result =
        callerOut === undefined ? new Uint8Array(length) : outputArg(callerOut, length, macs ? 'results' : 'out');
      copyInto(result, results, 0);
      return callerOut ?? result;
    } finally {
      pool.giveArea(area); // every worker has left the batch
    }
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
