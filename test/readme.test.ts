/**
 * The README's promises: every command and example in it runs, exactly as
 * written, or is run as written somewhere named.
 *
 * Each fenced block is one of:
 *   - ```sh without a marker (or `<!-- readme-test: run -->`): run in one bash
 *     session, block after block (exports and the working directory carry
 *     over, as in a terminal), in a scratch project where kms-hmac is installed
 *     (node_modules/kms-hmac is this checkout). Lines that `.ci/run` runs
 *     (`npm ci`, `npm test`) must appear in .ci/run instead.
 *   - ```js: run as an ES module in that project.
 *   - `<!-- readme-test: docs/NAME.md -->`: appears verbatim in that page, whose
 *     own test runs it (test/fleet-docs.test.ts, test/live-logs-doc.test.ts).
 *   - `<!-- readme-test: test/prebuild.test.ts -->`: the install steps, which
 *     that test performs on the real tarball (checked below to stay the same).
 *
 * The performance section is `node bench/report.js --readme`, and
 * docs/benchmarks.md's "The recorded run" is `node bench/report.js
 * --benchmarks`: their figures come from the runs recorded in bench/results/,
 * never typed in.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { killGroup, track } from './support/process-group.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const CI = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');

interface Block {
  lang: string;
  text: string;
  marker: string | undefined;
  line: number;
}

const blocks: Block[] = [...README.matchAll(/(?:<!-- readme-test: ([^>]+?) -->\n)?^```(\w*)\n([\s\S]*?)^```$/gm)].map(
  (m) => ({
    marker: m[1],
    lang: m[2]!,
    text: m[3]!,
    line: README.slice(0, m.index).split('\n').length,
  }),
);

/** Lines a shell would run: comments and blank lines dropped, trailing comments cut. */
const commands = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
const CI_COMMANDS = /^npm (ci|test)$/;

const scratch = mkdtempSync(join(tmpdir(), 'kms-hmac-readme-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A project with kms-hmac installed (this checkout), the SDK and the loggers, as a user's app would have. */
function project(): { cwd: string; env: NodeJS.ProcessEnv } {
  const cwd = join(scratch, 'app');
  mkdirSync(join(cwd, 'node_modules', '.bin'), { recursive: true });
  mkdirSync(join(cwd, 'node_modules', '@aws-sdk'), { recursive: true });
  writeFileSync(
    join(cwd, 'package.json'),
    JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { 'kms-hmac': '*' } }),
  );
  symlinkSync(ROOT, join(cwd, 'node_modules', 'kms-hmac'));
  symlinkSync(
    join(ROOT, 'node_modules', '@aws-sdk', 'client-kms'),
    join(cwd, 'node_modules', '@aws-sdk', 'client-kms'),
  );
  // the loggers the README's log-signing examples use (kms-hmac/pino, kms-hmac/winston)
  for (const name of ['pino', 'winston'])
    symlinkSync(join(ROOT, 'node_modules', name), join(cwd, 'node_modules', name));
  symlinkSync(join(ROOT, 'bin', 'kms-hmac.js'), join(cwd, 'node_modules', '.bin', 'kms-hmac'));
  const home = join(scratch, 'home');
  mkdirSync(home);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_DATA_HOME: join(home, 'data'),
    AWS_CONFIG_FILE: join(home, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'aws-credentials'),
    npm_config_update_notifier: 'false',
  };
  return { cwd, env };
}

/** One bash session fed block by block; background jobs are stopped with it. */
function session(cwd: string, env: NodeJS.ProcessEnv) {
  const bash = track(
    spawn('bash', ['--noprofile', '--norc', '-s'], {
      cwd,
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  bash.stdout.on('data', (d) => (out += d));
  bash.stderr.on('data', (d) => (out += d));
  bash.stdin.write('set -euo pipefail\n');
  let n = 0;
  return {
    run(text: string, timeoutMs: number): Promise<string> {
      const done = `__readme_block_${++n}_done__`;
      const start = out.length;
      bash.stdin.write(`${text}\necho ${done}\n`);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out:\n${out.slice(start)}`)), timeoutMs);
        const check = () => {
          const i = out.indexOf(done, start);
          if (i >= 0) {
            clearTimeout(timer);
            bash.stdout.off('data', check);
            bash.off('exit', exited);
            resolve(out.slice(start, i));
          }
        };
        const exited = (code: number | null) => {
          clearTimeout(timer);
          reject(new Error(`the shell exited (${code}): a command failed:\n${out.slice(start)}`));
        };
        bash.stdout.on('data', check);
        bash.once('exit', exited);
      });
    },
    stop() {
      killGroup(bash, 'SIGTERM');
    },
  };
}

describe('README.md', () => {
  it('has only blocks this test knows how to check', () => {
    for (const b of blocks) {
      const known =
        (b.lang === 'sh' &&
          (b.marker === undefined ||
            b.marker === 'run' ||
            b.marker.startsWith('docs/') ||
            b.marker === 'test/prebuild.test.ts')) ||
        (b.lang === 'js' && b.marker === undefined) ||
        b.marker?.startsWith('docs/');
      expect(known, `README.md:${b.line}: a \`\`\`${b.lang} block marked ${b.marker ?? '(nothing)'}`).toBe(true);
    }
  });

  it('blocks taken from a docs page appear there verbatim (that page is run by its own test)', () => {
    for (const b of blocks.filter((x) => x.marker?.startsWith('docs/'))) {
      const page = readFileSync(join(ROOT, b.marker!), 'utf8');
      expect(page.includes(b.text), `README.md:${b.line} differs from ${b.marker}`).toBe(true);
    }
    expect(
      existsSync(join(ROOT, 'test', 'fleet-docs.test.ts')) && existsSync(join(ROOT, 'test', 'live-logs-doc.test.ts')),
    ).toBe(true);
  });

  it('no shell loop in it or in a docs page runs unbounded: each waits a fixed number of times', () => {
    // A loop that waits for a server forever outlives the test that ran it when the server never
    // comes (and holds whatever the walk-through started). `for i in $(seq N)` with a break instead.
    const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f))].filter((f) =>
      f.endsWith('.md'),
    );
    for (const page of pages) {
      const text = readFileSync(join(ROOT, page), 'utf8');
      for (const m of text.matchAll(/^```(?:sh|bash)\n([\s\S]*?)^```$/gm)) {
        for (const line of commands(m[1]!))
          expect(line, `${page}: an unbounded loop`).not.toMatch(/^(until|while)\b|;\s*(until|while)\b/);
      }
    }
  });

  it('every relative link in it and in the docs points at a file and a heading that exist', () => {
    const pages = [
      'README.md',
      'CHANGELOG.md',
      'CONTRIBUTING.md',
      ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f)),
    ];
    const prose = (file: string) => readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```$/gm, '');
    // GitHub's anchors: the heading in lower case, without punctuation, spaces as hyphens.
    const slug = (heading: string) =>
      heading
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-');
    const headings = (file: string) => new Set([...prose(file).matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1]!)));
    const broken: string[] = [];
    for (const page of pages.filter((p) => p.endsWith('.md'))) {
      for (const [, target] of prose(join(ROOT, page)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue; // https:, mailto:
        const [path, anchor] = target!.split('#');
        const file = path ? join(ROOT, dirname(page), path) : join(ROOT, page);
        if (!existsSync(file)) broken.push(`${page}: ${target} (no such file)`);
        else if (anchor && !headings(file).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the performance section is what bench/report.js prints from the recorded runs (bench/results/)', () => {
    const section = /^## Performance\n\n([\s\S]*?)\n## /m.exec(README)?.[1];
    const report = spawnSync(process.execPath, [join(ROOT, 'bench', 'report.js'), '--readme'], { encoding: 'utf8' });
    expect(report.status, report.stderr).toBe(0);
    expect(section).toBe(report.stdout);
  });

  it("docs/benchmarks.md's recorded run is what bench/report.js --benchmarks prints from the same runs", () => {
    const page = readFileSync(join(ROOT, 'docs', 'benchmarks.md'), 'utf8');
    const section =
      /^<!-- bench\/report\.js --benchmarks -->\n([\s\S]*?)^<!-- end of bench\/report\.js --benchmarks -->$/m.exec(
        page,
      )?.[1];
    const report = spawnSync(process.execPath, [join(ROOT, 'bench', 'report.js'), '--benchmarks'], {
      encoding: 'utf8',
    });
    expect(report.status, report.stderr).toBe(0);
    expect(section).toBe(report.stdout);
  });

  it('the install steps are the ones test/prebuild.test.ts performs on the real tarball', () => {
    const install = blocks.find((b) => b.marker === 'test/prebuild.test.ts');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
      scripts: Record<string, string>;
    };
    expect(commands(install!.text)).toEqual([
      'npm ci',
      'npm run prebuild',
      'npm pack',
      `cd ../my-app && npm install ../kms-hmac/kms-hmac-${pkg.version}.tgz`,
    ]);
    expect(CI).toMatch(/^npm ci$/m);
    expect(pkg.scripts.prebuild).toBe('node scripts/prebuild.js');
    const test = readFileSync(join(ROOT, 'test', 'prebuild.test.ts'), 'utf8');
    expect(test).toContain("'prebuild.js'"); // npm run prebuild
    expect(test).toContain('packPackage('); // npm pack
    expect(test).toContain('check-tarball.js'); // npm install <tarball> into an empty project
  });

  it('every shell command and JavaScript example runs as written', { timeout: 600_000 }, async () => {
    const { cwd, env } = project();
    const shell = session(cwd, env);
    try {
      let i = 0;
      for (const b of blocks) {
        if (b.lang === 'js' && b.marker === undefined) {
          const file = join(cwd, `readme-${++i}.mjs`);
          writeFileSync(file, b.text);
          await shell.run(`node ${file}`, 120_000);
        } else if (b.lang === 'sh' && (b.marker === undefined || b.marker === 'run')) {
          const run: string[] = [];
          for (const line of b.text.split('\n')) {
            const command = line.replace(/\s+#.*$/, '').trim();
            if (CI_COMMANDS.test(command))
              expect(CI, `README.md:${b.line}: .ci/run must run "${command}"`).toMatch(new RegExp(`^${command}$`, 'm'));
            else run.push(line);
          }
          await shell.run(run.join('\n'), 300_000);
        }
      }
    } finally {
      shell.stop();
    }
  });
});
