import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caught } from './caught.js';
import { KmsHmacClient } from '../src/client/client.js';
import { packMessages } from '../src/mac/key.js';
import { random } from './support/random.js';

async function setup(spec = 'HMAC_256') {
  const client = new KmsHmacClient();
  const { KeyMetadata } = await client.createKey({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC' });
  const material = client.keyStore.getKey(KeyMetadata.KeyId)!.keyMaterial!;
  return { client, key: KeyMetadata, material: Buffer.from(material) };
}

const messages = Array.from({ length: 300 }, (_, i) => random.bytes(1 + ((i * 37) % 4096)));

describe('batch extensions', () => {
  it('generateMacBatch (array and packed) equals node:crypto and single GenerateMac', async () => {
    const { client, key, material } = await setup();
    const a = client.generateMacBatch({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Messages: messages });
    expect(a.KeyId).toBe(key.Arn);
    expect(a.MacLength).toBe(32);
    expect(a.Macs.length).toBe(300 * 32);
    const { data, offsets } = packMessages(messages);
    const p = client.generateMacBatch({ KeyId: key.Arn, MacAlgorithm: 'HMAC_SHA_256', Data: data, Offsets: offsets });
    expect(p.Macs).toEqual(a.Macs);
    for (let i = 0; i < messages.length; i += 29) {
      const expected = createHmac('sha256', material).update(messages[i]!).digest();
      expect(Buffer.from(a.Macs.subarray(i * 32, (i + 1) * 32))).toEqual(expected);
      expect(
        client.generateMacSync({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: messages[i]! }).Mac,
      ).toEqual(new Uint8Array(expected));
    }
    const asyncA = await client.generateMacBatchAsync({
      KeyId: key.KeyId,
      MacAlgorithm: 'HMAC_SHA_256',
      Messages: messages,
    });
    expect(asyncA.Macs).toEqual(a.Macs);
    const asyncP = await client.generateMacBatchAsync({
      KeyId: key.KeyId,
      MacAlgorithm: 'HMAC_SHA_256',
      Data: data,
      Offsets: offsets,
    });
    expect(asyncP.Macs).toEqual(a.Macs);
    // empty batch
    expect(client.generateMacBatch({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256', Messages: [] }).Macs.length).toBe(
      0,
    );
  });

  it('verifyMacBatch: per-item results, no exception per item; every input form', async () => {
    const { client, key } = await setup('HMAC_384');
    const g = client.generateMacBatch({ KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_384', Messages: messages });
    const macs = Array.from({ length: messages.length }, (_, i) => g.Macs.slice(i * 48, (i + 1) * 48));
    macs[3]![0]! ^= 1;
    macs[7] = macs[7]!.subarray(0, 40); // wrong length is just invalid
    const packedMacs = new Uint8Array(g.Macs);
    packedMacs[3 * 48]! ^= 1;
    packedMacs[7 * 48]! ^= 1;
    const { data, offsets } = packMessages(messages);
    const expected = new Uint8Array(messages.length).fill(1);
    expected[3] = 0;
    expected[7] = 0;
    const base = { KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_384' };
    const r1 = client.verifyMacBatch({ ...base, Messages: messages, Macs: macs });
    expect(r1.MacValid).toEqual(expected);
    expect(r1.KeyId).toBe(key.Arn);
    expect(client.verifyMacBatch({ ...base, Data: data, Offsets: offsets, Macs: packedMacs }).MacValid).toEqual(
      expected,
    );
    expect(client.verifyMacBatch({ ...base, Messages: messages, Macs: packedMacs }).MacValid).toEqual(expected);
    expect(client.verifyMacBatch({ ...base, Data: data, Offsets: offsets, Macs: macs }).MacValid).toEqual(expected);
    expect((await client.verifyMacBatchAsync({ ...base, Messages: messages, Macs: macs })).MacValid).toEqual(expected);
    expect(
      (await client.verifyMacBatchAsync({ ...base, Data: data, Offsets: offsets, Macs: packedMacs })).MacValid,
    ).toEqual(expected);
  });

  it('KMS validation per message, reporting the failing index', async () => {
    const { client, key } = await setup();
    const base = { KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256' };
    let e = await caught(() =>
      client.generateMacBatch({ ...base, Messages: [new Uint8Array(1), new Uint8Array(4097)] }),
    );
    expect(e.name).toBe('ValidationException');
    expect(e.message).toBe(
      "1 validation error detected: Value at 'messages[1]' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    expect(e.BatchIndex).toBe(1);
    e = await caught(
      client.generateMacBatchAsync({ ...base, Messages: [new Uint8Array(1), new Uint8Array(1), new Uint8Array(0)] }),
    );
    expect(e.BatchIndex).toBe(2);
    expect(e.message).toMatch(/'messages\[2\]'.*greater than or equal to 1$/);
    e = await caught(() =>
      client.generateMacBatch({ ...base, Data: new Uint8Array(10), Offsets: new Uint32Array([0, 5, 5, 10]) }),
    );
    expect(e.BatchIndex).toBe(1);
    e = await caught(() =>
      client.generateMacBatch({ ...base, Data: new Uint8Array(10), Offsets: new Uint32Array([0, 11]) }),
    );
    expect(e.name).toBe('ValidationException');
    e = await caught(() =>
      client.verifyMacBatch({ ...base, Messages: [new Uint8Array(1)], Macs: [new Uint8Array(0)] }),
    );
    expect(e.message).toMatch(/'macs\[0\]'/);
    e = await caught(() => client.verifyMacBatch({ ...base, Messages: [new Uint8Array(1)], Macs: new Uint8Array(31) }));
    expect(e.name).toBe('ValidationException');
    // the single-request rules still apply
    e = await caught(() =>
      client.generateMacBatch({ ...base, MacAlgorithm: 'HMAC_SHA_512', Messages: [new Uint8Array(1)] }),
    );
    expect(e.name).toBe('InvalidKeyUsageException');
    e = await caught(() => client.generateMacBatch({ ...base, MacAlgorithm: 'BAD', Messages: [new Uint8Array(1)] }));
    expect(e.message).toMatch(/at 'macAlgorithm'/);
    e = await caught(() => client.generateMacBatch({ ...base, Messages: [new Uint8Array(1)], DryRun: true }));
    expect(e.name).toBe('DryRunOperationException');
    await client.disableKey({ KeyId: key.KeyId });
    e = await caught(
      client.verifyMacBatchAsync({ ...base, Messages: [new Uint8Array(1)], Macs: [new Uint8Array(32)] }),
    );
    expect(e.name).toBe('DisabledException');
  });

  it("Out: results written into the caller's buffer (sync and async), checked for type and size", async () => {
    const { client, key } = await setup();
    const base = { KeyId: key.KeyId, MacAlgorithm: 'HMAC_SHA_256' };
    const { data, offsets } = packMessages(messages);
    const expected = client.generateMacBatch({ ...base, Data: data, Offsets: offsets }).Macs;
    const out = new Uint8Array(300 * 32 + 5).fill(0xee);
    const g = await client.generateMacBatchAsync({ ...base, Data: data, Offsets: offsets, Out: out });
    expect(g.Macs).toEqual(expected);
    expect(g.Macs.buffer).toBe(out.buffer);
    expect(out.subarray(300 * 32)).toEqual(new Uint8Array(5).fill(0xee)); // nothing beyond the results
    const again = new Uint8Array(300 * 32);
    expect(client.generateMacBatch({ ...base, Messages: messages, Out: again }).Macs.buffer).toBe(again.buffer);
    expect(again).toEqual(expected);

    const macs = new Uint8Array(expected);
    macs[5 * 32]! ^= 1;
    const results = new Uint8Array(300).fill(9);
    const v = await client.verifyMacBatchAsync({ ...base, Data: data, Offsets: offsets, Macs: macs, Out: results });
    expect(v.MacValid.buffer).toBe(results.buffer);
    expect(results[5]).toBe(0);
    expect(results.filter((x) => x === 1).length).toBe(299);
    const arrayMacs = Array.from({ length: 300 }, (_, i) => expected.subarray(i * 32, (i + 1) * 32));
    arrayMacs[2] = arrayMacs[2]!.subarray(0, 31); // the wrong length is 0 in Out too
    expect(client.verifyMacBatch({ ...base, Messages: messages, Macs: arrayMacs, Out: results }).MacValid[2]).toBe(0);

    let e = await caught(
      client.generateMacBatchAsync({ ...base, Data: data, Offsets: offsets, Out: new Uint8Array(300 * 32 - 1) }),
    );
    expect(e.name).toBe('ValidationException');
    expect(e.message).toMatch(/Out must hold at least 9600 bytes/);
    e = await caught(() =>
      client.verifyMacBatch({ ...base, Data: data, Offsets: offsets, Macs: macs, Out: new Uint8Array(299) }),
    );
    expect(e.name).toBe('ValidationException');
    e = await caught(() =>
      client.generateMacBatch({ ...base, Messages: messages, Out: new Uint32Array(2400) as unknown as Uint8Array }),
    );
    expect(e.message).toBe('Out must be a Uint8Array');
  });

  it('a large async batch on all cores', async () => {
    const { client, key, material } = await setup();
    const many = Array.from({ length: 20_000 }, (_, i) => Buffer.from(`record-${i}-${'x'.repeat(i % 50)}`));
    const { data, offsets } = packMessages(many);
    const out = await client.generateMacBatchAsync({
      KeyId: key.KeyId,
      MacAlgorithm: 'HMAC_SHA_256',
      Data: data,
      Offsets: offsets,
    });
    for (const i of [0, 1, 9_999, 19_999]) {
      expect(Buffer.from(out.Macs.subarray(i * 32, (i + 1) * 32))).toEqual(
        createHmac('sha256', material).update(many[i]!).digest(),
      );
    }
    const v = await client.verifyMacBatchAsync({
      KeyId: key.KeyId,
      MacAlgorithm: 'HMAC_SHA_256',
      Data: data,
      Offsets: offsets,
      Macs: out.Macs,
    });
    expect(v.MacValid.every((x) => x === 1)).toBe(true);
  });
});
