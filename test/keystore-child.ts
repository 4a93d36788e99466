/**
 * Child processes running the current key store source, for the crash and
 * migration tests. The child (test/fixtures/keystore-child.mjs) is plain JS
 * run by a bare `node`, which cannot import TypeScript on Node 20. Rather
 * than depend on a possibly stale or half-built dist/, `useKeyStoreChild()`
 * transpiles src/keystore/*.ts with the TypeScript compiler API (transpile
 * only, no type check: well under a second) into a directory under
 * node_modules/.cache (so `better-sqlite3` resolves), and the child imports
 * that. So these suites always test the current source and need no build.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll } from 'vitest';

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
  /** Called for every complete line the child prints; may kill it. */
  onLine?: (line: string, kill: () => void) => void;
  /** SIGKILL the child this long after it was spawned. */
  killAfterMs?: number;
  /** A command to run the child under, e.g. ['unshare', '--pid', '--fork']. */
  wrap?: string[];
}

export type RunChild = (args: string[], options?: ChildOptions) => Promise<ChildRun>;

/** Transpiles the key store before the file's tests (removed after them); returns the child runner. */
export function useKeyStoreChild(): RunChild {
  const lib = join(here, '..', 'node_modules', '.cache', `kms-hmac-keystore-${randomBytes(6).toString('hex')}`);
  beforeAll(() => {
    mkdirSync(lib, { recursive: true });
    writeFileSync(join(lib, 'package.json'), '{"type":"module"}\n');
    const src = join(here, '..', 'src', 'keystore');
    for (const f of readdirSync(src).filter((f) => f.endsWith('.ts'))) {
      const { outputText } = ts.transpileModule(readFileSync(join(src, f), 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        fileName: f,
      });
      writeFileSync(join(lib, f.replace(/\.ts$/, '.js')), outputText);
    }
  });
  afterAll(() => rmSync(lib, { recursive: true, force: true }));
  const moduleUrl = pathToFileURL(join(lib, 'index.js')).href;

  /** Runs the child; resolves with the complete lines it printed and how it ended. */
  return (args, { pass = '', onLine, killAfterMs, wrap = [] } = {}) =>
    new Promise((resolve, reject) => {
      const [cmd, ...pre] = [...wrap, process.execPath];
      const p = spawn(cmd!, [...pre, CHILD, ...args], {
        env: { ...process.env, KS_MODULE: moduleUrl, KS_PASS: pass },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let buf = '';
      let stderr = '';
      const lines: string[] = [];
      const kill = () => p.kill('SIGKILL');
      const timer = killAfterMs === undefined ? undefined : setTimeout(kill, killAfterMs);
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
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
