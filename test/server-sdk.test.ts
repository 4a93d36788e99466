/**
 * The endpoint driven by the real `@aws-sdk/client-kms` (SigV4-signed by the
 * SDK, its JSON 1.1 serializer and error deserializer), plus the protocol
 * errors a client can provoke with raw requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, createHmac, createPublicKey, publicEncrypt } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisabledException,
  EnableKeyCommand,
  GenerateMacCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  KMSClient,
  KMSInvalidMacException,
  KMSInvalidStateException,
  KMSServiceException,
  ListAliasesCommand,
  ListKeysCommand,
  NotFoundException,
  ScheduleKeyDeletionCommand,
  VerifyMacCommand,
  type KeySpec,
  type MacAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { startServer, type StartedServer } from '../src/server/index.js';
import { CRED, rawRequest, signedCall, signKms } from './server-helpers.js';
import { random } from './support/random.js';

const SPECS: Array<[KeySpec, MacAlgorithmSpec, string, number]> = [
  ['HMAC_224', 'HMAC_SHA_224', 'sha224', 28],
  ['HMAC_256', 'HMAC_SHA_256', 'sha256', 32],
  ['HMAC_384', 'HMAC_SHA_384', 'sha384', 48],
  ['HMAC_512', 'HMAC_SHA_512', 'sha512', 64],
];

let server: StartedServer;
let kms: KMSClient;

beforeAll(async () => {
  server = await startServer({ port: 0, credentials: [CRED], log: false });
  // maxAttempts 1: a 5xx must show up as a failure here, not be retried away.
  kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
});
afterAll(async () => {
  kms?.destroy();
  await server?.close();
});

describe('@aws-sdk/client-kms against kms-hmac serve', () => {
  const keys: Record<string, { id: string; arn: string }> = {};

  it('CreateKey for all four HMAC specs', async () => {
    for (const [spec, alg] of SPECS) {
      const out = await kms.send(
        new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC', Description: `test ${spec}` }),
      );
      const md = out.KeyMetadata!;
      expect(md.KeySpec).toBe(spec);
      expect(md.MacAlgorithms).toEqual([alg]);
      expect(md.KeyState).toBe('Enabled');
      expect(md.CreationDate).toBeInstanceOf(Date);
      expect(Math.abs(md.CreationDate!.getTime() - Date.now())).toBeLessThan(60_000);
      expect(md.Arn).toBe(`arn:aws:kms:us-east-1:111122223333:key/${md.KeyId}`);
      expect(out.$metadata.httpStatusCode).toBe(200);
      expect(out.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
      keys[spec] = { id: md.KeyId!, arn: md.Arn! };
    }
  });

  it('CreateAlias, then GenerateMac by key ID, key ARN, alias and alias ARN (same MAC, KeyId = key ARN)', async () => {
    const k = keys.HMAC_256!;
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/server-test', TargetKeyId: k.id }));
    const aliases = await kms.send(new ListAliasesCommand({ KeyId: k.id }));
    expect(aliases.Aliases?.map((a) => a.AliasName)).toEqual(['alias/server-test']);
    expect(aliases.Aliases?.[0]?.CreationDate).toBeInstanceOf(Date);
    const message = new TextEncoder().encode('log line 1');
    const macs = new Set<string>();
    for (const KeyId of [k.id, k.arn, 'alias/server-test', 'arn:aws:kms:us-east-1:111122223333:alias/server-test']) {
      const out = await kms.send(new GenerateMacCommand({ KeyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
      expect(out.KeyId).toBe(k.arn);
      expect(out.MacAlgorithm).toBe('HMAC_SHA_256');
      expect(out.Mac).toBeInstanceOf(Uint8Array);
      expect(out.Mac!.length).toBe(32);
      macs.add(Buffer.from(out.Mac!).toString('hex'));
    }
    expect(macs.size).toBe(1);
  });

  it('VerifyMac: valid → MacValid true; tampered → KMSInvalidMacException (the SDK class, no message)', async () => {
    for (const [spec, alg, , len] of SPECS) {
      const KeyId = keys[spec]!.id;
      const Message = random.bytes(100);
      const { Mac } = await kms.send(new GenerateMacCommand({ KeyId, Message, MacAlgorithm: alg }));
      expect(Mac!.length).toBe(len);
      const ok = await kms.send(new VerifyMacCommand({ KeyId, Message, Mac, MacAlgorithm: alg }));
      expect(ok).toMatchObject({ MacValid: true, KeyId: keys[spec]!.arn, MacAlgorithm: alg });
      const bad = Uint8Array.from(Mac!);
      bad[0]! ^= 1;
      const err = await kms.send(new VerifyMacCommand({ KeyId, Message, Mac: bad, MacAlgorithm: alg })).catch((e) => e);
      expect(err).toBeInstanceOf(KMSInvalidMacException);
      expect(err.name).toBe('KMSInvalidMacException');
      expect(err.$metadata.httpStatusCode).toBe(400);
      expect(err.message).toBe('UnknownError'); // the SDK's text for a body without message, as against AWS
    }
  });

  it('DisableKey → DisabledException; EnableKey restores', async () => {
    const k = keys.HMAC_384!;
    await kms.send(new DisableKeyCommand({ KeyId: k.id }));
    const err = await kms
      .send(new GenerateMacCommand({ KeyId: k.id, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_384' }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(DisabledException);
    expect(err.message).toBe(`${k.arn} is disabled.`);
    await kms.send(new EnableKeyCommand({ KeyId: k.id }));
    await kms.send(new GenerateMacCommand({ KeyId: k.id, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_384' }));
  });

  it('ScheduleKeyDeletion → KMSInvalidStateException', async () => {
    const k = keys.HMAC_224!;
    const out = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: k.id, PendingWindowInDays: 7 }));
    expect(out.DeletionDate).toBeInstanceOf(Date);
    expect(out.KeyState).toBe('PendingDeletion');
    const err = await kms
      .send(new GenerateMacCommand({ KeyId: k.id, Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_224' }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(KMSInvalidStateException);
    expect(err.message).toBe(`${k.arn} is pending deletion.`);
    const md = (await kms.send(new DescribeKeyCommand({ KeyId: k.id }))).KeyMetadata!;
    expect(md.DeletionDate).toBeInstanceOf(Date);
  });

  it('NotFoundException and ValidationException arrive typed', async () => {
    const nf = await kms
      .send(new GenerateMacCommand({ KeyId: 'alias/nope', Message: Buffer.from('x'), MacAlgorithm: 'HMAC_SHA_256' }))
      .catch((e) => e);
    expect(nf).toBeInstanceOf(NotFoundException);
    expect(nf.message).toBe('Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found.');
    const ve = await kms
      .send(
        new GenerateMacCommand({
          KeyId: keys.HMAC_256!.id,
          Message: new Uint8Array(4097),
          MacAlgorithm: 'HMAC_SHA_256',
        }),
      )
      .catch((e) => e);
    expect(ve).toBeInstanceOf(KMSServiceException);
    expect(ve.name).toBe('ValidationException');
    expect(ve.$metadata.httpStatusCode).toBe(400);
  });

  it('import flow: RSA-OAEP-wrapped material; MACs equal node:crypto', async () => {
    for (const [spec, alg, hash] of SPECS) {
      const created = await kms.send(
        new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC', Origin: 'EXTERNAL' }),
      );
      const KeyId = created.KeyMetadata!.KeyId!;
      expect(created.KeyMetadata!.KeyState).toBe('PendingImport');
      const params = await kms.send(
        new GetParametersForImportCommand({
          KeyId,
          WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
          WrappingKeySpec: 'RSA_2048',
        }),
      );
      expect(params.ImportToken).toBeInstanceOf(Uint8Array);
      expect(params.PublicKey).toBeInstanceOf(Uint8Array);
      expect(params.ParametersValidTo).toBeInstanceOf(Date);
      const material = random.bytes(Number(spec.slice(5)) / 8);
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
      const msg = random.bytes(257);
      const { Mac } = await kms.send(new GenerateMacCommand({ KeyId, Message: msg, MacAlgorithm: alg }));
      expect(Buffer.from(Mac!).toString('hex')).toBe(createHmac(hash, material).update(msg).digest('hex'));
    }
  });

  it('ListKeys paging with Limit/Marker returns every key exactly once', async () => {
    const all: string[] = [];
    let Marker: string | undefined;
    let pages = 0;
    do {
      const out = await kms.send(new ListKeysCommand({ Limit: 3, ...(Marker ? { Marker } : {}) }));
      expect(out.Keys!.length).toBeLessThanOrEqual(3);
      all.push(...out.Keys!.map((k) => k.KeyId!));
      Marker = out.Truncated ? out.NextMarker : undefined;
      if (out.Truncated) expect(out.NextMarker).toBeTruthy();
      pages++;
    } while (Marker && pages < 20);
    expect(all.length).toBe(8);
    expect(new Set(all).size).toBe(8);
    expect(pages).toBe(3);
  });
});

describe('protocol errors (raw requests)', () => {
  it('unknown target → UnknownOperationException; no target → UnknownOperationException', async () => {
    const r = await signedCall(server.url, 'Encrypt', {});
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ __type: 'UnknownOperationException', message: 'Unknown operation TrentService.Encrypt' });
    const h = await signKms(server.url, { target: 'KinesisService.PutRecord', body: '{}' });
    const r2 = await rawRequest(server.url, { headers: h, body: '{}' });
    expect(r2.json?.__type).toBe('UnknownOperationException');
  });

  it('malformed JSON, non-object JSON, bad base64, url-safe base64, wrong member type → SerializationException', async () => {
    const bodies = [
      '{"KeyId":',
      '[1,2]',
      'null',
      JSON.stringify({ KeyId: 'k', Message: 'a b=', MacAlgorithm: 'HMAC_SHA_256' }),
      JSON.stringify({ KeyId: 'k', Message: '-_8=', MacAlgorithm: 'HMAC_SHA_256' }),
      JSON.stringify({ KeyId: 'k', Message: 'QQ', MacAlgorithm: 'HMAC_SHA_256' }),
      JSON.stringify({ KeyId: 'k', Message: 'QQ==\n', MacAlgorithm: 'HMAC_SHA_256' }),
      JSON.stringify({ KeyId: 5, Message: 'QQ==', MacAlgorithm: 'HMAC_SHA_256' }),
      JSON.stringify({ KeyId: 'k', Message: 'QQ==', MacAlgorithm: 'HMAC_SHA_256', GrantTokens: [1] }),
      JSON.stringify({ KeyId: 'k', Message: 'QQ==', MacAlgorithm: 'HMAC_SHA_256', DryRun: 'true' }),
    ];
    for (const body of bodies) {
      const r = await signedCall(server.url, 'GenerateMac', body);
      expect(r.status, body).toBe(400);
      expect(r.json?.__type, body).toBe('SerializationException');
    }
    const t = await signedCall(server.url, 'ListKeys', { Limit: 1.5 });
    expect(t.json?.__type).toBe('SerializationException');
  });

  it('empty body and {} both work for operations without required members; null members are absent', async () => {
    expect((await signedCall(server.url, 'ListKeys', '')).status).toBe(200);
    expect((await signedCall(server.url, 'ListKeys', {})).status).toBe(200);
    const r = await signedCall(server.url, 'ListKeys', { Limit: null, Marker: null, Unknown: 1 });
    expect(r.status).toBe(200);
    expect(Array.isArray(r.json?.Keys)).toBe(true);
  });

  it('timestamps are epoch-second numbers; blobs standard base64', async () => {
    const r = await signedCall(server.url, 'CreateKey', { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const md = r.json?.KeyMetadata as Record<string, unknown>;
    expect(typeof md.CreationDate).toBe('number');
    expect(Math.abs((md.CreationDate as number) - Date.now() / 1000)).toBeLessThan(60);
    const g = await signedCall(server.url, 'GenerateMac', {
      KeyId: md.KeyId,
      Message: 'AA==',
      MacAlgorithm: 'HMAC_SHA_256',
    });
    expect(g.json?.Mac).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it('wrong method or path → a clear JSON error', async () => {
    const get = await rawRequest(server.url, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(get.json?.__type).toBe('MethodNotAllowedException');
    const path = await rawRequest(server.url, { path: '/keys', body: '{}' });
    expect(path.status).toBe(404);
    expect(path.json?.__type).toBe('UnknownOperationException');
    expect(path.headers['content-type']).toBe('application/x-amz-json-1.1');
  });

  it('a signed body over 1 MiB is refused with 413 (declared or chunked) and the server keeps serving', async () => {
    const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
    const r = await rawRequest(server.url, { headers: await signKms(server.url, { body: big }), body: big });
    expect(r.status).toBe(413);
    expect(r.json?.__type).toBe('RequestEntityTooLargeException');
    expect(r.headers.connection).toBe('close');
    // Unsigned: the missing credentials are the answer, whatever the size.
    const stranger = await rawRequest(server.url, {
      headers: { 'content-type': 'application/x-amz-json-1.1' },
      body: big,
    });
    expect(stranger.status).toBe(400);
    expect(stranger.json?.__type).toBe('MissingAuthenticationTokenException');
    // Chunked: no Content-Length, counted as it arrives.
    const http = await import('node:http');
    const u = new URL(server.url);
    const total = 3 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const headers = await signKms(server.url, { body: Buffer.alloc(total, 0x20) });
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: u.hostname, port: u.port, method: 'POST', path: '/', headers, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    }).catch((e) => (e as NodeJS.ErrnoException).code);
    expect(chunked).toBe(413);
    expect((await signedCall(server.url, 'ListKeys', {})).status).toBe(200);
  });
});

describe('startServer credentials option', () => {
  it("takes the SDK's credentials object as well as a list, and names a malformed one", async () => {
    const single = await startServer({ port: 0, credentials: CRED, log: false });
    const client = new KMSClient({ endpoint: single.url, region: 'us-east-1', credentials: CRED, maxAttempts: 1 });
    try {
      const out = await client.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
      expect(out.KeyMetadata?.KeySpec).toBe('HMAC_256');
    } finally {
      client.destroy();
      await single.close();
    }
    await expect(startServer({ port: 0, credentials: { accessKeyId: 'AKID' } as never, log: false })).rejects.toThrow(
      /credentials: secretAccessKey is missing/,
    );
  });
});
