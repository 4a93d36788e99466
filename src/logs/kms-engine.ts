/**
 * A MacEngine over the KMS layer: the key is resolved (ID, ARN, alias, alias
 * ARN) and its state checked on every batch, exactly as GenerateMac /
 * VerifyMac would, so a key disabled or scheduled for deletion mid-run stops
 * signing and verifying with the KMS error (DisabledException, …).
 *
 * Every log API (signLog, verifyLog, followLog, the record streams) names its
 * key the same way — KeyOptions — and a verifier is always told which key to
 * trust: it never takes the key a sidecar names.
 */
import type { MacAlgorithm } from '../backend/types.js';
import { MAC_LENGTH } from '../backend/types.js';
import type { KmsHmacClient } from '../client/client.js';
import type { MacEngine } from './engine.js';

type ClientLike = Pick<
  KmsHmacClient,
  'describeKey' | 'generateMac' | 'verifyMac' | 'generateMacBatchAsync' | 'verifyMacBatchAsync' | 'verifyMacBatch'
>;

/** The key a log API signs or verifies with: an engine, or a client and a key id (ID, ARN, alias or alias ARN). */
export interface KeyOptions {
  engine?: MacEngine;
  client?: ClientLike;
  keyId?: string;
  /** With client + keyId: the MAC algorithm (default: the key's only one; verify: the sidecar's). */
  algorithm?: MacAlgorithm;
}

/** Throws a TypeError unless `opts` names a key; `caller` starts the message. */
export function assertKeyOptions(opts: KeyOptions | undefined, caller: string): void {
  if (!opts || typeof opts !== 'object')
    throw new TypeError(`${caller}: options are required (engine, or client and keyId)`);
  if (opts.engine) return;
  if (!opts.client || typeof opts.keyId !== 'string' || opts.keyId === '') {
    throw new TypeError(
      `${caller}: name the key: pass an engine, or a client and a keyId (key id, key ARN, alias or alias ARN)`,
    );
  }
}

/** The engine `opts` names; `algorithm` is the fallback when opts gives none. */
export async function engineFor(opts: KeyOptions, caller: string, algorithm?: MacAlgorithm): Promise<MacEngine> {
  assertKeyOptions(opts, caller);
  return opts.engine ?? engineFromClient(opts.client!, opts.keyId!, opts.algorithm ?? algorithm);
}

/**
 * Resolves `keyId` once (for its ARN and algorithm), then MACs through the
 * client. `algorithm` defaults to the key's one MacAlgorithm; another
 * algorithm fails with InvalidKeyUsageException on first use, as in KMS.
 */
export async function engineFromClient(
  client: ClientLike,
  keyId: string,
  algorithm?: MacAlgorithm,
): Promise<MacEngine> {
  const { KeyMetadata: md } = await client.describeKey({ KeyId: keyId });
  const alg: MacAlgorithm = algorithm ?? md.MacAlgorithms[0]!;
  const KeyId = md.Arn;
  return {
    keyArn: md.Arn,
    algorithm: alg,
    macLength: MAC_LENGTH[alg],
    async macPacked(data, offsets, out) {
      return (await client.generateMacBatchAsync({ KeyId, MacAlgorithm: alg, Data: data, Offsets: offsets, Out: out }))
        .Macs;
    },
    async verifyPacked(data, offsets, macs, results) {
      return (
        await client.verifyMacBatchAsync({
          KeyId,
          MacAlgorithm: alg,
          Data: data,
          Offsets: offsets,
          Macs: macs,
          Out: results,
        })
      ).MacValid;
    },
    verifyPackedSync: (data, offsets, macs) =>
      client.verifyMacBatch({ KeyId, MacAlgorithm: alg, Data: data, Offsets: offsets, Macs: macs }).MacValid,
    async mac(message) {
      return Uint8Array.from((await client.generateMac({ KeyId, MacAlgorithm: alg, Message: message })).Mac);
    },
    async verify(message, mac) {
      try {
        await client.verifyMac({ KeyId, MacAlgorithm: alg, Message: message, Mac: mac });
        return true;
      } catch (err) {
        if ((err as { name?: string }).name === 'KMSInvalidMacException') return false;
        throw err;
      }
    },
  };
}
