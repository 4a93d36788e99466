/**
 * Files written whole or not at all: a temporary sibling created exclusively,
 * then renamed over the target (commit), or linked to it where nothing may be
 * replaced (publish).
 *
 * The temporary file gets a random name and is opened with O_CREAT | O_EXCL |
 * O_NOFOLLOW, so a file or symlink planted in the directory (even a dangling
 * symlink at a guessed name) is never opened, truncated or written through.
 * rename() replaces the target's directory entry itself: a symlink planted at
 * the target is replaced, never followed. The directory is fsynced after the
 * rename so the new entry survives a crash.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FilePath } from './input.js';

const EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export function pathString(p: FilePath): string {
  return p instanceof URL ? fileURLToPath(p) : p;
}

/** Creates `path`, failing (EEXIST) if anything — a file, a directory, a symlink — is already there. */
export function openExclusive(path: string, mode = 0o644): Promise<FileHandle> {
  return open(path, EXCLUSIVE, mode);
}

export interface TempFile {
  fh: FileHandle;
  path: string;
  /** fsyncs and closes the file, renames it over the target and fsyncs the directory. */
  commit(): Promise<void>;
  /**
   * fsyncs the file and gives it the target's name unless something is there
   * already (EEXIST); `fh` stays open, now writing the target.
   */
  publish(): Promise<void>;
  /** Closes and removes the temporary file (after a failure). Never throws. */
  discard(): Promise<void>;
}

/** A temporary file next to `target`, to be committed over it. */
export async function createTemp(target: FilePath): Promise<TempFile> {
  const dest = pathString(target);
  const dir = dirname(dest);
  for (let attempt = 0; ; attempt++) {
    const path = join(dir, `.${basename(dest)}.${randomBytes(12).toString('hex')}.tmp`);
    let fh: FileHandle;
    try {
      fh = await openExclusive(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 3) continue; // 96 random bits taken: someone is planting
      throw err;
    }
    return {
      fh,
      path,
      async commit() {
        await fh.sync();
        await fh.close();
        await rename(path, dest);
        await syncDir(dir);
      },
      async publish() {
        await fh.sync();
        await link(path, dest);
        await unlink(path);
        await syncDir(dir);
      },
      async discard() {
        await fh.close().catch(() => {});
        await unlink(path).catch(() => {});
      },
    };
  }
}

/** fsyncs a directory so a rename or create in it is durable (a no-op where directories cannot be opened). */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on a directory; the rename itself has happened
  } finally {
    await fh?.close().catch(() => {});
  }
}
