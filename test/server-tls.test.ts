/**
 * HTTPS: `startServer({ tls })` / `serve --tls-cert --tls-key`, driven by the
 * three clients people use (the JS SDK with an https agent trusting the test
 * CA, the AWS CLI with --ca-bundle, boto3 with verify=), the TLS 1.2 floor,
 * SIGHUP reloads (a bad pair keeps the old one), and the rule that a
 * non-loopback bind needs TLS or --insecure-http. The certificates are made
 * at run time by openssl (scripts/certificates.js): no private key is committed.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { CreateKeyCommand, GenerateMacCommand, KMSClient, VerifyMacCommand } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { makeCertificates } from '../scripts/certificates.js';
import { startServer, TlsConfigError, type StartedServer } from '../src/server/index.js';
import { CRED, signedCall, startServe, stopServe } from './server-helpers.js';

const AWS = '/usr/bin/aws';
const PYTHON = '/usr/bin/python3';
const awsPresent = existsSync(AWS);
const boto3Present = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0;
if (!boto3Present)
  console.warn(
    `\n*** SKIPPING the boto3 TLS test: ${PYTHON} cannot import boto3 (apt-get install -y python3-boto3; .ci/run installs it) ***\n`,
  );

describe.runIf(!boto3Present && process.env.KMS_HMAC_REQUIRE_BOTO3 === '1')('boto3 required', () => {
  it(`${PYTHON} imports boto3`, () => expect(boto3Present, 'apt-get install -y python3-boto3').toBe(true));
});

let dir: string;
let certs: { caFile: string; certFile: string; keyFile: string };
let server: StartedServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-tls-'));
  certs = makeCertificates(dir);
  server = await startServer({ port: 0, credentials: [CRED], log: false, tls: certs });
}, 60_000);
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The certificate a new TLS connection is served, and the protocol agreed. */
function handshake(port: number, o: tls.ConnectionOptions = {}): Promise<{ fingerprint: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: [readCa()], servername: 'localhost', ...o });
    s.once('secureConnect', () => {
      const r = { fingerprint: s.getPeerCertificate().fingerprint256, protocol: s.getProtocol() ?? '' };
      s.end();
      resolve(r);
    });
    s.once('error', reject);
  });
}

function readCa(): Buffer {
  return readFileSync(certs.caFile);
}

describe('HTTPS with the clients', () => {
  it('the JS SDK, through an https agent that trusts the test CA: keep-alive, one TLS session for many requests', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const agent = new https.Agent({ keepAlive: true, ca: readCa(), maxSockets: 1 });
    let sockets = 0;
    const origCreate = agent.createConnection.bind(agent);
    agent.createConnection = ((...args: Parameters<typeof origCreate>) => {
      sockets++;
      return origCreate(...args);
    }) as typeof agent.createConnection;
    const kms = new KMSClient({
      endpoint: server.url,
      region: 'us-east-1',
      credentials: CRED,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
    });
    try {
      const { KeyMetadata } = await kms.send(
        new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }),
      );
      const Message = Buffer.from('over TLS');
      for (let i = 0; i < 20; i++) {
        const { Mac } = await kms.send(
          new GenerateMacCommand({ KeyId: KeyMetadata!.KeyId!, Message, MacAlgorithm: 'HMAC_SHA_256' }),
        );
        const v = await kms.send(
          new VerifyMacCommand({ KeyId: KeyMetadata!.KeyId!, Message, Mac, MacAlgorithm: 'HMAC_SHA_256' }),
        );
        expect(v.MacValid).toBe(true);
      }
      expect(sockets).toBe(1); // HTTP/1.1 keep-alive over one TLS connection
    } finally {
      kms.destroy();
      agent.destroy();
    }
  });

  it('an SDK that does not trust the CA is refused by its own verification', async () => {
    const kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
    try {
      await expect(
        kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })),
      ).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    } finally {
      kms.destroy();
    }
  });

  it.skipIf(!awsPresent)(
    'the AWS CLI with --endpoint-url https://… and --ca-bundle',
    async () => {
      const env = {
        PATH: process.env.PATH,
        HOME: dir,
        AWS_ACCESS_KEY_ID: CRED.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CRED.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_PAGER: '',
        AWS_CONFIG_FILE: '/dev/null',
        AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
        AWS_MAX_ATTEMPTS: '1',
      };
      const aws = (...args: string[]) =>
        new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
          execFile(
            AWS,
            ['kms', ...args, '--endpoint-url', server.url, '--ca-bundle', certs.caFile, '--output', 'json'],
            { env, timeout: 60_000 },
            (err, stdout, stderr) =>
              resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
          ),
        );
      const created = await aws('create-key', '--key-spec', 'HMAC_256', '--key-usage', 'GENERATE_VERIFY_MAC');
      expect(created.code, created.stderr).toBe(0);
      const keyId = JSON.parse(created.stdout).KeyMetadata.KeyId as string;
      const gen = await aws('generate-mac', '--key-id', keyId, '--message', 'aGk=', '--mac-algorithm', 'HMAC_SHA_256');
      expect(gen.code, gen.stderr).toBe(0);
      const mac = JSON.parse(gen.stdout).Mac as string;
      const ver = await aws(
        'verify-mac',
        '--key-id',
        keyId,
        '--message',
        'aGk=',
        '--mac',
        mac,
        '--mac-algorithm',
        'HMAC_SHA_256',
      );
      expect(ver.code, ver.stderr).toBe(0);
      expect(JSON.parse(ver.stdout).MacValid).toBe(true);
      // Without the CA bundle the CLI's own verification refuses the certificate.
      const untrusted = await new Promise<{ code: number; stderr: string }>((resolve) =>
        execFile(AWS, ['kms', 'list-keys', '--endpoint-url', server.url], { env, timeout: 60_000 }, (err, _o, stderr) =>
          resolve({ code: err ? 1 : 0, stderr }),
        ),
      );
      expect(untrusted.code).not.toBe(0);
      expect(untrusted.stderr).toMatch(/SSL|certificate/i);
    },
    120_000,
  );

  it.skipIf(!boto3Present)(
    "boto3 with verify= the CA's path",
    async () => {
      const script = `
import base64, boto3, json, sys
kms = boto3.client('kms', endpoint_url=sys.argv[1], verify=sys.argv[2], region_name='us-east-1',
                   aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4])
key = kms.create_key(KeySpec='HMAC_256', KeyUsage='GENERATE_VERIFY_MAC')['KeyMetadata']['KeyId']
mac = kms.generate_mac(KeyId=key, Message=b'from boto3', MacAlgorithm='HMAC_SHA_256')['Mac']
ok = kms.verify_mac(KeyId=key, Message=b'from boto3', Mac=mac, MacAlgorithm='HMAC_SHA_256')['MacValid']
print(json.dumps({'key': key, 'mac': base64.b64encode(mac).decode(), 'valid': ok}))
`;
      // Asynchronously: the server answers from this process's event loop.
      const r = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
        execFile(
          PYTHON,
          ['-c', script, server.url, certs.caFile, CRED.accessKeyId, CRED.secretAccessKey],
          {
            timeout: 60_000,
            env: {
              PATH: process.env.PATH,
              HOME: dir,
              AWS_CONFIG_FILE: '/dev/null',
              AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
            },
          },
          (err, stdout, stderr) => resolve({ status: err ? 1 : 0, stdout, stderr }),
        ),
      );
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim());
      expect(out.valid).toBe(true);
      expect(Buffer.from(out.mac, 'base64')).toHaveLength(32);
    },
    60_000,
  );
});

describe('TLS rules', () => {
  it('TLS 1.2 is the minimum: a TLS 1.1 client gets no connection; 1.2 and 1.3 do', async () => {
    await expect(
      handshake(server.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    ).rejects.toThrow();
    expect((await handshake(server.port, { maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
    expect((await handshake(server.port)).protocol).toBe('TLSv1.3');
  });

  it('plain HTTP to the HTTPS port is not served', async () => {
    await expect(signedCall(server.url.replace('https:', 'http:'), 'ListKeys', {})).rejects.toThrow();
  });

  it('reloadTls(): a new pair serves new connections; a bad pair is refused, saying why, and the old one stays', async () => {
    const d = join(dir, 'reload');
    mkdirSync(d);
    const first = makeCertificates(d, { certFile: join(d, 'a.crt'), keyFile: join(d, 'a.key') });
    const live = { certFile: join(d, 'live.crt'), keyFile: join(d, 'live.key') };
    copyFileSync(first.certFile, live.certFile);
    copyFileSync(first.keyFile, live.keyFile);
    const s = await startServer({ port: 0, credentials: [CRED], log: false, tls: live });
    try {
      const ca = readFileSync(first.caFile);
      const before = await handshake(s.port, { ca: [ca] });
      // A key that is not the certificate's: refused, the old pair still served.
      const other = makeCertificates(d, { certFile: join(d, 'b.crt'), keyFile: join(d, 'b.key') });
      copyFileSync(other.keyFile, live.keyFile);
      const err = await s.reloadTls!().catch((e: Error) => e);
      expect(err).toBeInstanceOf(TlsConfigError);
      expect(String(err)).toMatch(/live\.crt \/ .*live\.key does not load: .*key values mismatch/);
      expect((await handshake(s.port, { ca: [ca] })).fingerprint).toBe(before.fingerprint);
      writeFileSync(live.keyFile, 'not a key');
      await expect(s.reloadTls!()).rejects.toThrow(/does not load/);
      // The new pair (from the second CA): new connections get it.
      copyFileSync(other.certFile, live.certFile);
      copyFileSync(other.keyFile, live.keyFile);
      const info = await s.reloadTls!();
      expect(info.subject).toBe('CN=localhost');
      const after = await handshake(s.port, { ca: [readFileSync(other.caFile)] });
      expect(after.fingerprint).not.toBe(before.fingerprint);
      expect(after.fingerprint).toBe(info.fingerprint256);
    } finally {
      await s.close();
    }
  });

  it('a non-loopback bind needs TLS or insecureHttp; insecureHttp warns that traffic is in the clear', async () => {
    await expect(startServer({ host: '0.0.0.0', port: 0, credentials: [CRED], log: false })).rejects.toThrow(
      /0\.0\.0\.0, which is not loopback, without TLS .*--tls-cert.*--insecure-http/,
    );
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const plain = await startServer({
        host: '0.0.0.0',
        port: 0,
        credentials: [CRED],
        log: false,
        insecureHttp: true,
      });
      await plain.close();
      expect(warn).toHaveBeenCalledWith(
        expect.stringMatching(/plain HTTP on 0\.0\.0\.0.*in the clear/),
        expect.objectContaining({ code: 'KMS_HMAC_INSECURE_HTTP' }),
      );
      warn.mockClear();
      const secure = await startServer({ host: '0.0.0.0', port: 0, credentials: [CRED], log: false, tls: certs });
      await secure.close();
      expect(warn).not.toHaveBeenCalledWith(
        expect.anything(),
        expect.objectContaining({ code: 'KMS_HMAC_INSECURE_HTTP' }),
      );
    } finally {
      warn.mockRestore();
    }
    await expect(
      startServer({
        port: 0,
        credentials: [CRED],
        log: false,
        tls: { certFile: certs.certFile, keyFile: join(dir, 'missing.key') },
      }),
    ).rejects.toThrow(/cannot read the TLS private key .*missing\.key/);
  });
});

describe('serve --tls-cert --tls-key', () => {
  it('serves HTTPS, reloads on SIGHUP (a bad pair is logged and the old one kept), refuses --host 0.0.0.0 without TLS', async () => {
    const d = join(dir, 'cli');
    mkdirSync(d);
    const pair = { certFile: join(d, 'live.crt'), keyFile: join(d, 'live.key') };
    const made = makeCertificates(d, pair);
    const child = await startServe(['--tls-cert', pair.certFile, '--tls-key', pair.keyFile, '--auth', 'any'], d);
    try {
      expect(child.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
      const port = Number(new URL(child.url).port);
      const ca = readFileSync(made.caFile);
      const before = await handshake(port, { ca: [ca] });
      writeFileSync(pair.keyFile, 'garbage');
      child.proc.kill('SIGHUP');
      await vi.waitFor(
        () => expect(child.stderr()).toMatch(/SIGHUP: the TLS pair .* does not load: .*the certificate in use is kept/),
        {
          timeout: 10_000,
        },
      );
      expect((await handshake(port, { ca: [ca] })).fingerprint).toBe(before.fingerprint);
      const fresh = makeCertificates(d, pair);
      child.proc.kill('SIGHUP');
      await vi.waitFor(
        () => expect(child.stderr()).toMatch(/SIGHUP: TLS certificate reloaded \(CN=localhost, valid to /),
        {
          timeout: 10_000,
        },
      );
      const after = await handshake(port, { ca: [readFileSync(fresh.caFile)] });
      expect(after.fingerprint).not.toBe(before.fingerprint);
    } finally {
      expect(await stopServe(child)).toEqual({ code: 0, signal: null });
    }
    const refused = spawnSync(
      process.execPath,
      [child.proc.spawnargs[1]!, '--host', '0.0.0.0', '--port', '0', '--quiet'],
      {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH,
          HOME: d,
          KMS_HMAC_ACCESS_KEY_ID: CRED.accessKeyId,
          KMS_HMAC_SECRET_ACCESS_KEY: CRED.secretAccessKey,
        },
        timeout: 30_000,
      },
    );
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/without TLS .*--insecure-http/);
  }, 120_000);
});
