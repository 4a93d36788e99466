/**
 * The MAC keys of a stream (docs/log-format.md, "Keys").
 *
 * `kms`: every MAC of the stream is the KMS key's own HMAC.
 *
 * `forward-secure`: the KMS key is used once per stream, for its seed, and
 * every MAC of the stream is made with keys derived from it, epoch by epoch:
 *
 *   S_0 = MAC_kms(streamId | 0 | 'S' | nonce)          one GenerateMac per stream
 *   S_e+1 = HMAC(S_e, streamId | e+1 | 'R')            the ratchet: one way
 *   K_e = HMAC(S_e, streamId | e | 'K')                the MAC key of epoch e
 *
 * (HMAC with the stream's algorithm; every key is L bytes.) The nonce goes
 * to the checkpoint sink only, never to the host's disk: without it, even
 * the KMS key cannot re-derive S_0. When epoch e+1 begins the signer destroys
 * the key handles of S_e and K_e, so someone who takes over the host in epoch
 * n holds S_n and K_n at most, from which no earlier key can be computed.
 *
 * Key material lives in MacKey handles (native or WebAssembly: the backend
 * wipes their states on destroy()); the JavaScript buffers that carried a
 * seed, a ratchet state or a nonce on the way there are zero-filled as soon
 * as the handle exists. Those buffers are secretBuffer()s (engine.ts), never
 * small typed arrays on the JavaScript heap, which leave copies behind that
 * no fill reaches.
 */
import { randomFillSync } from 'node:crypto';
import { createMacKey, type MacKey } from '../mac/key.js';
import type { MacAlgorithm } from '../backend/types.js';
import { engineFromMacKey, secretBuffer, type MacEngine } from './engine.js';
import { KIND_EPOCH_KEY, KIND_RATCHET, KIND_SEED, NONCE_LENGTH, macInput, type SidecarHeader } from './format.js';

/** Default length of a forward-secure key epoch: 15 minutes. */
export const DEFAULT_EPOCH_MS = 15 * 60_000;

/** What makes a stream's seed: the KMS key, through anything that answers GenerateMac (an engine, a client, a remote KMS). */
export type SeedKey = Pick<MacEngine, 'keyArn' | 'algorithm' | 'macLength' | 'mac'>;

/** The MAC input of a forward-secure stream's seed. */
export function seedMacInput(streamId: Uint8Array, nonce: Uint8Array): Buffer {
  return macInput(streamId, 0, KIND_SEED, nonce);
}

/**
 * A forward-secure stream's key chain from its seed onward. `epoch` is the
 * epoch whose MAC key `engine` is; advance() moves to the next and destroys
 * what it leaves behind.
 */
class Ratchet {
  epoch = 0;
  private state: MacKey;
  private key: MacKey;
  engine: MacEngine;

  constructor(
    private readonly streamId: Buffer,
    private readonly keyArn: string,
    private readonly algorithm: MacAlgorithm,
    seed: Uint8Array,
  ) {
    this.state = handle(algorithm, seed);
    this.key = this.derive(KIND_EPOCH_KEY, 0);
    this.engine = engineFromMacKey(this.key, keyArn, algorithm);
  }

  /** The key epoch e + 1; with `keepPast`, epoch e's MAC key handle is returned instead of destroyed (a verifier). */
  advance(keepPast = false): MacKey | null {
    const next = this.derive(KIND_RATCHET, this.epoch + 1);
    this.state.destroy();
    this.state = next;
    const old = this.key;
    this.epoch++;
    this.key = this.derive(KIND_EPOCH_KEY, this.epoch);
    this.engine = engineFromMacKey(this.key, this.keyArn, this.algorithm);
    if (keepPast) return old;
    old.destroy();
    return null;
  }

  destroy(): void {
    this.state.destroy();
    this.key.destroy();
  }

  /** A key handle for HMAC(S_e, streamId | n | kind); the bytes it was made from are wiped. */
  private derive(kind: number, n: number): MacKey {
    const out = secretBuffer(this.state.macLength);
    try {
      this.state.macInto(macInput(this.streamId, n, kind), out);
      return handle(this.algorithm, out);
    } finally {
      out.fill(0);
    }
  }
}

/** A MacKey made from `material`, which is then zero-filled. */
function handle(algorithm: MacAlgorithm, material: Uint8Array): MacKey {
  try {
    return createMacKey(algorithm, material);
  } finally {
    material.fill(0);
  }
}

/** S_0 into a handle-ready buffer: one GenerateMac; the input (which holds the nonce) is wiped. */
async function seed(seedKey: SeedKey, streamId: Buffer, nonce: Uint8Array): Promise<Uint8Array> {
  const input = seedMacInput(streamId, nonce);
  try {
    return await seedKey.mac(input);
  } finally {
    input.fill(0);
  }
}

/**
 * The keys a signer MACs a stream with: `engine` for the current epoch; for
 * a forward-secure stream, advance() at each epoch's end (the caller first
 * seals everything MACed with the old key).
 */
export interface SigningKeys {
  readonly mode: SidecarHeader['keys'] & string;
  readonly epoch: number;
  readonly engine: MacEngine;
  /** Milliseconds until the current epoch is over (Infinity: it never is). */
  epochDueIn(now?: number): number;
  advance(): void;
  /** Destroys every key handle (the stream is finished). */
  destroy(): void;
}

/** A stream MACed with the KMS key itself. */
export function kmsKeys(engine: MacEngine): SigningKeys {
  return {
    mode: 'kms',
    epoch: 0,
    engine,
    epochDueIn: () => Infinity,
    advance() {
      throw new Error('internal: a kms-keyed stream has no epochs');
    },
    destroy() {},
  };
}

/**
 * Starts a forward-secure stream: a fresh nonce, the seed (one MAC with the
 * KMS key), epoch 0. The caller ships `nonce` to the checkpoint sink, then
 * zero-fills it.
 */
export async function forwardSecureKeys(
  seedKey: SeedKey,
  streamId: Buffer,
  epochMs: number,
): Promise<{ keys: SigningKeys; nonce: Buffer }> {
  const nonce = randomFillSync(secretBuffer(NONCE_LENGTH));
  const ratchet = new Ratchet(streamId, seedKey.keyArn, seedKey.algorithm, await seed(seedKey, streamId, nonce));
  let epochStart = Date.now();
  const keys: SigningKeys = {
    mode: 'forward-secure',
    get epoch() {
      return ratchet.epoch;
    },
    get engine() {
      return ratchet.engine;
    },
    epochDueIn: (now = Date.now()) => Math.max(0, epochStart + epochMs - now),
    advance() {
      ratchet.advance();
      epochStart = Date.now();
    },
    destroy: () => ratchet.destroy(),
  };
  return { keys, nonce };
}

/** The keys a verifier checks one stream with: the engine of any epoch. */
export interface StreamKeys {
  engineFor(epoch: number): MacEngine;
  destroy(): void;
}

/** A kms-keyed stream: the trusted engine for every MAC. */
export function kmsStreamKeys(engine: MacEngine): StreamKeys {
  return { engineFor: () => engine, destroy() {} };
}

/**
 * A forward-secure stream's keys, re-derived by a verifier from the KMS key
 * and the shipped nonce; every epoch's engine is kept once derived (the
 * verifier walks the epochs forward, but looks back within its window).
 */
export async function derivedStreamKeys(seedKey: SeedKey, streamId: Buffer, nonce: Uint8Array): Promise<StreamKeys> {
  const ratchet = new Ratchet(streamId, seedKey.keyArn, seedKey.algorithm, await seed(seedKey, streamId, nonce));
  const past: MacKey[] = [];
  const engines: MacEngine[] = [ratchet.engine];
  return {
    engineFor(epoch) {
      if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`bad key epoch ${epoch}`);
      while (engines.length <= epoch) {
        past.push(ratchet.advance(true)!);
        engines.push(ratchet.engine);
      }
      return engines[epoch]!;
    },
    destroy() {
      ratchet.destroy();
      for (const k of past) k.destroy();
    },
  };
}
