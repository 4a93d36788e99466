// Types for scripts/tarball.js (plain JavaScript, also run outside the TypeScript build).

/** True on Windows, where npm and npx (.cmd scripts) must be spawned through a shell. */
export const WINDOWS_SHELL: boolean;

/** Packs `packageDir` into `destination` (lifecycle scripts skipped); returns the tarball and the paths it holds. */
export function packPackage(packageDir: string, destination: string, env?: NodeJS.ProcessEnv): { tarball: string; files: string[] };

/** `env` with a PATH of only node, npm, npx and sh (symlinks under `dir`/bin): no compiler, make or python. */
export function compilerFreeEnv(dir: string, env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;

/** Installs `tarball` into a new project at `consumer`. */
export function installTarball(
  tarball: string,
  consumer: string,
  env: NodeJS.ProcessEnv,
  extraArgs?: string[],
): { status: number | null; stdout: string; stderr: string };
