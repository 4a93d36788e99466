// The package as users get it: `npm pack`, then `npm install <tarball>` into
// an empty project whose PATH holds no compiler, so an install that tried to
// build the addon would fail instead of quietly compiling it.
// Used by scripts/check-tarball.js, scripts/test-arm64.js and test/prebuild.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** npm and npx are .cmd scripts on Windows, which Node only runs through a shell. */
export const WINDOWS_SHELL = process.platform === 'win32';

/**
 * Packs `packageDir` into `destination` without running its lifecycle scripts
 * (dist/ and prebuilds/ are already built; `prepare` would rebuild dist/).
 * Returns the tarball's path and the paths it holds.
 */
export function packPackage(packageDir, destination, env = process.env) {
  const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', `--pack-destination=${destination}`], {
    cwd: packageDir,
    env,
    encoding: 'utf8',
    shell: WINDOWS_SHELL,
  });
  const [{ filename, files }] = JSON.parse(json);
  return { tarball: join(destination, filename), files: files.map((f) => f.path) };
}

/**
 * `env` with a PATH of only node, npm, npx and sh (symlinks in `dir`/bin):
 * no cc, g++, make or python, so node-gyp cannot build anything.
 */
export function compilerFreeEnv(dir, env = process.env) {
  // Windows: node-gyp finds Visual Studio through vswhere, not PATH; the
  // tests' check there is that no build/ directory appears.
  if (WINDOWS_SHELL) return { ...env };
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  // npm-cli.js and npx-cli.js sit together: beside the running npm, else in this Node's prefix.
  const running = env.npm_execpath ? dirname(env.npm_execpath) : undefined;
  const npmBin =
    running && existsSync(join(running, 'npm-cli.js'))
      ? running
      : join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin');
  const tools = {
    node: process.execPath,
    npm: join(npmBin, 'npm-cli.js'),
    npx: join(npmBin, 'npx-cli.js'),
    sh: '/bin/sh',
  };
  for (const [name, target] of Object.entries(tools)) symlinkSync(target, join(bin, name));
  const clean = { ...env, PATH: bin };
  // Nor may compiler settings inherited from the calling shell or npm.
  for (const name of ['CC', 'CXX', 'LINK', 'npm_config_node_gyp']) delete clean[name];
  return clean;
}

/**
 * Installs `tarball` into a new project at `consumer`; returns the spawnSync result (status, stdout, stderr).
 *
 * better-sqlite3 (the file key store's database, a dependency) downloads its prebuilt binary from GitHub
 * at install, which this network cannot reach, and would compile SQLite instead. So the consumer
 * declines its install script (npm's `allowScripts`) and gets the binary already built in this
 * checkout, as the download would have given it. kms-hmac's own install script runs: what is checked
 * is the package's own addon, as a user with a normal network gets it.
 */
export function installTarball(tarball, consumer, env, extraArgs = []) {
  mkdirSync(consumer, { recursive: true });
  const allowScripts = { 'kms-hmac': true, 'better-sqlite3': false };
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', allowScripts }),
  );
  const args = [
    'install',
    tarball,
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    '--foreground-scripts',
    ...extraArgs,
  ];
  const result = spawnSync('npm', args, { cwd: consumer, env, encoding: 'utf8', shell: WINDOWS_SHELL });
  const sqliteBuild = join('node_modules', 'better-sqlite3', 'build', 'Release');
  if (result.status === 0 && existsSync(join(ROOT, sqliteBuild)))
    cpSync(join(ROOT, sqliteBuild), join(consumer, sqliteBuild), { recursive: true });
  return result;
}
