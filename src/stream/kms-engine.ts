/**
 * A MacEngine over the KMS layer: the key is resolved (ID, ARN, alias, alias
 * ARN) and its state checked on every batch, exactly as GenerateMac /
 * VerifyMac would, so a key disabled or scheduled for deletion mid-run stops
 * signing and verifying with the KMS error (DisabledException, …).
 */
import type { MacAlgorithm } from '../backend/types.js';
import { MAC_LENGTH } from '../backend/types.js';
import type { KmsHmacClient } from '../client.js';
import type { MacEngine } from './engine.js';

type ClientLike = Pick<KmsHmacClient, 'describeKey' | 'generateMac' | 'verifyMac' | 'generateMacBatchAsync' | 'verifyMacBatchAsync'> &
  Partial<Pick<KmsHmacClient, 'verifyMacBatch'>>;

/**
 * Resolves `keyId` once (for its ARN and algorithm), then MACs through the
 * client. `algorithm` defaults to the key's one MacAlgorithm; another
 * algorithm fails with InvalidKeyUsageException on first use, as in KMS.
 */
export async function engineFromClient(client: ClientLike, keyId: string, algorithm?: MacAlgorithm): Promise<MacEngine> {
  const { KeyMetadata: md } = await client.describeKey({ KeyId: keyId });
  const alg: MacAlgorithm = algorithm ?? md.MacAlgorithms[0]!;
  const KeyId = md.Arn;
  return {
    keyArn: md.Arn,
    algorithm: alg,
    macLength: MAC_LENGTH[alg],
    async macPacked(data, offsets) {
      return (await client.generateMacBatchAsync({ KeyId, MacAlgorithm: alg, Data: data, Offsets: offsets })).Macs;
    },
    async verifyPacked(data, offsets, macs) {
      return (await client.verifyMacBatchAsync({ KeyId, MacAlgorithm: alg, Data: data, Offsets: offsets, Macs: macs })).MacValid;
    },
    verifyPackedSync: client.verifyMacBatch
      ? (data, offsets, macs) => client.verifyMacBatch!({ KeyId, MacAlgorithm: alg, Data: data, Offsets: offsets, Macs: macs }).MacValid
      : undefined,
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
