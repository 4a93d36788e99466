/**
 * What the pino and winston transports share: their options, the key (a key
 * store opened by path, or — winston, in-process — an engine or client),
 * the checkpoint sink, and a SignedLog (signed-log.ts) over the log file.
 *
 * A transport signs like `sign --follow`: a heartbeat every
 * `checkpointIntervalMs`, and, with a sink, forward-secure epochs by
 * default (docs/log-format.md says why).
 */
import { once } from 'node:events';
import { defaultKeyStorePath } from '../keystore/default-path.js';
import { KmsHmacClient } from '../client/client.js';
import { readPassphraseFile } from '../keystore/crypto.js';
import type { Anchor } from './anchors.js';
import type { Framing } from './format.js';
import { engineFromClient, type KeyOptions } from './kms-engine.js';
import { createSignedLog, type SignedLog } from './signed-log.js';
import { checkpointSink } from './sink.js';

/** A transport's options (plain data: pino passes them to its worker thread). */
export interface TransportOptions {
  /** The log file (appended to, created if missing). */
  file: string;
  /** Its sidecar (default: file + `.mac`). */
  sidecar?: string;
  /** The key: a key ID, key ARN, alias or alias ARN in the key store. */
  keyId: string;
  /** The key store (a file path or a postgres:// URL; default: the CLI's, so keys made with `kms-hmac keys create` are found). */
  keyStore?: string;
  /** Its passphrase, from this file (default $KMS_HMAC_PASSPHRASE_FILE, else $KMS_HMAC_PASSPHRASE). */
  passphraseFile?: string;
  region?: string;
  accountId?: string;
  /** Where each checkpoint line goes, off this host: a file (appended, fdatasynced), a pipe, or `-` (stdout). */
  checkpointsOut?: string;
  /** Or a module whose default export takes each line: `(anchor) => void | Promise<void>` (anchorBytes(anchor) gives its bytes). */
  checkpointsModule?: string;
  /** Forward-secure epochs (default: true when checkpoints are shipped; they need a sink). */
  forwardSecure?: boolean;
  epochMs?: number;
  checkpointEvery?: number;
  /** A checkpoint (and a heartbeat, with no record) at least this often; default 10,000 ms. */
  checkpointIntervalMs?: number;
  framing?: 'line' | 'ndjson';
}

/** In-process extras (winston): the key as an object, and a sink function. */
export interface TransportExtras extends KeyOptions {
  onCheckpoint?: (a: Anchor) => void | Promise<void>;
}

export interface OpenTransport {
  log: SignedLog;
  /** Ends the log: everything written is signed and sealed, the trailer written, then the sink and the key store close. */
  close(): Promise<void>;
}

export async function openTransport(o: TransportOptions, extras: TransportExtras = {}): Promise<OpenTransport> {
  if (!o || typeof o.file !== 'string' || o.file === '') throw new TypeError('kms-hmac transport: `file` is required');
  const cleanups: (() => Promise<void>)[] = [];
  try {
    let keys: KeyOptions = extras;
    if (!extras.engine && !extras.client && !extras.kms) {
      if (typeof o.keyId !== 'string' || o.keyId === '') throw new TypeError('kms-hmac transport: `keyId` is required');
      const passphrase = o.passphraseFile === undefined ? undefined : readPassphraseFile(o.passphraseFile);
      const client = new KmsHmacClient({
        keyStore: o.keyStore ?? defaultKeyStorePath(),
        keyStoreOptions: passphrase ? { passphrase } : {},
        region: o.region,
        accountId: o.accountId,
      });
      cleanups.push(() => client.close());
      await client.ready();
      passphrase?.fill(0);
      keys = { engine: await engineFromClient(client, o.keyId) };
    }
    let onCheckpoint = extras.onCheckpoint;
    if (o.checkpointsOut !== undefined) {
      const sink = await checkpointSink(o.checkpointsOut);
      cleanups.push(() => sink.close());
      onCheckpoint = sink.write;
    } else if (o.checkpointsModule !== undefined) {
      const mod = (await import(o.checkpointsModule)) as { default?: unknown };
      if (typeof mod.default !== 'function')
        throw new TypeError(`kms-hmac transport: ${o.checkpointsModule} has no default export function`);
      onCheckpoint = mod.default as (a: Anchor) => Promise<void>;
    }
    const framing: Framing = { type: o.framing ?? 'line' };
    const log = createSignedLog(o.file, {
      ...keys,
      sidecar: o.sidecar,
      framing,
      onCheckpoint,
      forwardSecure: o.forwardSecure ?? onCheckpoint !== undefined,
      epochMs: o.epochMs,
      checkpointEvery: o.checkpointEvery,
      checkpointIntervalMs: o.checkpointIntervalMs,
    });
    const close = async () => {
      if (!log.destroyed) {
        log.end();
        await once(log, 'finish').catch(() => {});
      }
      try {
        await log.summary;
      } finally {
        for (const c of cleanups.reverse()) await c().catch(() => {});
      }
    };
    return { log, close };
  } catch (err) {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw err;
  }
}
