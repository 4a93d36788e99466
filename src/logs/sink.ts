/**
 * Where shipped checkpoints go (`--checkpoints-out PATH|-`, the transports'
 * `checkpointsOut`): each line (anchors.ts) as soon as it is durable in the
 * sidecar, to be kept where whoever can rewrite the log cannot — a file on
 * another disk or mount (appended, fdatasynced), a pipe, or stdout (`-`,
 * e.g. into `logger -t kms-hmac` for syslog).
 *
 * A stream line carries a forward-secure stream's nonce: its bytes are
 * zero-filled as soon as the write is done, so that no copy stays in this
 * process (the line goes to the sink, never to a file of the signer's).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { anchorBytes, type Anchor } from './anchors.js';

export interface CheckpointSink {
  /** Writes one line; resolves once it is written (and, to a regular file, fdatasynced). */
  write: (a: Anchor) => Promise<void>;
  close(): Promise<void>;
}

export interface SinkOptions {
  /**
   * When a file sink fdatasyncs: after each line (`each`, the default: a
   * live log's signer goes on only once its checkpoint is safe), or once, on
   * close (`close`: `sign` of a finished file ships all its lines at the end,
   * where a sync per line would only cost time).
   */
  sync?: 'each' | 'close';
}

/** A sink for a file path (appended), or `-` for stdout. */
export async function checkpointSink(target: string, options: SinkOptions = {}): Promise<CheckpointSink> {
  const syncEach = (options.sync ?? 'each') === 'each';
  if (target === '-') {
    return {
      write: async (a) => {
        const line = anchorBytes(a);
        try {
          await new Promise<void>((resolve, reject) =>
            process.stdout.write(line, (err) => (err ? reject(err) : resolve())),
          );
        } finally {
          line.fill(0);
        }
      },
      close: async () => {},
    };
  }
  const fh: FileHandle = await open(target, 'a', 0o644);
  const regular = (await fh.stat()).isFile();
  return {
    write: async (a) => {
      const line = anchorBytes(a);
      try {
        for (let done = 0; done < line.length; ) done += (await fh.write(line, done, line.length - done)).bytesWritten;
        if (regular && syncEach) await fh.datasync();
      } finally {
        line.fill(0);
      }
    },
    close: async () => {
      try {
        if (regular && !syncEach) await fh.datasync();
      } finally {
        await fh.close();
      }
    },
  };
}
