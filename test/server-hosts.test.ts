/**
 * Who the endpoint answers (issue 26):
 * - DNS rebinding: a request whose Host is neither loopback nor allowed gets
 *   403 before anything else, from `listen`, `startServer` and `kms-hmac
 *   serve` alike (`--allowed-host` adds names);
 * - emulator mode (`--auth any`) binds to loopback only and never serves the
 *   user's own key store (memory unless `--keystore`); `startServer` warns
 *   as the CLI does;
 * - secrets shorter than 16 characters are refused (except under `--auth any`);
 * - `--secret-access-key` warns that argv is visible.
 */
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KMSClient, CreateKeyCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { FileKeyStore } from '../src/keystore/index.js';
import { isAllowedHost, isLoopbackHost, startServer } from '../src/server/index.js';
import { checkAllowedHosts } from '../src/server/hosts.js';
import { listen, type KmsApi } from '../src/server/server.js';
import {
  CRED,
  amzNow,
  builtServeEntry,
  rawRequest,
  signFast,
  signedCall,
  startServe,
  stopServe,
} from './server-helpers.js';
import { track } from './support/process-group.js';

let dir = '';
beforeAll(() => {
  builtServeEntry();
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-hosts-'));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const BODY = JSON.stringify({ KeyId: 'alias/x', Message: 'aGVsbG8=', MacAlgorithm: 'HMAC_SHA_256' });

function recordingClient() {
  const calls: string[] = [];
  const client: KmsApi = {
    generateMacSync() {
      calls.push('GenerateMac');
      return {
        KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
        Mac: new Uint8Array([1]),
        MacAlgorithm: 'HMAC_SHA_256',
      };
    },
  };
  return { client, calls };
}

/** Sends `head` and never a body byte; resolves with everything answered before the server closed the connection. */
function headersOnly(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let reply = '';
    s.on('data', (d) => (reply += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(reply));
    s.write(head);
  });
}

describe('isAllowedHost', () => {
  it('loopback names and addresses with any port; allowed hosts; nothing else', () => {
    for (const h of [
      'localhost',
      'LOCALHOST:4599',
      '127.0.0.1',
      '127.0.0.1:4599',
      '127.255.3.4:1',
      '[::1]',
      '[::1]:4599',
      '[0:0:0:0:0:0:0:1]:80',
    ])
      expect(isAllowedHost(h, []), h).toBe(true);
    for (const h of [
      'attacker.example',
      'attacker.example:4599',
      '127.0.0.1.attacker.example',
      'localhost.attacker.example',
      '128.0.0.1',
      '0.0.0.0:4599',
      '127.1',
      '[::2]',
      '::1',
      'localhost:99999',
      'a b',
      'user@localhost',
      'localhost:4599,attacker.example',
      '',
    ])
      expect(isAllowedHost(h, []), h).toBe(false);
    expect(isAllowedHost(undefined, [])).toBe(false);
    const allowed = checkAllowedHosts(['KMS.internal', '10.0.0.5', '[fd00::1]']);
    expect(allowed).toEqual(['kms.internal', '10.0.0.5', 'fd00::1']);
    for (const h of ['kms.internal', 'kms.internal:443', '10.0.0.5:4599', '[fd00::1]:4599'])
      expect(isAllowedHost(h, allowed), h).toBe(true);
    expect(isAllowedHost('other.internal', allowed)).toBe(false);
    for (const bad of ['kms.internal:443', 'http://kms.internal', 'a b', ''])
      expect(() => checkAllowedHosts([bad]), bad).toThrow(TypeError);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
    expect(isLoopbackHost('::1')).toBe(true);
  });
});

describe('a Host that is neither loopback nor allowed', () => {
  it('is answered 403 before anything else is looked at (no credentials needed, no body read), connection closed', async () => {
    const { client, calls } = recordingClient();
    const s = await listen({ client, credentials: [CRED], port: 0, log: null });
    try {
      // Signed correctly for the attacker's host name, method and path wrong, a 100 MB body never sent.
      const headers = signFast('attacker.example:4599', 'TrentService.GenerateMac', Buffer.from(BODY), amzNow());
      const head = `GET /x HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\ncontent-length: 100000000\r\n\r\n`;
      const reply = await headersOnly(s.port, head);
      expect(reply).toMatch(/^HTTP\/1\.1 403 /);
      expect(reply).toMatch(/x-amzn-ErrorType: AccessDeniedException/i);
      expect(reply.toLowerCase()).toContain('connection: close');
      expect(reply).toContain("Host 'attacker.example:4599' is not allowed");
      // A missing Host header.
      expect(await headersOnly(s.port, 'POST / HTTP/1.0\r\ncontent-length: 0\r\n\r\n')).toMatch(
        /^HTTP\/1\.1 403 [\s\S]*The request has no Host header/,
      );
      expect(calls).toEqual([]);
      // The same request addressed to loopback is served.
      const ok = await signedCall(s.url, 'GenerateMac', BODY);
      expect(ok.status, ok.body).toBe(200);
      expect(calls).toEqual(['GenerateMac']);
    } finally {
      await s.close();
    }
  });

  it('startServer({ allowedHosts }) answers the names given, with any port, and still refuses others', async () => {
    const s = await startServer({ port: 0, credentials: [CRED], log: false, allowedHosts: ['kms.internal'] });
    try {
      for (const [host, status] of [
        ['kms.internal:4599', 200],
        ['KMS.INTERNAL', 200],
        [`localhost:${s.port}`, 200],
        ['attacker.example', 403],
      ] as const) {
        const body = Buffer.from('{}');
        const headers = signFast(host, 'TrentService.ListKeys', body, amzNow());
        const r = await rawRequest(s.url, { headers, body });
        expect(r.status, `${host}: ${r.body}`).toBe(status);
      }
      await expect(
        startServer({ port: 0, credentials: [CRED], log: false, allowedHosts: ['kms.internal:443'] }),
      ).rejects.toThrow(/without a port/);
    } finally {
      await s.close();
    }
  });

  it('DNS rebinding against `serve --auth any`: a page cannot create keys through its own name', async () => {
    const child = await startServe(['--auth', 'any'], dir, {
      KMS_HMAC_ACCESS_KEY_ID: '',
      KMS_HMAC_SECRET_ACCESS_KEY: '',
    });
    try {
      const port = new URL(child.url).port;
      // What a browser sends after attacker.example was rebound to 127.0.0.1: its own name in Host.
      const body = Buffer.from(JSON.stringify({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
      const headers = signFast(`attacker.example:${port}`, 'TrentService.CreateKey', body, amzNow());
      const r = await rawRequest(child.url, { headers, body });
      expect(r.status).toBe(403);
      expect(r.json?.__type).toBe('AccessDeniedException');
      const kms = new KMSClient({ endpoint: child.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
      try {
        expect((await kms.send(new ListKeysCommand({}))).Keys).toEqual([]);
      } finally {
        kms.destroy();
      }
    } finally {
      await stopServe(child);
    }
  });

  it('`serve --allowed-host` (repeatable) reaches the listener', async () => {
    const child = await startServe(
      ['--allowed-host', 'kms.internal', '--allowed-host', '10.1.2.3', '--keystore', join(dir, 'allowed.db')],
      dir,
    );
    try {
      const body = Buffer.from('{}');
      for (const [host, status] of [
        ['kms.internal:4599', 200],
        ['10.1.2.3', 200],
        ['kms.other', 403],
      ] as const) {
        const r = await rawRequest(child.url, {
          headers: signFast(host, 'TrentService.ListKeys', body, amzNow()),
          body,
        });
        expect(r.status, host).toBe(status);
      }
    } finally {
      await stopServe(child);
    }
  });
});

describe('emulator mode (--auth any)', () => {
  it('never serves the default key store or $KMS_HMAC_KEYSTORE: keys stay in memory unless --keystore', async () => {
    const home = join(dir, 'home-any');
    mkdirSync(home, { recursive: true });
    const envStore = join(dir, 'env-store.db');
    const child = await startServe(['--auth', 'any'], home, {
      KMS_HMAC_ACCESS_KEY_ID: '',
      KMS_HMAC_SECRET_ACCESS_KEY: '',
      KMS_HMAC_KEYSTORE: envStore,
      KMS_HMAC_PASSPHRASE: '',
    });
    try {
      const kms = new KMSClient({ endpoint: child.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
      try {
        await kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
      } finally {
        kms.destroy();
      }
    } finally {
      expect((await stopServe(child)).code).toBe(0);
    }
    expect(existsSync(envStore)).toBe(false);
    expect(existsSync(join(home, '.local', 'share', 'kms-hmac', 'keystore.db'))).toBe(false);
    expect(child.stderr()).toContain('--auth any does not use $KMS_HMAC_KEYSTORE');
    expect(child.stderr()).toContain('kms-hmac: warning: --auth any: SIGNATURES ARE NOT VERIFIED');

    // An explicit --keystore is used.
    const chosen = join(dir, 'chosen.db');
    const explicit = await startServe(['--auth', 'any', '--keystore', chosen], home, {
      KMS_HMAC_ACCESS_KEY_ID: '',
      KMS_HMAC_SECRET_ACCESS_KEY: '',
      KMS_HMAC_PASSPHRASE: '',
    });
    try {
      expect(
        (await signedCall(explicit.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).status,
      ).toBe(200);
    } finally {
      await stopServe(explicit);
    }
    const store = await FileKeyStore.open(chosen, { passphrase: null });
    try {
      expect(store.listKeys()).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('refuses to bind beyond loopback (CLI exit 2; startServer rejects)', async () => {
    const proc = track(
      spawn(process.execPath, [builtServeEntry(), '--auth', 'any', '--host', '0.0.0.0', '--port', '0'], {
        env: { PATH: process.env.PATH, HOME: dir },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let err = '';
    proc.stderr.on('data', (d) => (err += d));
    expect(await new Promise((r) => proc.on('exit', r))).toBe(2);
    expect(err).toMatch(/serves loopback only, and 0\.0\.0\.0 is not loopback/);
    await expect(startServer({ auth: 'any', host: '0.0.0.0', port: 0, log: false })).rejects.toThrow(/loopback only/);
  });

  it('startServer warns as the CLI does: emulator mode, and a listener beyond loopback', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const any = await startServer({ auth: 'any', port: 0, log: false });
    await any.close();
    expect(warn).toHaveBeenCalledWith(
      expect.stringContaining('SIGNATURES ARE NOT VERIFIED'),
      expect.objectContaining({ code: 'KMS_HMAC_AUTH_ANY' }),
    );
    warn.mockClear();
    // Plain HTTP beyond loopback needs insecureHttp (test/server-tls.test.ts checks that rule and its own warning).
    const wide = await startServer({ host: '0.0.0.0', port: 0, credentials: [CRED], log: false, insecureHttp: true });
    await wide.close();
    expect(warn).toHaveBeenCalledWith(
      expect.stringMatching(/binding to 0\.0\.0\.0, which is not loopback.*--allowed-host/),
      expect.objectContaining({ code: 'KMS_HMAC_NOT_LOOPBACK' }),
    );
    warn.mockClear();
    const quiet = await startServer({ port: 0, credentials: [CRED], log: false });
    await quiet.close();
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('secrets', () => {
  it('a secret shorter than 16 characters is refused, naming its access key but not the secret; --auth any needs none', async () => {
    const short = { accessKeyId: 'AKIDSHORT', secretAccessKey: 'local-secret' };
    const err = await startServer({ port: 0, credentials: [short], log: false }).catch((e: Error) => e);
    expect(String(err)).toMatch(/the secret access key of AKIDSHORT has 12 characters; at least 16 are required/);
    expect(String(err)).not.toContain('local-secret');
    const proc = track(
      spawn(process.execPath, [builtServeEntry(), '--port', '0', '--keystore', join(dir, 'short.db')], {
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          KMS_HMAC_ACCESS_KEY_ID: 'AKIDSHORT',
          KMS_HMAC_SECRET_ACCESS_KEY: 'local-secret',
        },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    expect(await new Promise((r) => proc.on('exit', r))).toBe(2);
    expect(stderr).toMatch(/at least 16 are required/);
    const any = await startServer({ auth: 'any', port: 0, credentials: [short], log: false });
    await any.close();
  });

  it('--secret-access-key still works, with a warning that argv is visible to other users', async () => {
    const child = await startServe(
      [
        '--access-key-id',
        CRED.accessKeyId,
        '--secret-access-key',
        CRED.secretAccessKey,
        '--keystore',
        join(dir, 'argv.db'),
      ],
      dir,
      { KMS_HMAC_ACCESS_KEY_ID: '', KMS_HMAC_SECRET_ACCESS_KEY: '' },
    );
    try {
      expect((await signedCall(child.url, 'ListKeys', {})).status).toBe(200);
    } finally {
      await stopServe(child);
    }
    expect(child.stderr()).toMatch(
      /kms-hmac: warning: --secret-access-key puts the secret in argv.*next major version/,
    );
  });
});
