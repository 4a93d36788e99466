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
import type { SendingClient } from '../client/fast-path.js';
import { secretBuffer, type MacEngine } from './engine.js';

type ClientLike = Pick<
  KmsHmacClient,
  'describeKey' | 'generateMac' | 'verifyMac' | 'generateMacBatchAsync' | 'verifyMacBatchAsync' | 'verifyMacBatch'
>;

/**
 * The key a log API signs or verifies with: an engine, or a client and a key
 * id (ID, ARN, alias or alias ARN), or a remote KMS and a key id.
 */
export interface KeyOptions {
  engine?: MacEngine;
  client?: ClientLike;
  /**
   * Anything with `send(command)` that answers GenerateMac for `keyId`: an
   * `@aws-sdk/client-kms` KMSClient (AWS KMS, or `kms-hmac serve` at its
   * endpoint), or `createFastPathClient(…)`. Only forward-secure streams can
   * be signed or verified this way: one GenerateMac per stream, none per record.
   */
  kms?: SendingClient;
  keyId?: string;
  /** With client + keyId: the MAC algorithm (default: the key's only one; verify: the sidecar's). */
  algorithm?: MacAlgorithm;
}

/** Throws a TypeError unless `opts` names a key; `caller` starts the message. */
export function assertKeyOptions(opts: KeyOptions | undefined, caller: string): void {
  if (!opts || typeof opts !== 'object')
    throw new TypeError(`${caller}: options are required (engine, or client and keyId)`);
  if (opts.engine) return;
  if (opts.kms !== undefined && typeof opts.kms?.send !== 'function')
    throw new TypeError(`${caller}: kms must have a send(command) method (a KMSClient)`);
  if (!(opts.client || opts.kms) || typeof opts.keyId !== 'string' || opts.keyId === '') {
    throw new TypeError(
      `${caller}: name the key: pass an engine, or a client (or kms) and a keyId (key id, key ARN, alias or alias ARN)`,
    );
  }
}

/** The engine `opts` names; `algorithm` is the fallback when opts gives none. */
export async function engineFor(opts: KeyOptions, caller: string, algorithm?: MacAlgorithm): Promise<MacEngine> {
  assertKeyOptions(opts, caller);
  if (opts.engine) return opts.engine;
  if (opts.client) return engineFromClient(opts.client, opts.keyId!, opts.algorithm ?? algorithm);
  return engineFromKms(opts.kms!, opts.keyId!, opts.algorithm ?? algorithm);
}

/** Engines that reach their key over the network: one MAC at a time, so they key forward-secure streams only. */
const remote = new WeakSet<MacEngine>();

/** Whether `engine` MACs through a remote KMS (engineFromKms): it can seed forward-secure streams, not MAC records. */
export function isRemoteEngine(engine: MacEngine): boolean {
  return remote.has(engine);
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
      const { Mac } = await client.generateMac({ KeyId, MacAlgorithm: alg, Message: message });
      const out = secretBuffer(Mac.length); // (wiped by whoever it is for: it may be a stream's seed)
      out.set(Mac);
      Mac.fill(0); // a view of the client's MAC pool: no copy left there (this may be a stream's seed)
      return out;
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

interface SdkKms {
  GenerateMacCommand: new (input: object) => unknown;
  VerifyMacCommand: new (input: object) => unknown;
  DescribeKeyCommand: new (input: object) => unknown;
}

let sdk: Promise<SdkKms> | undefined;
function loadSdk(): Promise<SdkKms> {
  sdk ??= import('@aws-sdk/client-kms').then(
    (m) => m as unknown as SdkKms,
    (err: unknown) => {
      sdk = undefined;
      throw new TypeError(
        `a kms client is driven with @aws-sdk/client-kms's commands, which did not load: ${(err as Error).message}`,
      );
    },
  );
  return sdk;
}

const errName = (err: unknown) => (err as { name?: string } | null)?.name;
const REMOTE_ONLY =
  'a key reached through a remote KMS (the kms option) signs and verifies forward-secure streams only: their records are MACed with keys derived from one GenerateMac per stream';

/**
 * An engine over a remote KMS (anything with `send(command)`): GenerateMac
 * and VerifyMac one message at a time. Its batch methods throw: it seeds
 * forward-secure streams (keys.ts), whose records are MACed locally. The key
 * is described once for its ARN and algorithm; a caller allowed GenerateMac
 * but not DescribeKey names the algorithm, and the ARN is read from a
 * GenerateMac answer.
 */
export async function engineFromKms(kms: SendingClient, keyId: string, algorithm?: MacAlgorithm): Promise<MacEngine> {
  const c = await loadSdk();
  let arn: string;
  let alg: MacAlgorithm;
  try {
    const out = (await kms.send(new c.DescribeKeyCommand({ KeyId: keyId }))) as {
      KeyMetadata: { Arn: string; MacAlgorithms?: MacAlgorithm[] };
    };
    arn = out.KeyMetadata.Arn;
    alg = algorithm ?? out.KeyMetadata.MacAlgorithms?.[0] ?? 'HMAC_SHA_256';
  } catch (err) {
    if (errName(err) !== 'AccessDeniedException' || algorithm === undefined) throw err;
    alg = algorithm;
    const probe = (await kms.send(
      new c.GenerateMacCommand({ KeyId: keyId, MacAlgorithm: alg, Message: Buffer.from('kms-hmac: key ARN probe') }),
    )) as { KeyId: string; Mac: Uint8Array };
    probe.Mac.fill(0);
    arn = probe.KeyId;
  }
  const KeyId = arn;
  const engine: MacEngine = {
    keyArn: arn,
    algorithm: alg,
    macLength: MAC_LENGTH[alg],
    macPacked: () => Promise.reject(new TypeError(REMOTE_ONLY)),
    verifyPacked: () => Promise.reject(new TypeError(REMOTE_ONLY)),
    verifyPackedSync: () => {
      throw new TypeError(REMOTE_ONLY);
    },
    async mac(message) {
      const { Mac } = (await kms.send(new c.GenerateMacCommand({ KeyId, MacAlgorithm: alg, Message: message }))) as {
        Mac: Uint8Array;
      };
      const out = secretBuffer(Mac.length); // (wiped by whoever it is for: it may be a stream's seed)
      out.set(Mac);
      Mac.fill(0);
      return out;
    },
    async verify(message, mac) {
      try {
        await kms.send(new c.VerifyMacCommand({ KeyId, MacAlgorithm: alg, Message: message, Mac: mac }));
        return true;
      } catch (err) {
        if (errName(err) === 'KMSInvalidMacException') return false;
        throw err;
      }
    },
  };
  remote.add(engine);
  return engine;
}
