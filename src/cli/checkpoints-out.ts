/**
 * `--checkpoints-out PATH|-`: each checkpoint (and the closing trailer) as
 * one JSON line, written as soon as it is durable in the sidecar, so it can
 * be kept where whoever can rewrite the log cannot: a file on another disk
 * or mount (appended, fdatasynced), a pipe, or stdout (`-`, e.g. into
 * `logger -t kms-hmac` for syslog).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { anchorLine, type Anchor } from '../logs/anchors.js';

export interface CheckpointSink {
  write: (a: Anchor) => Promise<void>;
  close(): Promise<void>;
}

/** A sink for `target` (undefined: none); `log` names the log in every line. */
export async function checkpointsOut(target: string | undefined, log: string): Promise<CheckpointSink | undefined> {
  if (target === undefined) return undefined;
  if (target === '-') {
    return {
      write: async (a) => {
        if (!process.stdout.write(anchorLine({ ...a, log }))) await once(process.stdout, 'drain');
      },
      close: async () => {},
    };
  }
  const fh: FileHandle = await open(target, 'a', 0o644);
  const regular = (await fh.stat()).isFile();
  return {
    write: async (a) => {
      await fh.write(anchorLine({ ...a, log }));
      if (regular) await fh.datasync();
    },
    close: () => fh.close(),
  };
}
