/**
 * The fast path against a real remote: a real `@aws-sdk/client-kms` client
 * talking to `kms-hmac serve` (a child process started here) stands in for
 * AWS KMS. Keys are made the way a user makes them: an EXTERNAL key, material
 * wrapped with RSA-OAEP and imported, and the same material given to
 * `importRemoteKey` locally.
 *
 * Leases: local answers stop within the lease after DisableKey,
 * ScheduleKeyDeletion or DeleteImportedKeyMaterial on the remote; EnableKey
 * restores them; refused credentials are never answered locally; a remote
 * that goes down stops local answers after the lease (or not, counted stale,
 * with serve-stale); probes run off the request path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateKeyCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisabledException,
  DryRunOperationException,
  EnableKeyCommand,
  GenerateMacCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  KMSClient,
  KMSInvalidMacException,
  ScheduleKeyDeletionCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { KmsHmacClient } from '../src/client/client.js';
import { errorName } from '../src/client/fast-path-leases.js';
import {
  createFastPathClient,
  type FastPathClient,
  type FastPathOptions,
  type LeaseEvent,
  type LeaseState,
} from '../src/client/fast-path.js';
import { CRED, startServe, stopServe, type ServeChild } from './server-helpers.js';
import { random } from './support/random.js';

let dir = '';
let remote: ServeChild;
let admin: KMSClient;
const cleanup: Array<() => unknown> = [];

function kmsClient(url: string, credentials: { accessKeyId: string; secretAccessKey: string } = CRED): KMSClient {
  // One attempt: a refused or failed call shows up as it is, not retried away.
  return new KMSClient({ endpoint: url, region: 'us-east-1', credentials, maxAttempts: 1 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kms-hmac-fast-path-'));
  remote = await startServe(['--keystore', join(dir, 'remote.json')], dir);
  admin = kmsClient(remote.url);
}, 120_000);

afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
  admin?.destroy();
  if (remote) await stopServe(remote);
  rmSync(dir, { recursive: true, force: true });
});

interface RemoteKey {
  arn: string;
  keyId: string;
  material: Buffer;
}

/** An EXTERNAL HMAC_256 key on the remote with imported material, as a user would make one. */
async function importedKey(kms: KMSClient = admin): Promise<RemoteKey> {
  const { KeyMetadata } = await kms.send(
    new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL' }),
  );
  const KeyId = KeyMetadata!.KeyId!;
  const params = await kms.send(
    new GetParametersForImportCommand({ KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }),
  );
  const material = random.bytes(32);
  const wrapped = publicEncrypt(
    {
      key: createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' }),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    },
    material,
  );
  await kms.send(
    new ImportKeyMaterialCommand({
      KeyId,
      ImportToken: params.ImportToken,
      EncryptedKeyMaterial: wrapped,
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
    }),
  );
  return { arn: KeyMetadata!.Arn!, keyId: KeyId, material };
}

/** A fast path over its own real client (to `url`) and its own local copy of `key`. */
async function fastPath(
  key: RemoteKey,
  options: FastPathOptions = {},
  o: { url?: string; credentials?: { accessKeyId: string; secretAccessKey: string }; alias?: string } = {},
): Promise<FastPathClient<KMSClient>> {
  const local = new KmsHmacClient();
  await local.importRemoteKey({
    RemoteArn: key.arn,
    KeySpec: 'HMAC_256',
    KeyMaterial: key.material,
    ...(o.alias ? { AliasName: o.alias } : {}),
  });
  const client = createFastPathClient(kmsClient(o.url ?? remote.url, o.credentials), local, options);
  cleanup.push(
    () => client.destroy(),
    () => local.close(),
  );
  return client;
}

function leaseState(client: FastPathClient<KMSClient>, arn: string): LeaseState | undefined {
  return client.fastPathStats.keys[arn]?.lease;
}

/** Resolves with the 'lease' event that brings `arn` to `state` (or at once if it is there already). */
function leaseBecomes(
  client: FastPathClient<KMSClient>,
  arn: string,
  state: LeaseState,
  timeoutMs = 15_000,
): Promise<LeaseEvent | undefined> {
  if (leaseState(client, arn) === state) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.fastPath.off('lease', on);
      reject(
        new Error(
          `lease of ${arn} did not become ${state} in ${timeoutMs} ms: ${JSON.stringify(client.fastPathStats.keys[arn])}`,
        ),
      );
    }, timeoutMs);
    const on = (e: LeaseEvent) => {
      if (e.keyId !== arn || e.state !== state) return;
      clearTimeout(timer);
      client.fastPath.off('lease', on);
      resolve(e);
    };
    client.fastPath.on('lease', on);
  });
}

const mac = (KeyId: string, Message: Uint8Array = new Uint8Array([1, 2, 3])) =>
  new GenerateMacCommand({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message });

interface Answer {
  /** Date.now() just before send(): the lease decision came after it. */
  before: number;
  local: boolean;
  error?: string;
  mac?: Uint8Array;
}

/** One GenerateMac through the fast path, noting whether it was answered locally. */
async function ask(client: FastPathClient<KMSClient>, KeyId: string): Promise<Answer> {
  const localBefore = client.fastPathStats.local;
  const before = Date.now();
  const p = client.send(mac(KeyId));
  const local = client.fastPathStats.local > localBefore; // decided synchronously inside send()
  try {
    const out = await p;
    return { before, local, mac: out.Mac! };
  } catch (err) {
    return { before, local, error: errorName(err) };
  }
}

/** Asks every 50 ms until `done(answer)`; returns every answer. */
async function askUntil(
  client: FastPathClient<KMSClient>,
  KeyId: string,
  done: (a: Answer) => boolean,
  timeoutMs = 20_000,
): Promise<Answer[]> {
  const answers: Answer[] = [];
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const a = await ask(client, KeyId);
    answers.push(a);
    if (done(a)) return answers;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up after ${answers.length} answers: ${JSON.stringify(answers.slice(-3))}`);
}

describe("local answers carry AWS's decision", () => {
  it('forwards until the first probe says "would succeed", then answers locally, byte-identical to the remote', async () => {
    const key = await importedKey();
    const client = await fastPath(key, {}, { alias: 'alias/signing' });
    const msg = random.bytes(64);
    const fromRemote = await admin.send(mac(key.arn, msg));

    // The first request names the key: its lease is pending, the request is forwarded, a probe starts in the background.
    const first = await client.send(mac(key.arn, msg));
    expect(first.Mac).toEqual(fromRemote.Mac);
    expect(client.fastPathStats).toMatchObject({ local: 0, forwarded: 1 });
    const granted = await leaseBecomes(client, key.arn, 'valid');
    if (granted) expect(granted).toMatchObject({ previous: 'pending', reason: 'probe: would succeed' });
    const stats = client.fastPathStats.keys[key.arn]!;
    expect(stats.lastProbe).toMatchObject({ result: 'granted' });
    expect(stats.expiresAt!.getTime() - Date.now()).toBeGreaterThan(50_000);
    expect(stats.expiresAt!.getTime() - Date.now()).toBeLessThanOrEqual(60_000);

    const arnAlias = key.arn.replace(/key\/.*/, 'alias/signing');
    for (const KeyId of [key.arn, key.keyId, 'alias/signing', arnAlias]) {
      const out = await client.send(mac(KeyId, msg));
      expect(out.Mac).toEqual(fromRemote.Mac);
      expect(out.KeyId).toBe(key.arn);
      expect(out.$metadata.httpStatusCode).toBe(200);
      const v = await client.send(
        new VerifyMacCommand({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: msg, Mac: out.Mac }),
      );
      expect(v).toMatchObject({ KeyId: key.arn, MacValid: true, MacAlgorithm: 'HMAC_SHA_256' });
    }
    const bad = await client
      .send(
        new VerifyMacCommand({ KeyId: key.arn, MacAlgorithm: 'HMAC_SHA_256', Message: msg, Mac: new Uint8Array(32) }),
      )
      .catch((e) => e);
    expect(bad).toBeInstanceOf(KMSInvalidMacException);
    const wrongAlg = await client
      .send(new GenerateMacCommand({ KeyId: key.arn, MacAlgorithm: 'HMAC_SHA_512', Message: msg }))
      .catch((e) => e);
    expect(wrongAlg.name).toBe('InvalidKeyUsageException');
    expect(client.fastPathStats).toMatchObject({ local: 10, stale: 0, forwarded: 1 });
    expect(client.fastPathStats.keys[key.arn]).toMatchObject({ lease: 'valid', local: 10, forwarded: 1, stale: 0 });
  });

  it('fastPath.probe() asks AWS at once; DryRun, other commands, unknown keys and disabled local copies are forwarded', async () => {
    const key = await importedKey();
    const client = await fastPath(key);
    expect(await client.fastPath.probe(key.arn)).toMatchObject({ lease: 'valid', lastProbe: { result: 'granted' } });
    expect(
      await client.fastPath.probe('arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000'),
    ).toBeUndefined();

    const dry = await client
      .send(
        new GenerateMacCommand({
          KeyId: key.arn,
          MacAlgorithm: 'HMAC_SHA_256',
          Message: new Uint8Array(1),
          DryRun: true,
        }),
      )
      .catch((e) => e);
    expect(dry).toBeInstanceOf(DryRunOperationException);
    const described = await client.send(new DescribeKeyCommand({ KeyId: key.arn }));
    expect(described.KeyMetadata?.Origin).toBe('EXTERNAL');
    const other = await importedKey();
    const remoteOnly = await client.send(mac(other.arn));
    expect(remoteOnly.KeyId).toBe(other.arn);
    await client.localClient.disableKey({ KeyId: (await client.localClient.listKeys()).Keys[0]!.KeyId });
    const viaRemote = await client.send(mac(key.arn));
    expect(viaRemote.KeyId).toBe(key.arn);
    expect(client.fastPathStats).toMatchObject({ local: 0, forwarded: 4 });
    expect(client.fastPathStats.keys[key.arn]).toMatchObject({ local: 0, forwarded: 2 }); // the DryRun and the disabled copy
    // Other members pass through to the real client.
    expect(await client.config.region()).toBe('us-east-1');
    expect(client.remoteClient).toBeInstanceOf(KMSClient);
  });

  it('linkRemoteKey links a key whose material came through the import flow; a local key is never linked twice', async () => {
    const local = new KmsHmacClient();
    const arn = 'arn:aws:kms:eu-west-1:444455556666:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
    await local.importRemoteKey({ RemoteArn: arn, KeySpec: 'HMAC_256', KeyMaterial: random.bytes(32) });
    const dup = await local
      .importRemoteKey({ RemoteArn: arn, KeySpec: 'HMAC_256', KeyMaterial: random.bytes(32) })
      .catch((e) => e);
    expect(dup.name).toBe('AlreadyExistsException');
    const { KeyMetadata: normal } = await local.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const e = await local
      .linkRemoteKey({
        KeyId: normal.KeyId,
        RemoteArn: 'arn:aws:kms:eu-west-1:444455556666:key/22222222-2222-2222-2222-222222222222',
      })
      .catch((x) => x);
    expect(e.name).toBe('UnsupportedOperationException');
    const short = await local
      .importRemoteKey({
        RemoteArn: 'arn:aws:kms:eu-west-1:1:key/33333333-3333-3333-3333-333333333333',
        KeySpec: 'HMAC_256',
        KeyMaterial: random.bytes(16),
      })
      .catch((x) => x);
    expect(short.name).toBe('IncorrectKeyMaterialException');
    await local.close();
  });

  it('options are checked', () => {
    const local = new KmsHmacClient();
    for (const bad of [{ leaseSeconds: 0 }, { leaseSeconds: Number.NaN }, { leaseSeconds: 1e9 }]) {
      expect(() => createFastPathClient(admin, local, bad), JSON.stringify(bad)).toThrow(RangeError);
    }
    expect(() => createFastPathClient(admin, local, { onUnreachable: 'maybe' as never })).toThrow(TypeError);
    expect(() => createFastPathClient({} as never, local)).toThrow(TypeError);
    void local.close();
  });
});

describe('revocation in the remote stops local answers within the lease', () => {
  const LEASE_S = 2;
  const cases: Array<[string, (arn: string) => Promise<unknown>, string[]]> = [
    ['DisableKey', (KeyId) => admin.send(new DisableKeyCommand({ KeyId })), ['DisabledException']],
    [
      'ScheduleKeyDeletion',
      (KeyId) => admin.send(new ScheduleKeyDeletionCommand({ KeyId, PendingWindowInDays: 7 })),
      ['KMSInvalidStateException', 'DisabledException'],
    ],
    [
      'DeleteImportedKeyMaterial',
      (KeyId) => admin.send(new DeleteImportedKeyMaterialCommand({ KeyId })),
      ['KMSInvalidStateException'],
    ],
  ];
  for (const [name, revoke, errors] of cases) {
    it(`${name}: no local answer later than the lease after it; then AWS's own error`, async () => {
      const key = await importedKey();
      const client = await fastPath(key, { leaseSeconds: LEASE_S });
      await client.fastPath.probe(key.arn);
      expect((await ask(client, key.arn)).local).toBe(true);

      await revoke(key.arn);
      const revokedAt = Date.now();
      const answers = await askUntil(client, key.arn, (a) => a.error !== undefined);
      for (const a of answers.filter((x) => x.local)) expect(a.before).toBeLessThan(revokedAt + LEASE_S * 1000);
      const last = answers.at(-1)!;
      expect(last.local).toBe(false);
      expect(errors).toContain(last.error);
      // The lease is dropped (a probe was refused, or the forwarded answer showed it), not left to expire.
      expect(leaseState(client, key.arn)).toBe('revoked');
    }, 60_000);
  }

  it('EnableKey in the remote restores local answers', async () => {
    const key = await importedKey();
    const client = await fastPath(key, { leaseSeconds: LEASE_S });
    const events: LeaseEvent[] = [];
    client.fastPath.on('lease', (e) => events.push(e));
    await client.fastPath.probe(key.arn);
    await admin.send(new DisableKeyCommand({ KeyId: key.arn }));
    await askUntil(client, key.arn, (a) => a.error === 'DisabledException');
    await admin.send(new EnableKeyCommand({ KeyId: key.arn }));
    // Keep using the key (a lease is renewed only for keys in use) until the next probe restores it.
    const answers = await askUntil(client, key.arn, (a) => a.local);
    expect(answers.at(-1)!.mac).toBeInstanceOf(Uint8Array);
    // (A renewal slowed down by a loaded machine may let the lease expire in between: not a transition that matters here.)
    const transitions = events.filter((e) => e.state !== 'expired');
    expect(transitions.map((e) => e.state)).toEqual(['valid', 'revoked', 'valid']);
    expect(transitions[1]!.error).toBe('DisabledException');
  }, 60_000);

  it('a forwarded answer that shows the change drops the lease at once', async () => {
    const key = await importedKey();
    const client = await fastPath(key, { leaseSeconds: 60 });
    await client.fastPath.probe(key.arn);
    // DisableKey through the fast path itself: once AWS accepted it, the next GenerateMac is AWS's to answer.
    await client.send(new DisableKeyCommand({ KeyId: key.arn }));
    expect(leaseState(client, key.arn)).toBe('revoked');
    const after = await ask(client, key.arn);
    expect(after).toMatchObject({ local: false, error: 'DisabledException' });
    // EnableKey through the fast path probes at once.
    await client.send(new EnableKeyCommand({ KeyId: key.arn }));
    await leaseBecomes(client, key.arn, 'valid');
    expect((await ask(client, key.arn)).local).toBe(true);

    // Disabled behind the fast path's back: a forwarded DryRun's DisabledException drops the lease too.
    await admin.send(new DisableKeyCommand({ KeyId: key.arn }));
    const dry = await client
      .send(
        new GenerateMacCommand({
          KeyId: key.arn,
          MacAlgorithm: 'HMAC_SHA_256',
          Message: new Uint8Array(1),
          DryRun: true,
        }),
      )
      .catch((e) => e);
    expect(dry).toBeInstanceOf(DisabledException);
    expect(leaseState(client, key.arn)).toBe('revoked');
    expect(await ask(client, key.arn)).toMatchObject({ local: false, error: 'DisabledException' });
  }, 60_000);
});

describe('credentials the remote refuses', () => {
  it('are never answered locally, whatever the lease', async () => {
    const key = await importedKey();
    for (const [credentials, error] of [
      [{ accessKeyId: 'AKIDNOBODY', secretAccessKey: 'whatever' }, 'UnrecognizedClientException'],
      [{ accessKeyId: CRED.accessKeyId, secretAccessKey: 'not-the-secret' }, 'InvalidSignatureException'],
    ] as const) {
      const client = await fastPath(key, { leaseSeconds: 1 }, { credentials });
      expect(await client.fastPath.probe(key.arn)).toMatchObject({
        lease: 'revoked',
        lastProbe: { result: 'refused', error },
      });
      const until = Date.now() + 2500; // past one lease and its renewals
      while (Date.now() < until) {
        expect(await ask(client, key.arn)).toMatchObject({ local: false, error });
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(client.fastPathStats.local).toBe(0);
    }
  }, 60_000);
});

describe('remote down', () => {
  it('fail-closed (default): local answers stop after the lease; serve-stale: they go on, counted stale', async () => {
    const LEASE_S = 2;
    const own = await startServe(['--keystore', join(dir, 'down.json')], dir);
    const ownAdmin = kmsClient(own.url);
    try {
      const key = await importedKey(ownAdmin);
      const closed = await fastPath(key, { leaseSeconds: LEASE_S }, { url: own.url });
      const stale = await fastPath(key, { leaseSeconds: LEASE_S, onUnreachable: 'serve-stale' }, { url: own.url });
      await closed.fastPath.probe(key.arn);
      await stale.fastPath.probe(key.arn);
      const staleMac = (await ask(stale, key.arn)).mac!;

      await stopServe(own);
      // No probe can grant anything now: the last lease is the bound.
      const expiresAt = closed.fastPathStats.keys[key.arn]!.expiresAt!.getTime();
      // Both clients in use, until the fail-closed one forwards (and fails) and a while after, and until
      // the serve-stale one is past its own lease: it probed later, and may have renewed just before the
      // remote went down, so its lease can end after the fail-closed one's.
      const answers: Answer[] = [];
      const staleAnswers: Answer[] = [];
      let stopAt = Infinity;
      const staleLeaseOver = () => Date.now() > stale.fastPathStats.keys[key.arn]!.expiresAt!.getTime() + 500;
      for (const until = Date.now() + 20_000; Date.now() < until && (Date.now() < stopAt || !staleLeaseOver()); ) {
        const a = await ask(closed, key.arn);
        answers.push(a);
        staleAnswers.push(await ask(stale, key.arn));
        if (a.error !== undefined && stopAt === Infinity) stopAt = Date.now() + 1000;
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const a of answers.filter((x) => x.local)) expect(a.before).toBeLessThan(expiresAt);
      expect(answers.at(-1)).toMatchObject({ local: false, error: 'ECONNREFUSED' });
      expect(closed.fastPathStats.keys[key.arn]).toMatchObject({
        lease: 'expired',
        lastProbe: { result: 'unreachable' },
      });

      // serve-stale: every answer local, the same MAC, those after the lease counted stale.
      expect(staleAnswers.filter((a) => !a.local || a.error)).toEqual([]);
      for (const a of staleAnswers) expect(a.mac).toEqual(staleMac);
      const s = stale.fastPathStats;
      expect(s.stale).toBeGreaterThanOrEqual(
        staleAnswers.filter((a) => a.before > s.keys[key.arn]!.expiresAt!.getTime()).length,
      );
      expect(s.stale).toBeGreaterThan(0);
      expect(s.keys[key.arn]).toMatchObject({ lease: 'expired', stale: s.stale, lastProbe: { result: 'unreachable' } });
    } finally {
      ownAdmin.destroy();
      await stopServe(own);
    }
  }, 60_000);
});

describe('hot path', () => {
  it('a probe in flight never holds up a local answer, and a local answer sends nothing to the remote', async () => {
    const own = await startServe(['--keystore', join(dir, 'frozen.json')], dir);
    const ownAdmin = kmsClient(own.url);
    try {
      const key = await importedKey(ownAdmin);
      const local = new KmsHmacClient();
      await local.importRemoteKey({ RemoteArn: key.arn, KeySpec: 'HMAC_256', KeyMaterial: key.material });
      // The real client, with its send() counted.
      const real = kmsClient(own.url);
      const sent: string[] = [];
      const counted = {
        send: (command: { constructor: { name: string } }, ...rest: unknown[]) => {
          sent.push(command.constructor.name);
          return real.send(command as never, ...(rest as []));
        },
      };
      const client = createFastPathClient(counted, local, { leaseSeconds: 60 });
      cleanup.push(
        () => client.fastPath.close(),
        () => real.destroy(),
        () => local.close(),
      );
      await client.fastPath.probe(key.arn);

      // Freeze the remote: a probe started now cannot finish.
      own.proc.kill('SIGSTOP');
      try {
        const start = sent.length;
        const probing = client.fastPath.probe(key.arn);
        while (sent.length < start + 2) await new Promise((r) => setTimeout(r, 5)); // its DryRun and DescribeKey are out
        expect(client.fastPathStats.keys[key.arn]!.probing).toBe(true);
        const before = sent.length;
        for (let i = 0; i < 50; i++) {
          const out = (await client.send(mac(key.arn))) as { KeyId: string };
          expect(out.KeyId).toBe(key.arn);
        }
        expect(sent.length).toBe(before);
        expect(client.fastPathStats.keys[key.arn]).toMatchObject({ probing: true, local: 50 });
        own.proc.kill('SIGCONT');
        expect(await probing).toMatchObject({ lease: 'valid', probing: false });
      } finally {
        own.proc.kill('SIGCONT');
      }
    } finally {
      ownAdmin.destroy();
      await stopServe(own);
    }
  }, 60_000);
});
