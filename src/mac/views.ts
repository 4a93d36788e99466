/**
 * Reading caller-supplied typed arrays without running caller code.
 *
 * `view.length`, `view.buffer`, `view.subarray()` or `view.set()` can run
 * anything a caller likes: a Uint8Array subclass or an own accessor can
 * override them, and can lie. The helpers here use the built-in TypedArray
 * getters and methods, captured when this module loads, which read the
 * view's internal slots: no getter, valueOf or Proxy trap runs, and a Proxy
 * is simply not a typed array. Checks built on them cannot be raced by the
 * value they check.
 */

type Getter<T> = (this: unknown) => T;

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const getter = <T>(key: PropertyKey): Getter<T> =>
  Object.getOwnPropertyDescriptor(TypedArrayPrototype, key)!.get as Getter<T>;

const tagOf = getter<string | undefined>(Symbol.toStringTag);
const bufferOf = getter<ArrayBufferLike>('buffer');
const byteOffsetOf = getter<number>('byteOffset');
const byteLengthOf = getter<number>('byteLength');
const typedArraySet = (
  TypedArrayPrototype as { set: (this: unknown, source: ArrayLike<number>, offset?: number) => void }
).set;

export function isUint8Array(value: unknown): value is Uint8Array {
  return tagOf.call(value) === 'Uint8Array';
}

export function isUint32Array(value: unknown): value is Uint32Array {
  return tagOf.call(value) === 'Uint32Array';
}

/** The view's length in bytes, from its internal slot (0 when detached or out of bounds). */
export function byteLength(view: ArrayBufferView): number {
  return byteLengthOf.call(view);
}

/** The view's length in elements. */
export function elementCount(view: Uint8Array | Uint32Array): number {
  return byteLengthOf.call(view) / (tagOf.call(view) === 'Uint32Array' ? 4 : 1);
}

/** Copies `source` into `target` at `offset` (TypedArray.prototype.set, whatever the views override). */
export function copyInto(target: Uint8Array, source: Uint8Array, offset: number): void {
  typedArraySet.call(target, source, offset);
}

/**
 * What is wrong with a typed array as an input or output buffer, or
 * undefined. `view` must already be a typed array; `shared`: whether a
 * SharedArrayBuffer is acceptable (the packed batch arguments, see
 * native/js_args.h). Reads `.buffer`, which makes V8 give a small on-heap
 * array its own ArrayBuffer: call it once per argument, never once per
 * message of a batch.
 */
export function bufferProblem(view: ArrayBufferView, shared = false): string | undefined {
  const buffer = bufferOf.call(view);
  if (buffer instanceof SharedArrayBuffer) return shared ? undefined : 'must not be backed by a SharedArrayBuffer';
  if (byteLengthOf.call(view) === 0 && isDetached(buffer as ArrayBuffer)) return 'is backed by a detached ArrayBuffer';
  return undefined;
}

/** Whether the view is backed by a SharedArrayBuffer (another thread may write it at any time). */
export function isShared(view: ArrayBufferView): boolean {
  return bufferOf.call(view) instanceof SharedArrayBuffer;
}

/** Whether an empty-looking view's buffer is detached (only call this for empty views: it allocates). */
export function isDetachedView(view: ArrayBufferView): boolean {
  return isDetached(bufferOf.call(view) as ArrayBuffer);
}

function isDetached(buffer: ArrayBuffer): boolean {
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * A new Uint8Array over exactly the bytes `view` covers now: a plain object
 * no caller holds, so its methods and length can be trusted. A
 * length-tracking view of a resizable buffer becomes a fixed-length one.
 */
export function plainView(view: Uint8Array): Uint8Array {
  return new Uint8Array(bufferOf.call(view), byteOffsetOf.call(view), byteLengthOf.call(view));
}

/** A plain Uint32Array over the same elements (see plainView). */
export function plainOffsets(view: Uint32Array): Uint32Array {
  return new Uint32Array(bufferOf.call(view), byteOffsetOf.call(view), byteLengthOf.call(view) / 4);
}

/**
 * Whether the first `aBytes` of `a` and the first `bBytes` of `b` may share
 * memory. Two SharedArrayBuffer objects may be one memory (a buffer posted
 * to this thread and back, a WebAssembly.Memory's buffer before and after it
 * grew), and JavaScript cannot tell: views over two of them may overlap.
 */
export function overlaps(a: ArrayBufferView, aBytes: number, b: ArrayBufferView, bBytes: number): boolean {
  if (aBytes === 0 || bBytes === 0) return false;
  const aBuffer = bufferOf.call(a);
  const bBuffer = bufferOf.call(b);
  if (aBuffer !== bBuffer) return aBuffer instanceof SharedArrayBuffer && bBuffer instanceof SharedArrayBuffer;
  const aStart = byteOffsetOf.call(a);
  const bStart = byteOffsetOf.call(b);
  return aStart < bStart + bBytes && bStart < aStart + aBytes;
}
