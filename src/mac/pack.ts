/**
 * The array-of-Uint8Array batch forms, packed for the backends' one batch
 * primitive (data + n+1 offsets, MACs at a fixed stride).
 *
 * Each element is read exactly once, in one pass that checks it and copies
 * its bytes. That read is the only step that can run caller code (the traps
 * of an array Proxy, an accessor element): everything after it reads
 * internal slots (src/mac/views.ts), so the packed copy is exactly the bytes each
 * element held when it was read, whatever the caller's code did meanwhile.
 * Engines then only ever see buffers nobody else holds.
 *
 * The sync and async batch calls pack into recycled memory (`withPacked…`):
 * every backend has copied or consumed its inputs by the time it returns,
 * so the memory is free again as soon as the call returns.
 */
import { byteLength, copyInto, isDetachedView, isUint8Array } from './views.js';

/** Packed messages: message i is `data[offsets[i] .. offsets[i+1])`. */
export interface PackedMessages {
  data: Uint8Array;
  offsets: Uint32Array;
}

/** An element of a batch array that is not a usable Uint8Array. `index` is its position. */
export class BatchItemError extends TypeError {
  constructor(
    readonly list: 'messages' | 'macs',
    readonly index: number,
    readonly reason: 'type' | 'detached',
  ) {
    super(`${list}[${index}] ${reason === 'type' ? 'must be a Uint8Array' : 'is backed by a detached ArrayBuffer'}`);
  }
}

const MAX_TOTAL = 0xffffffff; // offsets are 32-bit

/** `array`, or a larger copy of its first `keep` elements when it has fewer than `needed`. */
function withRoom<T extends Uint8Array | Uint32Array>(
  array: T,
  needed: number,
  keep: number,
  make: (length: number) => T,
): T {
  if (needed <= array.length) return array;
  const grown = make(Math.max(needed, array.length * 2));
  grown.set(array.subarray(0, keep));
  return grown;
}

/** Recycled packing memory: grows to the largest batch seen, up to KEEP_BYTES. */
class Scratch {
  bytes = new Uint8Array(64 * 1024);
  words = new Uint32Array(1024);

  /** `bytes` with room for `needed`, keeping the first `keep` bytes. */
  room(needed: number, keep: number): Uint8Array {
    this.bytes = withRoom(this.bytes, needed, keep, (n) => new Uint8Array(n));
    return this.bytes;
  }

  /** `words` with room for `needed`, keeping the first `keep`. */
  wordRoom(needed: number, keep: number): Uint32Array {
    this.words = withRoom(this.words, needed, keep, (n) => new Uint32Array(n));
    return this.words;
  }
}

const KEEP_BYTES = 16 * 1024 * 1024;
const spares: Scratch[] = [];

/**
 * Runs `use` with scratch memory that nothing else uses meanwhile (a
 * getter called while packing may start another batch: it gets its own).
 */
function withScratch<T>(use: (scratch: Scratch) => T): T {
  const scratch = spares.pop() ?? new Scratch();
  try {
    return use(scratch);
  } finally {
    if (spares.length < 2 && scratch.bytes.byteLength + scratch.words.byteLength <= KEEP_BYTES) spares.push(scratch);
  }
}

/** The length of a batch array, read once (a Proxy may say anything). */
function arrayCount(value: unknown, list: string): number {
  if (!Array.isArray(value)) throw new TypeError(`${list} must be an array of Uint8Array`);
  const count: unknown = value.length;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > MAX_TOTAL - 1) {
    throw new RangeError(`${list}.length must be an array length`);
  }
  return count;
}

/** Packs into `scratch`: one pass, each element read once and copied at once. */
function pack(messages: unknown, scratch: Scratch): PackedMessages {
  const count = arrayCount(messages, 'messages');
  const array = messages as readonly unknown[];
  // Both grow as elements arrive: a Proxy's length is only a claim. (Their
  // capacities are kept in locals: a typed array's length is not free.)
  let offsets: Uint32Array = scratch.words;
  let data: Uint8Array = scratch.bytes;
  let room = data.length;
  let slots = offsets.length;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const message = array[i];
    if (!isUint8Array(message)) throw new BatchItemError('messages', i, 'type');
    const length = byteLength(message);
    if (length === 0 && isDetachedView(message)) throw new BatchItemError('messages', i, 'detached');
    const end = total + length;
    if (end > room) {
      if (end > MAX_TOTAL) throw new RangeError('messages total over 4 GiB; split the batch');
      data = scratch.room(end, total);
      room = data.length;
    }
    if (i + 1 >= slots) {
      offsets = scratch.wordRoom(i + 2, i);
      slots = offsets.length;
    }
    copyInto(data, message, total);
    offsets[i] = total;
    total = end;
  }
  offsets[count] = total;
  return { data: data.subarray(0, total), offsets: offsets.subarray(0, count + 1) };
}

/** Packs messages into one new buffer plus n+1 offsets: the zero-copy batch form. */
export function packMessages(messages: readonly Uint8Array[]): PackedMessages {
  return withScratch((scratch) => {
    const { data, offsets } = pack(messages, scratch);
    return { data: data.slice(), offsets: offsets.slice() };
  });
}

/** Runs `use` with `messages` packed into recycled memory, valid until `use` returns. */
export function withPackedMessages<T>(messages: unknown, use: (packed: PackedMessages, count: number) => T): T {
  return withScratch((scratch) => {
    const packed = pack(messages, scratch);
    return use(packed, packed.offsets.length - 1);
  });
}

/** MACs packed at a fixed stride; `wrongLength` lists the entries that were not macLength bytes. */
export interface PackedMacs {
  macs: Uint8Array;
  wrongLength: number[];
}

/**
 * Runs `use` with an array of `count` MACs packed at a stride of
 * `macLength`. A MAC of another length cannot be valid: its slot is zeroed
 * and its index listed, and the caller reports it invalid. `check`, if
 * given, sees each MAC's length first (and may throw).
 */
export function withPackedMacs<T>(
  macs: unknown,
  count: number,
  macLength: number,
  use: (packed: PackedMacs) => T,
  check?: (length: number, index: number) => void,
): T {
  const given = arrayCount(macs, 'macs');
  if (given !== count) throw new RangeError(`macs must have one entry per message (${count}), got ${given}`);
  return withScratch((scratch) => {
    const bytes = scratch.room(count * macLength, 0).subarray(0, count * macLength);
    const wrongLength: number[] = [];
    const array = macs as readonly unknown[];
    for (let i = 0; i < count; i++) {
      const mac = array[i];
      if (!isUint8Array(mac)) throw new BatchItemError('macs', i, 'type');
      const length = byteLength(mac);
      // Only an empty view can be detached (and only then is the check, which allocates, needed).
      if (length === 0 && isDetachedView(mac)) throw new BatchItemError('macs', i, 'detached');
      if (check !== undefined) check(length, i);
      if (length === macLength) {
        copyInto(bytes, mac, i * macLength);
      } else {
        bytes.fill(0, i * macLength, (i + 1) * macLength);
        wrongLength.push(i);
      }
    }
    return use({ macs: bytes, wrongLength });
  });
}

/** The MACs of a packed batch, one view each. */
export function splitMacs(out: Uint8Array, count: number, macLength: number): Uint8Array[] {
  const buffer = out.buffer;
  const macs = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) macs[i] = new Uint8Array(buffer, i * macLength, macLength);
  return macs;
}
