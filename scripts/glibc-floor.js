#!/usr/bin/env node
// The oldest Linux a glibc prebuild loads on: the newest symbol version it
// needs from glibc (GLIBC_) and from libstdc++ (GLIBCXX_, CXXABI_). A system
// older than either refuses to load the addon ("version `GLIBC_2.34' not
// found"), and the package falls back to WebAssembly there.
//
//   node scripts/glibc-floor.js [--max-glibc 2.28] [--max-glibcxx 3.4.25] [file.node ...]
//
// Without files: every prebuilds/linux-*/*.glibc.node. Prints each floor and
// the symbols above the limits; exits 1 when a --max-* limit is exceeded.
// The default limits (report only) are RHEL 8's: glibc 2.28 (the floor of
// Node's own Linux binaries, 22 to 26) and libstdc++ GLIBCXX_3.4.25 (GCC 8).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export const DEFAULT_LIMITS = { GLIBC: '2.28', GLIBCXX: '3.4.25' };

/** Compares dotted versions numerically ('2.9' < '2.28'). */
export function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The versioned symbols `file` imports, as { symbol, family, version }
 * (family: GLIBC, GLIBCXX, CXXABI, GCC; C++ names demangled). readelf reads ELF files of every
 * architecture, so this works on the cross-built arm64 addon too.
 */
export function importedVersions(file) {
  const table = execFileSync('readelf', ['--dyn-syms', '--wide', '--demangle', file], { encoding: 'utf8' });
  const imports = [];
  for (const match of table.matchAll(/\sUND\s+(.+?)@(GLIBC|GLIBCXX|CXXABI|GCC)_([\d.]+)/g)) {
    imports.push({ symbol: match[1], family: match[2], version: match[3] });
  }
  return imports;
}

/**
 * Per family (GLIBC, GLIBCXX): the newest version `file` needs and the
 * symbols that need more than `limits` allows, newest first.
 */
export function libcFloor(file, limits = DEFAULT_LIMITS) {
  const imports = importedVersions(file);
  const floor = {};
  for (const [family, limit] of Object.entries(limits)) {
    const mine = imports.filter((s) => s.family === family).sort((a, b) => compareVersions(b.version, a.version));
    floor[family] = {
      newest: mine[0]?.version ?? null,
      limit,
      above: mine.filter((s) => compareVersions(s.version, limit) > 0).map((s) => `${s.symbol}@${family}_${s.version}`),
    };
  }
  return floor;
}

/** One line per family, e.g. "GLIBC_2.34 (above 2.28: dlsym@GLIBC_2.34)". */
export function formatFloor(floor) {
  return Object.entries(floor).map(([family, { newest, limit, above }]) => {
    const head = newest ? `${family}_${newest}` : `no ${family} symbols`;
    return above.length ? `${head} (above ${limit}: ${above.join(', ')})` : `${head} (<= ${limit})`;
  });
}

/** The glibc prebuilds under `dir`/prebuilds. */
export function glibcPrebuilds(dir = root) {
  const prebuilds = join(dir, 'prebuilds');
  if (!existsSync(prebuilds)) return [];
  return readdirSync(prebuilds)
    .filter((platform) => platform.startsWith('linux-'))
    .flatMap((platform) =>
      readdirSync(join(prebuilds, platform))
        .filter((f) => f.endsWith('.glibc.node'))
        .map((f) => join(prebuilds, platform, f)),
    );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const limits = { ...DEFAULT_LIMITS };
  let enforce = false;
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--max-glibc' || args[i] === '--max-glibcxx') {
      limits[args[i] === '--max-glibc' ? 'GLIBC' : 'GLIBCXX'] = args[++i];
      enforce = true;
    } else files.push(args[i]);
  }
  if (files.length === 0) files.push(...glibcPrebuilds());
  if (files.length === 0) {
    console.error('glibc-floor: no prebuilds/linux-*/*.glibc.node (run `npm run prebuild`)');
    process.exit(1);
  }
  let exceeded = false;
  for (const file of files) {
    const floor = libcFloor(file, limits);
    console.log(relative(process.cwd(), file));
    for (const line of formatFloor(floor)) console.log(`  ${line}`);
    exceeded ||= Object.values(floor).some((f) => f.above.length > 0);
  }
  if (enforce && exceeded) process.exit(1);
}
