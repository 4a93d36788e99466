#!/usr/bin/env node
// The kms-hmac command: all of it lives in dist/cli/main.js (built from src/cli/main.ts).
import { main } from '../dist/cli/main.js';

// A reader that stops early (`kms-hmac verify --help | head`) closes the pipe:
// end quietly, as Unix tools do, instead of dying on an unhandled EPIPE.
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
});

await main();
