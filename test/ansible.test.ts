/**
 * Ansible against `kms-hmac serve`: Debian's `ansible` package and its amazon.aws collection
 * (`.ci/run` installs it), run for real with /usr/bin/python3 and python3-boto3.
 *
 * Debian's amazon.aws 5.5.1 `kms_key` cannot create an HMAC key (its key_spec choices stop at
 * SYMMETRIC_DEFAULT, RSA_… and ECC_… and key_usage at ENCRYPT_DECRYPT/SIGN_VERIFY), so the AWS CLI creates
 * the HMAC_256 key and its alias; the playbook then manages that key (description, tags, policy, a
 * grant): the first run changes it, the second changes nothing; kms_key_info reads it back; and
 * `state: absent` schedules its deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type StartedServer } from '../src/server/index.js';
import { killGroup, track } from './support/process-group.js';

const PLAYBOOK = '/usr/bin/ansible-playbook';
const AWS = '/usr/bin/aws';
const FIXTURES = join(import.meta.dirname, 'fixtures', 'ansible');
const ACCESS = { accessKeyId: 'AKIDANSIBLE', secretAccessKey: 'secret-of-the-ansible-playbook-test' };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = track(spawn(cmd, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => killGroup(child), 120_000);
    child.on('error', () => resolve({ code: -1, stdout, stderr }));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const ansiblePresent = existsSync(PLAYBOOK) && existsSync(AWS);
if (!ansiblePresent)
  console.warn(
    `\n*** SKIPPING the Ansible tests: ${PLAYBOOK} or ${AWS} is missing (apt-get install -y ansible awscli) ***\n`,
  );

describe.runIf(!ansiblePresent && process.env.KMS_HMAC_REQUIRE_ANSIBLE === '1')('Ansible required', () => {
  it(`${PLAYBOOK} is installed`, () => expect(ansiblePresent, 'apt-get install -y ansible awscli').toBe(true));
});

let server: StartedServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-ansible-'));
  server = await startServer({ port: 0, credentials: ACCESS, log: false });
});
afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function env(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    AWS_ACCESS_KEY_ID: ACCESS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: ACCESS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    KMS_HMAC_ENDPOINT: server.url,
    KMS_HMAC_ACCESS_KEY: ACCESS.accessKeyId,
    KMS_HMAC_SECRET_KEY: ACCESS.secretAccessKey,
    ANSIBLE_STDOUT_CALLBACK: 'json',
    ANSIBLE_LOCAL_TEMP: join(dir, 'tmp'),
    ANSIBLE_HOME: join(dir, 'ansible'),
    ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
    ANSIBLE_LOCALHOST_WARNING: 'false',
    ANSIBLE_DEPRECATION_WARNINGS: 'false',
  };
}

async function aws(...args: string[]): Promise<Record<string, unknown>> {
  const r = await run(AWS, ['kms', ...args, '--endpoint-url', server.url, '--output', 'json'], env());
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim() === '' ? {} : JSON.parse(r.stdout);
}

interface TaskResult {
  changed?: boolean;
  failed?: boolean;
  msg?: string;
  [k: string]: unknown;
}

/** Runs a fixture playbook and returns each task's localhost result, in order. */
async function playbook(name: string): Promise<TaskResult[]> {
  const r = await run(PLAYBOOK, ['-i', 'localhost,', join(FIXTURES, name)], env(), FIXTURES);
  const out = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  const tasks = out.plays[0].tasks.map((t: { hosts: Record<string, TaskResult> }) => t.hosts.localhost);
  expect(r.code, `${r.stderr}\n${JSON.stringify(tasks, null, 2)}`).toBe(0);
  return tasks;
}

describe.runIf(ansiblePresent)('amazon.aws.kms_key against serve', () => {
  let keyId: string;

  it('the AWS CLI creates the HMAC_256 key and its alias', async () => {
    const created = (await aws('create-key', '--key-spec', 'HMAC_256', '--key-usage', 'GENERATE_VERIFY_MAC')) as {
      KeyMetadata: { KeyId: string };
    };
    keyId = created.KeyMetadata.KeyId;
    await aws('create-alias', '--alias-name', 'alias/ansible-hmac', '--target-key-id', keyId);
  });

  it('the first run changes the key, the second changes nothing', { timeout: 240_000 }, async () => {
    const first = await playbook('manage.yml');
    expect(first[0].changed, JSON.stringify(first[0])).toBe(true);
    const second = await playbook('manage.yml');
    expect(second[0].changed, JSON.stringify(second[0])).toBe(false);

    const key = second[0] as Record<string, unknown>;
    expect(key.key_id).toBe(keyId);
    expect(key.key_spec).toBe('HMAC_256');
    expect(key.description).toBe('managed by ansible');
    expect(key.tags).toEqual({ team: 'logs', purpose: 'hmac' });
    expect(key.aliases).toEqual(['ansible-hmac']);
    expect(key.enable_key_rotation).toBe(false);
    expect(key.key_policies).toEqual([JSON.parse(readFileSync(join(FIXTURES, 'policy.json'), 'utf8'))]);
    const grants = key.grants as { name: string; operations: string[]; grantee_principal: string }[];
    expect(grants.map((g) => [g.name, g.operations, g.grantee_principal])).toEqual([
      ['shipper', ['GenerateMac'], 'arn:aws:iam::111122223333:user/shipper'],
    ]);

    const info = (second[1] as { kms_keys: Record<string, unknown>[] }).kms_keys;
    expect(info.map((k) => [k.key_id, k.key_spec, k.tags, k.enable_key_rotation])).toEqual([
      [keyId, 'HMAC_256', { team: 'logs', purpose: 'hmac' }, false],
    ]);
  });

  it('state: absent schedules the deletion', { timeout: 120_000 }, async () => {
    const [removed] = await playbook('delete.yml');
    expect(removed.changed, JSON.stringify(removed)).toBe(true);
    const described = (await aws('describe-key', '--key-id', keyId)) as { KeyMetadata: { KeyState: string } };
    expect(described.KeyMetadata.KeyState).toBe('PendingDeletion');
    const [again] = await playbook('delete.yml');
    expect(again.changed).toBe(false);
  });
});
