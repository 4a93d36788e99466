#!/usr/bin/env node
// The kms-hmac command: all of it lives in dist/cli/main.js (built from src/cli/main.ts).
import { main } from '../dist/cli/main.js';

await main();
