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
  if (input !== null && typeof input === 'object' && typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return;
  throw new TypeError(
    `${caller}: the log must be a file path (string or URL), bytes (Uint8Array), a readable stream or an async iterable of Uint8Array chunks; got ${describeValue(input)}`,
  );
}

/** The log's bytes as chunks (which the caller must not keep: file reads reuse one buffer). */
export async function* logChunks(input: LogInput, caller: string): AsyncGenerator<Buffer> {
  assertLogInput(input, caller);
  if (typeof input === 'string' || input instanceof URL) {
    yield* readFileChunks(input);
    return;
  }
  if (input instanceof Uint8Array) {
    yield asBuffer(input);
    return;
  }
  for await (const chunk of input as AsyncIterable<unknown>) {
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(`${caller}: every chunk of the log must be a Uint8Array (a stream of strings has no byte encoding); got ${describeValue(chunk)}`);
    }
    yield asBuffer(chunk);
  }
}

/**
 * Reads a file as a sequence of chunks in one reused buffer, from `start`
 * up to `end` (default: the end of the file). signLog and verifyLog never keep
 * a chunk (the framer copies the bytes of an unfinished record), so reusing the
 * buffer saves allocating and page-faulting a fresh 1 MiB per read, which
 * createReadStream does. Only for consumers that do not keep chunks.
 */
export async function* readFileChunks(path: FilePath, start = 0, end = Infinity): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    yield* fileChunks(fh, start, end);
  } finally {
    await fh.close();
  }
}

/** The same over an open file (which stays open). */
export async function* fileChunks(fh: FileHandle, start = 0, end = Infinity, chunkSize = 1 << 20): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafeSlow(chunkSize);
  for (let pos = start; pos < end; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(chunkSize, end - pos), pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
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
