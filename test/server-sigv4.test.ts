/**
 * SigV4 verification: the verifier against the SDK's own signer, and every
 * authentication negative over HTTP against a recording stub client (so
 * "not let through" is observed directly: the stub must never be called).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { listen, type KmsApi } from '../src/server/server.js';
import { SigV4Verifier, deriveSigningKey, parseAuthorization, AuthError } from '../src/server/sigv4.js';
import { CRED, CRED2, rawRequest, signKms } from './server-helpers.js';

const GOOD_BODY = JSON.stringify({ KeyId: 'alias/x', Message: 'aGVsbG8=', MacAlgorithm: 'HMAC_SHA_256' });

function stub() {
  const calls: Array<{ op: string; input: Record<string, unknown> }> = [];
  const client: KmsApi = {
    generateMacSync(input: Record<string, unknown>) {
      calls.push({ op: 'GenerateMac', input });
      return {
        KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
        Mac: new Uint8Array([1, 2, 3]),
        MacAlgorithm: 'HMAC_SHA_256',
      };
    },
    async describeKey(input: Record<string, unknown>) {
      calls.push({ op: 'DescribeKey', input });
      return { KeyMetadata: { KeyId: 'k', CreationDate: new Date(1_700_000_000_500) } };
    },
  };
  return { client, calls };
}

describe('SigV4Verifier (unit)', () => {
  it('derives the AWS documentation signing key', () => {
    // AWS General Reference, "Examples of how to derive a signing key for Signature Version 4".
    const k = deriveSigningKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20120215', 'us-east-1', 'iam');
    expect(k.toString('hex')).toBe('f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d');
  });

  it('parses the Authorization header and rejects malformed ones', () => {
    const p = parseAuthorization(
      'AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=' +
        'a'.repeat(64),
    );
    expect(p).toMatchObject({
      accessKeyId: 'AKID',
      date: '20260101',
      region: 'us-east-1',
      service: 'kms',
      signedHeaders: 'host;x-amz-date;x-amz-target',
    });
    for (const bad of [
      `AWS4-HMAC-SHA1 Credential=a/b/c/d/e, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
      'AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host',
      `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
      'AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=xyz',
      `AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
      'AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request, SignedHeaders=Host, Signature=' +
        'a'.repeat(64),
    ]) {
      expect(() => parseAuthorization(bad), bad).toThrow(AuthError);
      try {
        parseAuthorization(bad);
      } catch (e) {
        expect((e as AuthError).name).toBe('IncompleteSignatureException');
      }
    }
  });

  it('accepts what @smithy/signature-v4 signs, including repeated and oddly spaced headers', async () => {
    const v = new SigV4Verifier({ credentials: [CRED], region: 'us-east-1' });
    const url = 'http://127.0.0.1:4599';
    const headers = await signKms(url, { body: GOOD_BODY, headers: { 'x-custom': 'a   b\tc' } });
    const names = (headers.authorization ?? headers.Authorization)!;
    expect(names).toContain('x-custom');
    const rawHeaders = Object.entries(headers).flat();
    expect(v.verify({ method: 'POST', path: '/', rawHeaders, body: Buffer.from(GOOD_BODY) })).toEqual({
      accessKeyId: CRED.accessKeyId,
    });
    // Same request, body changed by one byte → mismatch.
    expect(() =>
      v.verify({ method: 'POST', path: '/', rawHeaders, body: Buffer.from(GOOD_BODY.replace('aGVs', 'aGVt')) }),
    ).toThrow(/does not match/);
    // Without x-amz-content-sha256 (the Python clients do not send it): the signature itself catches it.
    const bare = await signKms(url, { body: GOOD_BODY, checksum: false });
    expect(bare['x-amz-content-sha256']).toBeUndefined();
    const bareRaw = Object.entries(bare).flat();
    expect(v.verify({ method: 'POST', path: '/', rawHeaders: bareRaw, body: Buffer.from(GOOD_BODY) }).accessKeyId).toBe(
      CRED.accessKeyId,
    );
    expect(() =>
      v.verify({ method: 'POST', path: '/', rawHeaders: bareRaw, body: Buffer.from(`${GOOD_BODY} `) }),
    ).toThrow(/signature we calculated does not match/);
  });
});

describe('authentication over HTTP (stub client: a rejected request never reaches it)', () => {
  const { client, calls } = stub();
  let url = '';
  let close: () => Promise<void>;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

  beforeAll(async () => {
    const s = await listen({ client, credentials: [CRED, CRED2], port: 0, log: null });
    url = s.url;
    close = s.close;
  });
  afterAll(async () => {
    agent.destroy();
    await close();
  });

  async function expectRejected(
    headers: Record<string, string> | [string, string][],
    body: string,
    type: string,
    message?: RegExp,
  ): Promise<void> {
    const before = calls.length;
    const r = await rawRequest(url, { headers, body, agent });
    expect(r.status, r.body).toBe(400);
    expect(r.json?.__type).toBe(type);
    expect(r.headers['x-amzn-errortype']).toBe(type);
    expect(r.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(r.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
    if (message) expect(String(r.json?.message)).toMatch(message);
    expect(calls.length, 'the client must not be called').toBe(before);
  }

  it('lets a correctly signed request through (control)', async () => {
    const before = calls.length;
    const headers = await signKms(url, { body: GOOD_BODY });
    const r = await rawRequest(url, { headers, body: GOOD_BODY, agent });
    expect(r.status, r.body).toBe(200);
    expect(r.json).toEqual({
      KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
      Mac: 'AQID',
      MacAlgorithm: 'HMAC_SHA_256',
    });
    expect(calls.length).toBe(before + 1);
    expect(calls.at(-1)!.input.Message).toEqual(new Uint8Array(Buffer.from('hello')));
    const d = new Date(r.headers.date!).getTime();
    expect(Math.abs(d - Date.now())).toBeLessThan(5000);
  });

  it('accepts session credentials with their token, rejects a missing or wrong token', async () => {
    const ok = await signKms(url, { body: GOOD_BODY, credential: CRED2 });
    expect(ok['x-amz-security-token']).toBe(CRED2.sessionToken);
    expect((await rawRequest(url, { headers: ok, body: GOOD_BODY, agent })).status).toBe(200);
    const noToken = await signKms(url, {
      body: GOOD_BODY,
      credential: { accessKeyId: CRED2.accessKeyId, secretAccessKey: CRED2.secretAccessKey },
    });
    await expectRejected(
      noToken,
      GOOD_BODY,
      'UnrecognizedClientException',
      /security token included in the request is invalid/,
    );
    const wrong = await signKms(url, { body: GOOD_BODY, credential: { ...CRED2, sessionToken: 'other-token' } });
    await expectRejected(wrong, GOOD_BODY, 'UnrecognizedClientException');
    const extra = await signKms(url, { body: GOOD_BODY, credential: { ...CRED, sessionToken: 'unexpected' } });
    await expectRejected(extra, GOOD_BODY, 'UnrecognizedClientException');
  });

  it('wrong secret → InvalidSignatureException', async () => {
    const h = await signKms(url, {
      body: GOOD_BODY,
      credential: { accessKeyId: CRED.accessKeyId, secretAccessKey: 'wrong' },
    });
    await expectRejected(h, GOOD_BODY, 'InvalidSignatureException', /does not match the signature you provided/);
  });

  it('unknown access key → UnrecognizedClientException', async () => {
    const h = await signKms(url, {
      body: GOOD_BODY,
      credential: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: CRED.secretAccessKey },
    });
    await expectRejected(h, GOOD_BODY, 'UnrecognizedClientException', /security token/);
  });

  it('expired and future dates → InvalidSignatureException', async () => {
    const old = await signKms(url, { body: GOOD_BODY, date: new Date(Date.now() - 16 * 60_000) });
    await expectRejected(
      old,
      GOOD_BODY,
      'InvalidSignatureException',
      /^Signature expired: \d{8}T\d{6}Z is now earlier than/,
    );
    const future = await signKms(url, { body: GOOD_BODY, date: new Date(Date.now() + 16 * 60_000) });
    await expectRejected(future, GOOD_BODY, 'InvalidSignatureException', /^Signature not yet current/);
    // Within the window both ways: accepted.
    const skew = await signKms(url, { body: GOOD_BODY, date: new Date(Date.now() - 14 * 60_000) });
    expect((await rawRequest(url, { headers: skew, body: GOOD_BODY, agent })).status).toBe(200);
  });

  it('tampered body → InvalidSignatureException', async () => {
    const h = await signKms(url, { body: GOOD_BODY });
    await expectRejected(h, GOOD_BODY.replace('HMAC_SHA_256', 'HMAC_SHA_512'), 'InvalidSignatureException');
    // With x-amz-content-sha256 declared (as the JS SDK sends it).
    const { createHash } = await import('node:crypto');
    const h3 = await signKms(url, {
      body: GOOD_BODY,
      headers: { 'x-amz-content-sha256': createHash('sha256').update(GOOD_BODY).digest('hex') },
    });
    expect((await rawRequest(url, { headers: h3, body: GOOD_BODY, agent })).status).toBe(200);
    await expectRejected(h3, `${GOOD_BODY} `, 'InvalidSignatureException');
  });

  it('swapped X-Amz-Target → InvalidSignatureException', async () => {
    const h = await signKms(url, { body: GOOD_BODY, target: 'TrentService.GenerateMac' });
    h['x-amz-target'] = 'TrentService.DescribeKey';
    await expectRejected(h, GOOD_BODY, 'InvalidSignatureException', /does not match/);
  });

  it('X-Amz-Target or Host not signed → InvalidSignatureException', async () => {
    const h = await signKms(url, { body: GOOD_BODY });
    const auth = h.authorization!;
    const noTarget = { ...h, authorization: auth.replace(';x-amz-target', '') };
    await expectRejected(noTarget, GOOD_BODY, 'InvalidSignatureException', /'X-Amz-Target' must be a 'SignedHeader'/);
    const noHost = {
      ...h,
      authorization: auth.replace('SignedHeaders=content-type;host;', 'SignedHeaders=content-type;'),
    };
    expect(noHost.authorization).not.toBe(auth);
    await expectRejected(noHost, GOOD_BODY, 'InvalidSignatureException', /'Host' or ':authority'/);
  });

  it('missing Authorization → MissingAuthenticationTokenException; missing X-Amz-Date → IncompleteSignatureException', async () => {
    const h = await signKms(url, { body: GOOD_BODY });
    const { authorization: _a, ...noAuth } = h;
    await expectRejected(noAuth, GOOD_BODY, 'MissingAuthenticationTokenException', /Missing Authentication Token/);
    const { 'x-amz-date': _d, ...noDate } = h;
    await expectRejected(noDate, GOOD_BODY, 'IncompleteSignatureException', /X-Amz-Date/);
    const { host: _h, ...rest } = h;
    // A different Host than the one signed (e.g. a proxy rewrote it) → mismatch.
    await expectRejected({ ...rest, host: 'localhost:1' }, GOOD_BODY, 'InvalidSignatureException');
  });

  it('malformed Authorization → IncompleteSignatureException', async () => {
    const h = await signKms(url, { body: GOOD_BODY });
    await expectRejected(
      { ...h, authorization: 'AWS4-HMAC-SHA256 Credential=x' },
      GOOD_BODY,
      'IncompleteSignatureException',
    );
    await expectRejected({ ...h, authorization: 'Bearer abc' }, GOOD_BODY, 'IncompleteSignatureException');
  });

  it('wrong scope: region, service, date → InvalidSignatureException', async () => {
    await expectRejected(
      await signKms(url, { body: GOOD_BODY, region: 'eu-west-1' }),
      GOOD_BODY,
      'InvalidSignatureException',
      /valid region/,
    );
    await expectRejected(
      await signKms(url, { body: GOOD_BODY, service: 's3' }),
      GOOD_BODY,
      'InvalidSignatureException',
      /correct service: 'kms'/,
    );
    const h = await signKms(url, { body: GOOD_BODY });
    const a = h.authorization!.replace(/Credential=([^/]+)\/(\d{8})/, (_m, id) => `Credential=${id}/20000101`);
    await expectRejected(
      { ...h, authorization: a },
      GOOD_BODY,
      'InvalidSignatureException',
      /Date in Credential scope does not match/,
    );
  });

  it('repeated headers are canonicalized from rawHeaders (joined with ",")', async () => {
    // Sign with the value "a,b", send it as two header lines: same canonical value.
    const h = await signKms(url, { body: GOOD_BODY, headers: { 'x-amz-meta-x': 'a,b' } });
    const pairs = Object.entries(h).filter(([k]) => k !== 'x-amz-meta-x');
    pairs.push(['x-amz-meta-x', 'a'], ['x-amz-meta-x', 'b']);
    const r = await rawRequest(url, { headers: pairs, body: GOOD_BODY, agent });
    expect(r.status, r.body).toBe(200);
  });
});

describe('--auth any (emulator mode)', () => {
  it('accepts any well-formed in-window signature from any key and region, still rejects expired or malformed ones', async () => {
    const { client, calls } = stub();
    const s = await listen({ client, auth: 'any', port: 0, log: null });
    try {
      const h = await signKms(s.url, {
        body: GOOD_BODY,
        credential: { accessKeyId: 'ANYTHING', secretAccessKey: 'whatever' },
        region: 'ap-south-1',
      });
      expect((await rawRequest(s.url, { headers: h, body: GOOD_BODY })).status).toBe(200);
      const old = await signKms(s.url, { body: GOOD_BODY, date: new Date(Date.now() - 20 * 60_000) });
      expect((await rawRequest(s.url, { headers: old, body: GOOD_BODY })).json?.__type).toBe(
        'InvalidSignatureException',
      );
      const { authorization: _a, ...noAuth } = h;
      expect((await rawRequest(s.url, { headers: noAuth, body: GOOD_BODY })).json?.__type).toBe(
        'MissingAuthenticationTokenException',
      );
      expect(calls.length).toBe(1);
    } finally {
      await s.close();
    }
  });
});

describe('credentials file', () => {
  it('accepts several pairs (one with a session token); rejects malformed files without echoing secrets', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { startServer } = await import('../src/server/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-cred-'));
    try {
      const file = join(dir, 'creds.json');
      writeFileSync(
        file,
        JSON.stringify({
          credentials: [
            CRED,
            {
              AccessKeyId: CRED2.accessKeyId,
              SecretAccessKey: CRED2.secretAccessKey,
              SessionToken: CRED2.sessionToken,
            },
          ],
        }),
        { mode: 0o600 },
      );
      const { client, calls } = stub();
      const s = await startServer({ client, credentialsFile: file, port: 0, log: false });
      try {
        for (const credential of [CRED, CRED2]) {
          const h = await signKms(s.url, { body: GOOD_BODY, credential });
          expect((await rawRequest(s.url, { headers: h, body: GOOD_BODY })).status).toBe(200);
        }
        expect(calls.length).toBe(2);
      } finally {
        await s.close();
      }
      writeFileSync(file, JSON.stringify({ credentials: [{ accessKeyId: 'AKID', secretAccessKey: '' }] }));
      await expect(startServer({ client, credentialsFile: file, port: 0, log: false })).rejects.toThrow(
        /secretAccessKey is missing/,
      );
      writeFileSync(file, '{"credentials": [{"accessKeyId":"AKID","secretAccessKey":"s3cr3t"');
      const err = await startServer({ client, credentialsFile: file, port: 0, log: false }).catch((e: Error) => e);
      expect(String(err)).toMatch(/not valid JSON/);
      expect(String(err)).not.toContain('s3cr3t');
      await expect(startServer({ client, port: 0, log: false })).rejects.toThrow(/KMS_HMAC_ACCESS_KEY_ID/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
