// Types for scripts/tarball.js (its callers: the tests, scripts/check-tarball.js, scripts/test-arm64.js).
import type { SpawnSyncReturns } from 'node:child_process';

/** npm and npx are .cmd scripts on Windows, which Node only runs through a shell. */
export const WINDOWS_SHELL: boolean;

/** Packs `packageDir` into `destination` (lifecycle scripts skipped); returns the tarball and the paths it holds. */
export function packPackage(
  packageDir: string,
  destination: string,
  env?: NodeJS.ProcessEnv,
): { tarball: string; files: string[] };

/** `env` with a PATH of only node, npm, npx and sh (symlinks in `dir`/bin): no compiler can run. */
export function compilerFreeEnv(dir: string, env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;

/** Installs `tarball` into a new project at `consumer`; returns the spawnSync result. */
export function installTarball(
  tarball: string,
  consumer: string,
  env: NodeJS.ProcessEnv,
  extraArgs?: string[],
): SpawnSyncReturns<string>;
