/**
 * A log written and signed by one process: what the pino and winston
 * transports (pino.ts, winston.ts) are made of.
 *
 * createSignedLog(path, options) is a Writable: what is written to it is
 * appended to the log file (O_APPEND), and a followLog of that file runs
 * beside it (follow.ts), so the bytes signed are exactly the bytes written,
 * with --follow's checkpoints, heartbeats, forward-secure epochs, rotation,
 * crash and resume rules. end() waits for the follower to sign everything
 * written, seal it and write the trailer; 'close' follows.
 *
 * A log renamed away (logrotate) is noticed within a second: the writer
 * reopens the path, and the follower finishes the old file and chains a new
 * sidecar to it. copytruncate needs nothing (O_APPEND).
 */
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { followLog, type FollowOptions, type FollowSummary } from './follow.js';
import { assertPath, type FilePath } from './input.js';
import { pathString } from './atomic-file.js';

/** followLog's options, except the signal: ending the stream stops the signer. */
export type SignedLogOptions = Omit<FollowOptions, 'signal'>;

/** How often a writer checks that the log's path still names the file it writes (ms). */
const REOPEN_CHECK_MS = 1000;

export class SignedLog extends Writable {
  /** Resolves with the signer's summary once the stream has finished (or rejects with its error). */
  readonly summary: Promise<FollowSummary>;
  private readonly path: string;
  private readonly stop = new AbortController();
  private fh: FileHandle | null = null;
  private ino = -1n;
  private checkedAt = 0;
  private resolveSummary!: (s: FollowSummary) => void;
  private rejectSummary!: (e: Error) => void;
  private signer: Promise<FollowSummary> | null = null;

  constructor(
    path: FilePath,
    private readonly opts: SignedLogOptions,
  ) {
    super({ decodeStrings: true });
    assertPath(path, 'createSignedLog: the log');
    this.path = pathString(path);
    this.summary = new Promise((resolve, reject) => {
      this.resolveSummary = resolve;
      this.rejectSummary = reject;
    });
    this.summary.catch(() => {}); // observed through the stream's 'error' too
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.reopen().then(() => {
      this.signer = followLog(this.path, { ...this.opts, signal: this.stop.signal });
      // a signer that fails (a log changed while stopped, a key disabled) ends the stream with its error
      this.signer.then(
        (s) => {
          if (!this.stop.signal.aborted) this.destroy(new Error('the log signer stopped on its own'));
          else this.resolveSummary(s);
        },
        (err: Error) => {
          this.rejectSummary(err);
          this.destroy(err);
        },
      );
      callback();
    }, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.append(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.stop.abort();
    this.signer!.then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _destroy(err: Error | null, callback: (error: Error | null) => void): void {
    this.stop.abort();
    void (this.fh?.close() ?? Promise.resolve()).then(
      () => callback(err),
      () => callback(err),
    );
    this.fh = null;
  }

  private async append(chunks: Buffer[]): Promise<void> {
    if (Date.now() - this.checkedAt >= REOPEN_CHECK_MS) {
      this.checkedAt = Date.now();
      const now = await stat(this.path, { bigint: true }).catch(() => null);
      if (now?.ino !== this.ino) await this.reopen(); // renamed away (or removed): the signer follows the path too
    }
    let left = chunks;
    while (left.length) {
      const { bytesWritten } = await this.fh!.writev(left);
      left = advance(left, bytesWritten);
    }
  }

  private async reopen(): Promise<void> {
    const fh = await open(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    const old = this.fh;
    this.fh = fh;
    this.ino = (await fh.stat({ bigint: true })).ino;
    await old?.close();
  }
}

/** `chunks` without their first `n` bytes (writev may write less than asked). */
function advance(chunks: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < chunks.length && n >= chunks[i]!.length) n -= chunks[i++]!.length;
  const rest = chunks.slice(i);
  if (n > 0 && rest.length) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/** A log file and its sidecar, written and signed together (see SignedLog). */
export function createSignedLog(path: FilePath, options: SignedLogOptions): SignedLog {
  return new SignedLog(path, options);
}
