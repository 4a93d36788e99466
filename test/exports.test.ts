/**
 * The package root and its subpaths export what the README documents (a name documented but
 * not exported is a broken promise; see README "API").
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as pkg from '../src/index.js';
import * as pino from '../src/logs/pino.js';
import * as winston from '../src/logs/winston.js';
import * as server from '../src/server/index.js';

describe('the package root', () => {
  it.each([
    'createMacKey',
    'MacKey',
    'packMessages',
    'backendInfo',
    'getBackend',
    'loadBackend',
    'loadWasmBackend',
    'wasmSimdSupported',
    'KmsHmacClient',
    'createFastPathClient',
    'FileKeyStore',
    'MemoryKeyStore',
    'PostgresKeyStore',
    'signLog',
    'verifyLog',
    'createSignStream',
    'createVerifyStream',
    'NotFoundException',
    'KMSInvalidMacException',
  ])('exports %s', (name) => {
    expect(typeof (pkg as Record<string, unknown>)[name]).toBe('function');
  });

  it('loadWasmBackend gives a working WebAssembly backend with its own worker count', async () => {
    const backend = pkg.loadWasmBackend('scalar', { threads: 1 });
    const key = pkg.createMacKey('HMAC_SHA_256', new TextEncoder().encode('Jefe'), { backend });
    expect(Buffer.from(key.mac(new TextEncoder().encode('what do ya want for nothing?'))).toString('hex')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    key.destroy();
  });

  it("the README's API section names every export, and nothing else (one line per function, class or group)", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const api = /^## API\n([\s\S]*?)\n## /m.exec(readme)![1]!;
    const [root, rest] = api.split('`kms-hmac/server`:');
    const [sub, afterServer] = rest!.split('`kms-hmac/pino` (');
    const [pinoPart, winstonPart] = afterServer!.split('`kms-hmac/winston` (');
    // The names a bullet documents: the backticked identifiers before its first ': '.
    const names = (text: string) =>
      [...text.matchAll(/^- (.*?): /gm)].flatMap(([, head]) =>
        [...head!.matchAll(/`([A-Za-z_$][\w$]*)/g)].map((m) => m[1]!),
      );
    expect(names(root!).sort()).toEqual(Object.keys(pkg).sort());
    expect(names(sub!).sort()).toEqual(Object.keys(server).sort());
    expect(names(pinoPart!).sort()).toEqual(Object.keys(pino).sort());
    expect(names(winstonPart!).sort()).toEqual(Object.keys(winston).sort());
  });
});
