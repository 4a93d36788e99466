// The package as users get it: `npm pack`, then `npm install <tarball>` into
// an empty project whose PATH holds no compiler, so an install that tried to
// build the addon would fail instead of quietly compiling it.
// Used by scripts/check-tarball.js, scripts/test-arm64.js and test/prebuild.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

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

/** The first `name` on env's PATH. */
function onPath(name, env) {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} is not on PATH`);
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
  // npm-cli.js and npx-cli.js sit together: beside the running npm, else beside the npm on PATH
  // (a Node from scripts/node-dist.js has none of its own; the system's npm runs on it).
  const running = env.npm_execpath ? dirname(env.npm_execpath) : undefined;
  const npmBin =
    running && existsSync(join(running, 'npm-cli.js')) ? running : dirname(realpathSync(onPath('npm', env)));
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
 * Installs `tarball` into a new project at `consumer` as a user would:
 * `npm install` with the package's own install script allowed (npm's
 * `allowScripts`), nothing copied in by hand. Returns the spawnSync result
 * (status, stdout, stderr).
 */
export function installTarball(tarball, consumer, env, extraArgs = []) {
  mkdirSync(consumer, { recursive: true });
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', allowScripts: { 'kms-hmac': true } }),
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
  return spawnSync('npm', args, { cwd: consumer, env, encoding: 'utf8', shell: WINDOWS_SHELL });
}
