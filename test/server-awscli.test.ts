/**
 * The endpoint driven by the real AWS CLI v2 (`/usr/bin/aws`, Debian's
 * awscli 2.9.x; `.ci/run` installs it). Blobs go through fileb://, as a user
 * would pass them. Skipped, loudly, only when the CLI is absent locally.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../src/server/index.js';
import { CRED } from './server-helpers.js';
import { killGroup, track } from './support/process-group.js';

const AWS = '/usr/bin/aws';
const present = existsSync(AWS);
if (!present) {
  console.warn(
    `\n*** SKIPPING the AWS CLI v2 tests: ${AWS} is missing (apt-get install -y awscli; .ci/run installs it) ***\n`,
  );
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

// CI can insist: KMS_HMAC_REQUIRE_AWSCLI=1 turns a missing CLI into a failure instead of a skip.
describe.runIf(!present && process.env.KMS_HMAC_REQUIRE_AWSCLI === '1')('AWS CLI v2 required', () => {
  it(`${AWS} is installed`, () => {
    expect(existsSync(AWS), `${AWS} is missing (apt-get install -y awscli)`).toBe(true);
  });
});

describe.skipIf(!present)('AWS CLI v2 against kms-hmac serve', () => {
  let server: StartedServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  function aws(...args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = track(
        spawn(AWS, ['kms', ...args, '--endpoint-url', server.url, '--output', 'json'], {
          env,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => killGroup(child), 60_000);
      child.on('error', () => resolve({ code: -1, stdout, stderr }));
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  beforeAll(async () => {
    server = await startServer({ port: 0, credentials: [CRED], log: false });
    dir = mkdtempSync(join(tmpdir(), 'kms-hmac-awscli-'));
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_ACCESS_KEY_ID: CRED.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CRED.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_MAX_ATTEMPTS: '1',
    };
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('create-key, generate-mac and verify-mac with fileb:// blobs, and errors', async () => {
    const created = await aws(
      'create-key',
      '--key-spec',
      'HMAC_256',
      '--key-usage',
      'GENERATE_VERIFY_MAC',
      '--description',
      'from the AWS CLI',
    );
    expect(created.code, created.stderr).toBe(0);
    const md = JSON.parse(created.stdout).KeyMetadata;
    expect(md.KeySpec).toBe('HMAC_256');
    expect(md.MacAlgorithms).toEqual(['HMAC_SHA_256']);

    const msgFile = join(dir, 'message.bin');
    const message = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x41]);
    writeFileSync(msgFile, message);
    const gen = await aws(
      'generate-mac',
      '--key-id',
      md.KeyId,
      '--message',
      `fileb://${msgFile}`,
      '--mac-algorithm',
      'HMAC_SHA_256',
    );
    expect(gen.code, gen.stderr).toBe(0);
    const out = JSON.parse(gen.stdout);
    expect(out.KeyId).toBe(md.Arn);
    const mac = Buffer.from(out.Mac, 'base64');
    expect(mac.length).toBe(32);

    const macFile = join(dir, 'mac.bin');
    writeFileSync(macFile, mac);
    const ver = await aws(
      'verify-mac',
      '--key-id',
      md.Arn,
      '--message',
      `fileb://${msgFile}`,
      '--mac',
      `fileb://${macFile}`,
      '--mac-algorithm',
      'HMAC_SHA_256',
    );
    expect(ver.code, ver.stderr).toBe(0);
    expect(JSON.parse(ver.stdout)).toEqual({ KeyId: md.Arn, MacValid: true, MacAlgorithm: 'HMAC_SHA_256' });

    // Tampered MAC → KMSInvalidMacException (CLI exit status 254).
    mac[5]! ^= 0x80;
    writeFileSync(macFile, mac);
    const bad = await aws(
      'verify-mac',
      '--key-id',
      md.KeyId,
      '--message',
      `fileb://${msgFile}`,
      '--mac',
      `fileb://${macFile}`,
      '--mac-algorithm',
      'HMAC_SHA_256',
    );
    expect(bad.code).toBe(254);
    expect(bad.stderr).toContain('(KMSInvalidMacException)');

    // Unknown alias → NotFoundException with AWS's text.
    const nf = await aws(
      'generate-mac',
      '--key-id',
      'alias/missing',
      '--message',
      `fileb://${msgFile}`,
      '--mac-algorithm',
      'HMAC_SHA_256',
    );
    expect(nf.code).toBe(254);
    expect(nf.stderr).toContain('(NotFoundException)');
    expect(nf.stderr).toContain('Alias arn:aws:kms:us-east-1:111122223333:alias/missing is not found.');
  }, 120_000);

  it('a wrong secret is refused with InvalidSignatureException', async () => {
    const saved = env.AWS_SECRET_ACCESS_KEY;
    env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
    try {
      const r = await aws('list-keys');
      expect(r.code).toBe(254);
      expect(r.stderr).toContain('(InvalidSignatureException)');
    } finally {
      env.AWS_SECRET_ACCESS_KEY = saved;
    }
  }, 60_000);
});
