/**
 * What the log APIs accept as a log, and how it is read.
 *
 * A string or a URL is always a file PATH, never content: `signLog('/var/log/app.log', …)`
 * signs the file, not the 16 bytes of its name. Content comes as bytes (a
 * Uint8Array), a readable byte stream, or an async iterable of Uint8Array
 * chunks. Anything else is a TypeError, and so is a chunk that is not bytes
 * (a string chunk has no byte encoding the signer could assume).
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** A log: a file path (string or file: URL), its bytes, a byte stream, or an async iterable of byte chunks. */
export type LogInput = string | URL | Uint8Array | Readable | AsyncIterable<Uint8Array>;

/** A file path: a string or a file: URL. */
export type FilePath = string | URL;

/** Throws a TypeError unless `p` is a non-empty string or a URL. */
export function assertPath(p: unknown, what: string): asserts p is FilePath {
  if (!((typeof p === 'string' && p !== '') || p instanceof URL)) {
    throw new TypeError(`${what} must be a file path (a non-empty string or a file: URL), got ${describeValue(p)}`);
  }
}

/** Throws a TypeError unless `input` is a LogInput. */
export function assertLogInput(input: unknown, caller: string): asserts input is LogInput {
  if (typeof input === 'string' || input instanceof URL) return assertPath(input, `${caller}: the log`);
  if (input instanceof Uint8Array) return;
  if (
    input !== null &&
    typeof input === 'object' &&
    typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  )
    return;
  throw new TypeError(
    `${caller}: the log must be a file path (string or URL), bytes (Uint8Array), a readable stream or an async iterable of Uint8Array chunks; got ${describeValue(input)}`,
  );
}

/** Two buffers a file is read into in turn: the next read runs while the consumer works on the last chunk. */
export type ReadAreas = readonly [Buffer, Buffer];

/**
 * The log's bytes as chunks, which the consumer must be done with before it
 * asks for the next (a file's next read is already under way into the other
 * area). A file is read into `areas` (default: two buffers of its own).
 */
export async function* logChunks(input: LogInput, caller: string, areas?: ReadAreas): AsyncGenerator<Buffer> {
  assertLogInput(input, caller);
  if (typeof input === 'string' || input instanceof URL) {
    yield* readFileChunks(input, areas);
    return;
  }
  if (input instanceof Uint8Array) {
    yield asBuffer(input);
    return;
  }
  for await (const chunk of input as AsyncIterable<unknown>) {
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(
        `${caller}: every chunk of the log must be a Uint8Array (a stream of strings has no byte encoding); got ${describeValue(chunk)}`,
      );
    }
    yield asBuffer(chunk);
  }
}

/** Reads a file from its start to its end as it is when the reads reach it (see fileChunks). */
export async function* readFileChunks(path: FilePath, areas?: ReadAreas): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    yield* fileChunks(fh, 0, Infinity, areas);
  } finally {
    await fh.close();
  }
}

/**
 * Reads an open file (which stays open) from `start` up to `end` (default:
 * its end), into `areas` in turn: two reused buffers rather than a fresh
 * 1 MiB per read (which createReadStream allocates and the kernel then
 * page-faults in), and the next read is issued as soon as a chunk is handed
 * out, so reading overlaps the consumer's work on the chunk.
 */
export async function* fileChunks(
  fh: FileHandle,
  start = 0,
  end = Infinity,
  areas: ReadAreas = [Buffer.allocUnsafeSlow(1 << 20), Buffer.allocUnsafeSlow(1 << 20)],
): AsyncGenerator<Buffer> {
  const read = (k: number, pos: number) => fh.read(areas[k]!, 0, Math.min(areas[k]!.length, end - pos), pos);
  let k = 0;
  let pending: ReturnType<typeof read> | null = start < end ? read(0, start) : null;
  let pos = start;
  try {
    while (pending) {
      const { bytesRead } = await pending;
      pending = null;
      if (bytesRead === 0) return;
      pos += bytesRead;
      if (pos < end) pending = read(k ^ 1, pos);
      yield areas[k]!.subarray(0, bytesRead);
      k ^= 1;
    }
  } finally {
    // a consumer that stops early: the read under way must finish before the file closes
    await pending?.catch(() => {});
  }
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no prototype'})`;
  return typeof v;
}
