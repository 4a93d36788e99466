/**
 * Shared CLI plumbing: exit codes, error reporting, opening the key store.
 *
 * Exit codes (docs: README "CLI"):
 *   0  success / everything verified
 *   1  verification failed: a MAC did not verify, tampering found
 *   2  usage or input error (bad flags, unreadable file, ValidationException, not a sidecar)
 *   3  key or service error (NotFoundException, DisabledException, KMSInvalidStateException,
 *      InvalidKeyUsageException, key store errors, anything unexpected)
 *   4  `serve --exit-on-tamper`: the key store failed authentication while serving
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { MacAlgorithm } from '../backend/types.js';
import { KmsHmacClient, type KmsHmacClientOptions } from '../client/client.js';
import { readPassphraseFile, usePassphraseFile } from '../keystore/crypto.js';
import { PASSPHRASE_ENV, PASSPHRASE_FILE_ENV } from '../keystore/index.js';
import { defaultKeyStorePath } from '../keystore/default-path.js';

export const EXIT_OK = 0;
export const EXIT_VERIFY_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_KEY = 3;
export const EXIT_TAMPERED = 4;

/** An error with a chosen exit code and a message printed as is. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly errorName = 'Error',
  ) {
    super(message);
  }
}

/** `.option(...KEYSTORE_OPTION)`: the --keystore flag of every command that opens a key store. */
export const KEYSTORE_OPTION = [
  '--keystore <path|url>',
  'key store: a file, or postgres://user:pass@host:port/db for a store shared by several machines ' +
    '(default: $KMS_HMAC_KEYSTORE, else $XDG_DATA_HOME/kms-hmac/keystore.db, else ~/.local/share/kms-hmac/keystore.db)',
] as const;

const PASSPHRASE_FILE_HELP = `read the key store passphrase from this file (default: $${PASSPHRASE_FILE_ENV}, else $${PASSPHRASE_ENV})`;

const KEYSTORE_AFTER_HELP = `
Key store passphrase: --passphrase-file FILE, or $${PASSPHRASE_FILE_ENV} (a file), or $${PASSPHRASE_ENV}.
With one, key material is encrypted and the whole store authenticated: an edit by someone
without the passphrase is refused. Without one, the store is created unencrypted (with a warning).`;

/**
 * Process warnings (a key store created without a passphrase, a worker
 * restarted) as one plain line each, `kms-hmac: warning: …`, instead of
 * Node's `(node:PID) [CODE] Type: …` with its --trace-warnings hint.
 */
export function printWarningsPlainly(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => process.stderr.write(`kms-hmac: warning: ${w.message}\n`));
}

/**
 * Gives every command in `program`'s tree that opens a key store (has
 * --keystore) the --passphrase-file option and the passphrase help, and
 * makes the option take effect before the command runs: it becomes
 * $KMS_HMAC_PASSPHRASE_FILE for this process (and the serve workers it
 * starts), replacing a $KMS_HMAC_PASSPHRASE from the environment. So every
 * store the command opens, however it opens it, uses the same passphrase.
 */
export function addKeyStoreOptions(program: Command): void {
  const visit = (cmd: Command): void => {
    if (cmd.options.some((o) => o.long === '--keystore')) {
      cmd.option('--passphrase-file <path>', PASSPHRASE_FILE_HELP).addHelpText('after', KEYSTORE_AFTER_HELP);
    }
    for (const sub of cmd.commands) visit(sub);
  };
  visit(program);
  program.hook('preAction', (_program, action) => {
    const file = (action.opts() as { passphraseFile?: string }).passphraseFile;
    if (file === undefined) return;
    readPassphraseFile(file).fill(0); // unreadable, open to others or empty: a usage error now, not deep inside the command
    usePassphraseFile(resolve(file));
  });
}

export interface CommonFlags {
  keystore?: string;
  region?: string;
  accountId?: string;
}

export function keystorePath(flags: CommonFlags): string {
  return flags.keystore ?? defaultKeyStorePath();
}

export async function withClient<T>(
  flags: CommonFlags,
  fn: (client: KmsHmacClient) => Promise<T>,
  keyStoreOptions?: KmsHmacClientOptions['keyStoreOptions'],
): Promise<T> {
  const client = new KmsHmacClient({
    keyStore: keystorePath(flags),
    keyStoreOptions,
    region: flags.region,
    accountId: flags.accountId,
  });
  try {
    await client.ready();
    return await fn(client);
  } finally {
    await client.close().catch(() => {});
  }
}

const INPUT_ERRORS = new Set([
  'ValidationException',
  'SerializationException',
  'LogInputError',
  'SidecarFormatError',
  'PassphraseFileError',
]);

/** The exit code for an error thrown by a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  const e = err as { name?: string; code?: string };
  if (e?.name === 'KMSInvalidMacException') return EXIT_VERIFY_FAILED;
  if (e?.name && INPUT_ERRORS.has(e.name)) return EXIT_USAGE;
  if (e?.code === 'ENOENT' || e?.code === 'EISDIR' || e?.code === 'EACCES' || e?.code === 'ENOTDIR') return EXIT_USAGE;
  return EXIT_KEY;
}

/** `Name: message` — the KMS exception name first, as the AWS CLI prints it. */
export function formatError(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; path?: string; syscall?: string };
  if (err instanceof CliError) return err.errorName === 'Error' ? err.message : `${err.errorName}: ${err.message}`;
  if (e?.code && e.path && e.syscall) return `${e.code}: cannot open ${e.path}`; // a file system error
  const name = e?.name ?? 'Error';
  const message = e?.message ?? String(err);
  return message && message !== name ? `${name}: ${message}` : name;
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, jsonReplacer, 2)}\n`);
}

export function jsonReplacer(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (
    v &&
    typeof v === 'object' &&
    (v as { type?: string }).type === 'Buffer' &&
    Array.isArray((v as { data?: unknown }).data)
  ) {
    return Buffer.from((v as { data: number[] }).data).toString('base64');
  }
  return v;
}

/** Reads all of a file, or stdin for `-`/undefined. */
export async function readInput(file: string | undefined): Promise<Buffer> {
  if (file === undefined || file === '-') {
    const parts: Buffer[] = [];
    for await (const c of process.stdin) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }
  const { readFile } = await import('node:fs/promises');
  return readFile(file);
}

/** The flags of `kms-hmac sign`, one-shot or `--follow`. */
export interface SignFlags extends CommonFlags {
  keyId: string;
  algorithm?: MacAlgorithm;
  out?: string;
  framing: 'line' | 'ndjson' | 'delimiter';
  delimiter?: string;
  json?: boolean;
  progress: boolean;
  batchSize?: number;
  follow?: boolean;
  checkpointEvery: number;
  checkpointInterval: number;
  checkpointsOut?: string;
}
