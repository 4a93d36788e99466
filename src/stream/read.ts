/**
 * Reads a file as a sequence of chunks in one reused buffer. signLog and
 * verifyLog never keep a chunk (the framer copies the bytes of an unfinished
 * record), so reusing the buffer saves allocating and page-faulting a fresh
 * 1 MiB per read, which createReadStream does. Only for consumers that do not
 * keep chunks.
 */
import { open } from 'node:fs/promises';

export async function* readFileChunks(path: string, chunkSize = 1 << 20): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(chunkSize);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, chunkSize, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
