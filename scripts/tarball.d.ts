// Types for the part of scripts/tarball.js the tests use.

/** Packs `packageDir` into `destination` (lifecycle scripts skipped); returns the tarball and the paths it holds. */
export function packPackage(
  packageDir: string,
  destination: string,
  env?: NodeJS.ProcessEnv,
): { tarball: string; files: string[] };
