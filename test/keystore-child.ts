/**
 * Child processes running the key store, for the crash and migration tests.
 * The child (test/fixtures/keystore-child.mjs) is plain JS run by a bare
 * `node`, which cannot import TypeScript on Node 20: it imports the compiled
 * store from dist/, which `useKeyStoreChild()` rebuilds first when it is
 * older than src/ (the same check the server's child-process tests make).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll } from 'vitest';
import { builtServeEntry } from './server-helpers.js';
import { track } from './support/process-group.js';

const here = dirname(fileURLToPath(import.meta.url));
const CHILD = join(here, 'fixtures', 'keystore-child.mjs');

export interface ChildRun {
  acked: string[];
  lines: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export interface ChildOptions {
  /** Store passphrase ('' for none). */
  pass?: string;
  /** The new passphrase of `rekey`. */
  newPass?: string;
  /** Called for every complete line the child prints; may kill it. */
  onLine?: (line: string, kill: () => void) => void;
  /** SIGKILL the child this long after it was spawned. */
  killAfterMs?: number;
  /** A command to run the child under, e.g. ['unshare', '--pid', '--fork']. */
  wrap?: string[];
}

export type RunChild = (args: string[], options?: ChildOptions) => Promise<ChildRun>;

/** Makes sure dist/ is current before the file's tests; returns the child runner. */
export function useKeyStoreChild(): RunChild {
  beforeAll(() => {
    builtServeEntry();
  }, 300_000);
  const moduleUrl = pathToFileURL(join(here, '..', 'dist', 'keystore', 'index.js')).href;

  /** Runs the child; resolves with the complete lines it printed and how it ended. */
  return (args, { pass = '', newPass = '', onLine, killAfterMs, wrap = [] } = {}) =>
    new Promise((resolve, reject) => {
      const [cmd, ...pre] = [...wrap, process.execPath];
      const p = track(
        spawn(cmd!, [...pre, CHILD, ...args], {
          env: { ...process.env, KS_MODULE: moduleUrl, KS_PASS: pass, KS_NEW_PASS: newPass },
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      let buf = '';
      let stderr = '';
      const lines: string[] = [];
      const kill = () => p.kill('SIGKILL');
      const timer = killAfterMs === undefined ? undefined : setTimeout(kill, killAfterMs);
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          lines.push(line);
          onLine?.(line, kill);
        }
      });
      p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      p.on('error', reject);
      p.on('close', (code, signal) => {
        clearTimeout(timer);
        const acked = lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));
        resolve({ acked, lines, code, signal, stderr });
      });
    });
}
