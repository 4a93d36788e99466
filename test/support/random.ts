/**
 * Seeded randomness for test data, so that a failure can be replayed.
 *
 * The seed is `KMS_HMAC_TEST_SEED`, else a new random one for each test file. Each test draws from
 * a stream of its own, derived from the seed and the test's full name, so what it gets does not
 * depend on which other tests ran before it (a `-t` filter replays it too); what is drawn outside a
 * test (at module level, in `beforeAll`) comes from the file's stream, in file order. A failing test
 * in a file that drew anything says how to replay it:
 *
 *   random data: replay with KMS_HMAC_TEST_SEED=2875117 npx vitest run test/x.test.ts -t '…'
 *
 * Only test data comes from here. Names that must be unique across processes (database names, key
 * ids) and attackers' noise stay on node:crypto.
 */
import { createHash, randomBytes } from 'node:crypto';
import { relative } from 'node:path';
import { beforeEach, TestRunner } from 'vitest';

export const SEED = process.env.KMS_HMAC_TEST_SEED || String(randomBytes(4).readUInt32LE(0));

/** xoshiro128** (Blackman and Vigna), seeded with SHA-256(seed, stream name). */
class Stream {
  private readonly s: Uint32Array;

  constructor(name: string) {
    const digest = createHash('sha256').update(`${SEED}\0${name}`).digest();
    this.s = new Uint32Array(digest.buffer, digest.byteOffset, 4).slice();
    if (this.s.every((w) => w === 0)) this.s[0] = 1;
  }

  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2] = s[2]! ^ s[0]!;
    s[3] = s[3]! ^ s[1]!;
    s[1] = s[1]! ^ s[2]!;
    s[0] = s[0]! ^ s[3]!;
    s[2] = s[2]! ^ t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

const streams = new Map<string, Stream>();

/** The stream of the running test, or the file's outside a test. */
function stream(): Stream {
  const test = TestRunner.getCurrentTest();
  const name = test ? fullName(test) : '';
  let s = streams.get(name);
  if (!s) {
    s = new Stream(name);
    streams.set(name, s);
  }
  return s;
}

interface Named {
  name: string;
  suite?: Named;
}

/** The test's name with its describe blocks', as vitest's -t matches it (the file not included). */
function fullName(task: Named): string {
  const names: string[] = [];
  for (let t: Named | undefined = task; t && !('filepath' in t); t = t.suite) names.unshift(t.name);
  return names.join(' ');
}

/** Random test data from the running test's stream. */
export const random = {
  /** A uniform number in [0, 1), like Math.random(). */
  float: (): number => stream().next() / 2 ** 32,
  /** A uniform integer in [0, n), n ≤ 2^32. */
  int: (n: number): number => Math.floor((stream().next() / 2 ** 32) * n),
  /** A uniform integer in [lo, hi]. */
  between: (lo: number, hi: number): number => lo + random.int(hi - lo + 1),
  /** One element of `xs`. */
  pick: <T>(xs: readonly T[]): T => xs[random.int(xs.length)]!,
  /** `n` random bytes, as node:crypto's randomBytes gives them (a Buffer). */
  bytes(n: number): Buffer {
    const s = stream();
    const out = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(s.next(), i);
    if (i < n) {
      const last = s.next();
      for (let k = 0; i < n; i++, k++) out[i] = (last >>> (8 * k)) & 0xff;
    }
    return out;
  },
};

// Every test of a file that imports this module: when it fails and anything was drawn (by it, or
// for the file), the line that replays it, added to the error itself so that every reporter shows it.
beforeEach(({ task, onTestFailed }) => {
  onTestFailed(() => {
    if (streams.size === 0) return;
    const file = relative(process.cwd(), task.file.filepath);
    const pattern = fullName(task)
      .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
      .replaceAll("'", "'\\''");
    const line = `random data: replay with KMS_HMAC_TEST_SEED=${SEED} npx vitest run ${file} -t '^${pattern}$'`;
    const error = task.result?.errors?.[0];
    if (error) error.message = `${error.message}\n${line}`;
    else console.error(line);
  });
});
