/** createSignStream / createVerifyStream: order, backpressure, round trip through the KMS client. */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { KmsHmacClient } from '../src/client/client.js';
import { createMacKey } from '../src/mac/key.js';
import {
  anchorLine,
  anchorVerifies,
  createSignStream,
  createVerifyStream,
  engineFromMacKey,
  type CheckpointAnchor,
  type SignedRecord,
  type VerifiedRecord,
} from '../src/logs/index.js';
import { random } from './support/random.js';

async function collect<T>(
  src: Iterable<unknown> | AsyncIterable<unknown>,
  ...stages: NodeJS.ReadWriteStream[]
): Promise<T[]> {
  const out: T[] = [];
  await pipeline(
    Readable.from(src as Iterable<unknown>),
    ...(stages as [NodeJS.ReadWriteStream]),
    new Writable({
      objectMode: true,
      highWaterMark: 1,
      write(chunk: T, _e, cb) {
        out.push(chunk);
        setImmediate(cb); // a slow consumer: exercises backpressure
      },
    }),
  );
  return out;
}

describe('record streams', () => {
  it('sign then verify round trip, in order, through the KMS client (alias)', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    await client.createAlias({ AliasName: 'alias/streams', TargetKeyId: KeyMetadata.KeyId });
    const records = Array.from({ length: 10_000 }, (_, i) => (i % 997 === 0 ? random.bytes(5000) : `record ${i}`));
    const signer = createSignStream({ client, keyId: 'alias/streams', batchSize: 256 });
    const signed = await collect<SignedRecord>(records, signer);
    expect(signed.length).toBe(records.length);
    expect(signed.map((s) => s.seq)).toEqual(records.map((_, i) => i));
    expect(signer.keyArn).toBe(KeyMetadata.Arn);

    const tampered = signed.map((s) => ({ record: s.record, mac: s.mac }));
    tampered[5000] = { ...tampered[5000]!, record: Buffer.from('forged') };
    [tampered[10], tampered[11]] = [tampered[11]!, tampered[10]!];
    const verified = await collect<VerifiedRecord>(
      tampered,
      createVerifyStream({ client, keyId: KeyMetadata.Arn, streamId: signer.streamId, batchSize: 300 }),
    );
    expect(verified.filter((v) => !v.valid).map((v) => v.seq)).toEqual([10, 11, 5000]);

    // another stream id: nothing verifies
    const other = await collect<VerifiedRecord>(
      tampered.slice(0, 5),
      createVerifyStream({ client, keyId: KeyMetadata.Arn, streamId: random.bytes(16) }),
    );
    expect(other.every((v) => !v.valid)).toBe(true);
    await client.close();
  });

  it('records are checked at their position: a carried seq is compared, never trusted (dropped, reordered, relabelled)', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const signer = createSignStream({ client, keyId: KeyMetadata.KeyId, firstSeq: 100 });
    const signed = await collect<SignedRecord>(
      Array.from({ length: 6 }, (_, i) => `r${i}`),
      signer,
    );
    const verify = (input: object[]) =>
      collect<VerifiedRecord>(
        input,
        createVerifyStream({ client, keyId: KeyMetadata.KeyId, streamId: signer.streamId, firstSeq: 100 }),
      );

    // intact, carrying their own seq: valid
    const intact = await verify(signed);
    expect(intact.map((v) => [v.seq, v.valid])).toEqual(signed.map((s) => [s.seq, true]));

    // the old verifier's hole: records reordered and dropped, each carrying the seq it was signed with
    const attack = [signed[0]!, signed[2]!, signed[1]!, signed[4]!, signed[5]!];
    const got = await verify(attack);
    expect(got.map((v) => [v.seq, v.valid, v.problem, v.claimedSeq])).toEqual([
      [100, true, undefined, undefined],
      [101, false, 'order', 102],
      [102, false, 'order', 101],
      [103, false, 'order', 104],
      [104, false, 'order', 105],
    ]);
    // the same without carried seqs: the MACs fail at their new positions
    const bare = await verify(attack.map(({ record, mac }) => ({ record, mac })));
    expect(bare.map((v) => [v.valid, v.problem])).toEqual([
      [true, undefined],
      [false, 'mac'],
      [false, 'mac'],
      [false, 'mac'],
      [false, 'mac'],
    ]);
    // a correct MAC relabelled with another seq is still an issue
    const relabelled = await verify([{ ...signed[0]!, seq: 7 }]);
    expect(relabelled[0]).toMatchObject({ seq: 100, valid: false, problem: 'order', claimedSeq: 7 });
    await expect(verify([{ ...signed[0]!, seq: 'x' }])).rejects.toThrow(TypeError);
    expect(() => createVerifyStream({ streamId: signer.streamId } as never)).toThrow(/name the key/);
    await client.close();
  });

  it('failFast errors the stream; a disabled key errors it with DisabledException', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_512', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const signer = createSignStream({ client, keyId: KeyMetadata.KeyId });
    const signed = await collect<SignedRecord>(['a', 'b', 'c'], signer);
    expect(signed[0]!.mac.length).toBe(64);
    const bad = [{ ...signed[0]!, record: Buffer.from('x') }];
    await expect(
      collect(bad, createVerifyStream({ client, keyId: KeyMetadata.KeyId, streamId: signer.streamId, failFast: true })),
    ).rejects.toMatchObject({
      name: 'KMSInvalidMacException',
    });
    await client.disableKey({ KeyId: KeyMetadata.KeyId });
    await expect(collect(['a'], createSignStream({ client, keyId: KeyMetadata.KeyId }))).rejects.toMatchObject({
      name: 'DisabledException',
    });
    await client.close();
  });

  it('checkpoints: every N records and at the end, after the records they seal, chained, each verifiable on its own', async () => {
    const engine = engineFromMacKey(
      createMacKey('HMAC_SHA_256', random.bytes(32)),
      'arn:aws:kms:us-east-1:111122223333:key/cp',
      'HMAC_SHA_256',
    );
    const signer = createSignStream({ engine, checkpointEvery: 100, batchSize: 64 });
    const cps: CheckpointAnchor[] = [];
    const signed: SignedRecord[] = [];
    signer.on('checkpoint', (c: CheckpointAnchor) => {
      cps.push(c);
      // emitted once the records it seals were pushed: taken already, or waiting on the readable side
      expect(signed.length + signer.readableLength).toBeGreaterThanOrEqual(c.records);
    });
    const records = Array.from({ length: 250 }, (_, i) => `rec ${i}`);
    await pipeline(
      Readable.from(records),
      signer,
      new Writable({
        objectMode: true,
        highWaterMark: 1,
        write(r: SignedRecord, _e, cb) {
          signed.push(r);
          setImmediate(cb);
        },
      }),
    );
    expect(cps.map((c) => [c.checkpoint, c.records])).toEqual([
      [0, 100],
      [1, 200],
      [2, 250],
    ]);
    let prev = Buffer.alloc(32).toString('base64');
    for (const c of cps) {
      expect(await anchorVerifies(c, engine)).toBe(true);
      expect(c.prev).toBe(prev);
      const first = c.checkpoint * 100;
      const macs = Buffer.concat(signed.slice(first, c.records).map((s) => s.mac));
      expect(c.digest).toBe(createHash('sha256').update(macs).digest('base64'));
      expect(c.logBytes).toBe(records.slice(0, c.records).join('').length);
      prev = c.mac;
    }
    expect(await anchorVerifies({ ...cps[1]!, records: 201 }, engine)).toBe(false);

    // a later run continues the chain, the stream id and the sequence
    const next = createSignStream({ engine, checkpointEvery: 100, chainFrom: cps.at(-1)! });
    const more: CheckpointAnchor[] = [];
    next.on('checkpoint', (c: CheckpointAnchor) => more.push(c));
    const out = await collect<SignedRecord>(['a', 'b'], next);
    expect(out.map((o) => o.seq)).toEqual([250, 251]);
    expect(next.streamId).toBe(signer.streamId);
    expect(more).toMatchObject([
      { checkpoint: 3, records: 252, logBytes: cps.at(-1)!.logBytes + 2, prev: cps.at(-1)!.mac },
    ]);
    expect(() => createSignStream({ engine, chainFrom: cps[0]!, firstSeq: 5 })).toThrow(RangeError);
    expect(() => createSignStream({ engine, checkpointEvery: 0 })).toThrow(RangeError);
  });

  it('a checkpoint for records that wait, after checkpointIntervalMs, without the stream ending', async () => {
    const engine = engineFromMacKey(
      createMacKey('HMAC_SHA_256', random.bytes(32)),
      'arn:aws:kms:us-east-1:111122223333:key/cp',
      'HMAC_SHA_256',
    );
    const s = createSignStream({ engine, flushMs: 5, checkpointIntervalMs: 40 });
    const got = new Promise<CheckpointAnchor>((resolve) => s.once('checkpoint', resolve));
    s.resume();
    s.write('one');
    s.write('two');
    expect(await got).toMatchObject({ checkpoint: 0, records: 2 });
    s.end();
  });

  it('a slow trickle of records is flushed without waiting for a full batch', async () => {
    const client = new KmsHmacClient();
    const { KeyMetadata } = await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const s = createSignStream({ client, keyId: KeyMetadata.KeyId, flushMs: 5 });
    const got = new Promise<SignedRecord>((resolve) => s.once('data', resolve));
    s.write('one');
    const first = await got;
    expect(first.seq).toBe(0);
    s.end();
    s.resume();
    await finished(s); // its last checkpoint needs the client
    await client.close();
  });
});

describe('createVerifyStream with checkpoints: the shipped checkpoints are the authority', () => {
  const engine = engineFromMacKey(
    createMacKey('HMAC_SHA_256', random.bytes(32)),
    'arn:aws:kms:us-east-1:111122223333:key/cp',
    'HMAC_SHA_256',
  );
  const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-streams-'));
  const records = Array.from({ length: 250 }, (_, i) => `rec ${i}`);

  async function signed(log?: string) {
    const lines: string[] = [];
    const signer = createSignStream({
      engine,
      checkpointEvery: 100,
      log,
      onCheckpoint: (c) => void lines.push(anchorLine(c)),
    });
    const out = await collect<SignedRecord>(records, signer);
    const file = join(dir, `${signer.streamId}.jsonl`);
    writeFileSync(file, lines.join(''));
    return { out, file, streamId: signer.streamId, logId: signer.logId };
  }
  const verify = async (items: { record: Buffer; mac: Buffer }[], streamId: string, checkpoints: string) => {
    const v = createVerifyStream({ engine, streamId, checkpoints });
    const out = await collect<VerifiedRecord>(items, v);
    return { out, issues: v.issues.map((i) => i.kind) };
  };

  it('intact: no issue; every checkpoint carries the log id and a name', async () => {
    const s = await signed('orders');
    const lines = readFileSync(s.file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.every((l) => l.logId === s.logId && l.log === 'orders' && l.epoch === 0)).toBe(true);
    const r = await verify(s.out, s.streamId, s.file);
    expect(r.issues).toEqual([]);
    expect(r.out.every((o) => o.valid)).toBe(true);
  });

  it('the records cut short below a shipped checkpoint: anchor-missing; a MAC changed: anchor-mismatch', async () => {
    const s = await signed();
    expect((await verify(s.out.slice(0, 150), s.streamId, s.file)).issues).toEqual(['anchor-missing']);
    const changed = s.out.map((o, i) => (i === 120 ? { ...o, mac: Buffer.alloc(32, 7) } : o));
    expect((await verify(changed, s.streamId, s.file)).issues).toEqual(['anchor-mismatch']);
  });

  it('a stream signed afresh is in none of them: anchor-missing; a checkpoint shipped twice, differently: fork', async () => {
    const s = await signed();
    const other = await signed();
    const r = await verify(other.out, other.streamId, s.file);
    expect(r.issues).toEqual(['anchor-missing']);
    const both = join(dir, 'both.jsonl');
    const mine = readFileSync(s.file, 'utf8').trim().split('\n');
    const twin = JSON.parse(mine[1]!);
    twin.time = new Date(Date.parse(twin.time) + 1).toISOString(); // the same checkpoint, sealed a millisecond later
    const { anchor } = await (async () => {
      // re-MAC it with the key, as a second signer with the key would
      const { checkpointMacInput } = await import('../src/logs/format.js');
      const fields = {
        index: twin.checkpoint,
        records: twin.records,
        logBytes: twin.logBytes,
        timeMs: Date.parse(twin.time),
        epoch: 0,
      };
      const input = checkpointMacInput(
        Buffer.from(twin.streamId, 'hex'),
        fields,
        Buffer.from(twin.prev, 'base64'),
        Buffer.from(twin.digest, 'base64'),
        3,
      );
      return { anchor: { ...twin, mac: Buffer.from(await engine.mac(input)).toString('base64') } };
    })();
    writeFileSync(both, `${mine.join('\n')}\n${JSON.stringify(anchor)}\n`);
    expect((await verify(s.out, s.streamId, both)).issues).toEqual(['fork']);
  });
});
