import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/postgres-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Worker threads started from src/ (the WASM backend's async workers) are
    // real module files: this lets Node load their TypeScript source.
    execArgv: ['--import', fileURLToPath(new URL('./test/support/ts-hooks.js', import.meta.url))],
  },
});
