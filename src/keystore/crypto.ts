/**
 * The cryptography of key stores at rest (docs/key-stores.md has the
 * construction and the reasoning behind it).
 *
 *   passphrase ──scrypt(salt, N, r, p)──▶ master (32 B)
 *   master ──HKDF-SHA-256──▶ seal key   AES-256-GCM for secret fields; the
 *                                       additional data binds key id + field
 *                          ▶ row key    H(row) = HMAC(row key, kind, id, rev, body)
 *                          ▶ head key   tag = HMAC(head key, generation, encryption header, D)
 *   D = H(row₁) ⊕ H(row₂) ⊕ …  over every key and alias row
 *
 * D authenticates the set of rows as a whole and is updated in O(1) per
 * changed row (remove the old H, add the new one). Neither H nor D is ever
 * stored: only the tag is, so someone without the passphrase cannot compute
 * or combine them. A store without a passphrase uses a fixed, public master:
 * the same checks then detect corruption but not deliberate edits.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  scrypt,
  scryptSync,
  timingSafeEqual,
} from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { createMacKey, type MacKey } from '../mac/key.js';
import { KeyStoreError, PassphraseFileError } from './errors.js';

export const PASSPHRASE_ENV = 'KMS_HMAC_PASSPHRASE';
export const PASSPHRASE_FILE_ENV = 'KMS_HMAC_PASSPHRASE_FILE';

/**
 * The scrypt cost of stores created, encrypted or rekeyed from now on:
 * OWASP's minimum for scrypt (N=2^17, r=8, p=1; 128 MiB, docs/key-stores.md
 * has the open time). Existing stores keep the cost recorded in their header
 * (kms-hmac 0.1 used N=2^15) until `kms-hmac keys rekey`.
 */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 1 << 17, r: 8, p: 1 });
const CHECK_PLAINTEXT = Buffer.from('kms-hmac-keystore passphrase check v1');
const UNENCRYPTED_MASTER = createHash('sha256').update('kms-hmac-keystore v2: no passphrase').digest();

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface KdfHeader extends ScryptParams {
  name: 'scrypt';
  salt: string;
}

export interface SealedBox {
  iv: string;
  data: string;
  tag: string;
}

/** Stored with the store (readable): how to derive the key, and a value that tells a wrong passphrase apart. */
export interface EncryptionHeader {
  kdf: KdfHeader;
  cipher: 'aes-256-gcm';
  check: SealedBox;
}

/**
 * `KMS_HMAC_PASSPHRASE` as this process last found it. Once read it is taken
 * out of the environment, so that cluster workers and child processes do not
 * inherit it (`serve --workers` hands it to its workers over IPC); later
 * reads in this process get it from here, unless the variable is set again
 * (the new value replaces it) or a passphrase file is set.
 */
let passphraseFromEnv: string | undefined;

/** The variable if it is set now (taken out of process.env), and the value it last had. */
function envPassphrase(env: NodeJS.ProcessEnv): { now: string | undefined; last: string | undefined } {
  const now = env[PASSPHRASE_ENV];
  if (env !== process.env) return { now, last: now };
  if (now !== undefined) {
    passphraseFromEnv = now;
    delete env[PASSPHRASE_ENV];
  }
  return { now, last: passphraseFromEnv };
}

/**
 * From now on, this process (and what it starts) reads the passphrase from
 * `path`, whatever `KMS_HMAC_PASSPHRASE` said (the CLI's --passphrase-file).
 */
export function usePassphraseFile(path: string): void {
  process.env[PASSPHRASE_FILE_ENV] = path;
  delete process.env[PASSPHRASE_ENV];
  passphraseFromEnv = undefined;
}

/**
 * The passphrase to use: the option if given (`null`: none, whatever the
 * environment says), else `KMS_HMAC_PASSPHRASE_FILE` (the file's contents,
 * one trailing newline dropped), else `KMS_HMAC_PASSPHRASE`. Setting both
 * variables is refused: one of them would be silently ignored.
 */
export function resolvePassphrase(
  p: string | Uint8Array | null | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Buffer | undefined {
  if (p === null) return undefined;
  if (typeof p === 'string') return p.length ? Buffer.from(p, 'utf8') : undefined;
  if (p instanceof Uint8Array) return p.byteLength ? Buffer.from(p) : undefined;
  if (p !== undefined) throw new TypeError('passphrase must be a string, a Uint8Array or null');
  const file = env[PASSPHRASE_FILE_ENV];
  const value = envPassphrase(env);
  if (file && value.now) throw new TypeError(`set ${PASSPHRASE_ENV} or ${PASSPHRASE_FILE_ENV}, not both`);
  if (file) return readPassphraseFile(file);
  return value.last ? Buffer.from(value.last, 'utf8') : undefined;
}

/**
 * A passphrase file's bytes without one trailing newline (`echo secret >
 * file` adds one). A file that group or others may read is refused
 * (PassphraseFileError), as ssh refuses such a private key: whoever reads it
 * can decrypt the store.
 */
export function readPassphraseFile(path: string): Buffer {
  const fd = openSync(path, 'r');
  let bytes: Buffer;
  try {
    const mode = fstatSync(fd).mode;
    if (process.platform !== 'win32' && (mode & 0o044) !== 0) {
      const octal = (mode & 0o777).toString(8).padStart(4, '0');
      throw new PassphraseFileError(
        path,
        `is readable by group or others (mode ${octal}): chmod 600 ${path} (or 400; a Kubernetes secret: defaultMode 0400)`,
      );
    }
    bytes = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  const end = bytes.at(-1) === 0x0a ? (bytes.at(-2) === 0x0d ? 2 : 1) : 0;
  if (end) {
    const trimmed = Buffer.from(bytes.subarray(0, bytes.length - end));
    bytes.fill(0);
    bytes = trimmed;
  }
  if (bytes.length === 0) throw new PassphraseFileError(path, 'is empty');
  return bytes;
}

export function checkScryptParams(p: ScryptParams): void {
  const { N, r, p: par } = p;
  if (
    !Number.isInteger(N) ||
    N < 2 ||
    N > 1 << 20 ||
    (N & (N - 1)) !== 0 ||
    !Number.isInteger(r) ||
    r < 1 ||
    r > 32 ||
    !Number.isInteger(par) ||
    par < 1 ||
    par > 16
  ) {
    throw new RangeError('scrypt: N must be a power of two in 2..2^20, r in 1..32, p in 1..16');
  }
}

export function validKdf(k: unknown): k is KdfHeader {
  const h = k as KdfHeader;
  if (typeof h !== 'object' || h === null || h.name !== 'scrypt' || typeof h.salt !== 'string') return false;
  try {
    checkScryptParams(h);
    return true;
  } catch {
    return false;
  }
}

export function validEncryptionHeader(e: unknown): e is EncryptionHeader {
  const h = e as EncryptionHeader;
  return (
    typeof h === 'object' &&
    h !== null &&
    h.cipher === 'aes-256-gcm' &&
    validKdf(h.kdf) &&
    typeof h.check === 'object' &&
    h.check !== null
  );
}

function scryptOptions(p: ScryptParams) {
  return { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + (1 << 20) };
}

/** The raw scrypt output: the master of a v2 store, and the direct AES key of a v1 file. */
export function deriveMasterSync(passphrase: Buffer, kdf: KdfHeader): Buffer {
  return scryptSync(passphrase, Buffer.from(kdf.salt, 'base64'), 32, scryptOptions(kdf));
}

export function deriveMaster(passphrase: Buffer, kdf: KdfHeader): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(passphrase, Buffer.from(kdf.salt, 'base64'), 32, scryptOptions(kdf), (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export function newKdf(params: ScryptParams): KdfHeader {
  return { name: 'scrypt', salt: randomBytes(16).toString('base64'), N: params.N, r: params.r, p: params.p };
}

export function seal(key: Buffer, plaintext: Uint8Array, aad: string): SealedBox {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const data = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv: iv.toString('base64'), data: data.toString('base64'), tag: c.getAuthTag().toString('base64') };
}

/** The plaintext in a fresh Uint8Array (intermediate buffers zeroed), or undefined if authentication fails. */
export function unseal(key: Buffer, box: SealedBox, aad: string): Uint8Array | undefined {
  if (!box || typeof box.iv !== 'string' || typeof box.data !== 'string' || typeof box.tag !== 'string')
    return undefined;
  try {
    const iv = Buffer.from(box.iv, 'base64');
    const tag = Buffer.from(box.tag, 'base64');
    if (iv.length !== 12 || tag.length !== 16) return undefined;
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(tag);
    const a = d.update(Buffer.from(box.data, 'base64'));
    const b = d.final();
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    a.fill(0);
    b.fill(0);
    return out;
  } catch {
    return undefined;
  }
}

/** Whether `key` opens `box` to the passphrase check value. */
export function opensCheck(key: Buffer, box: SealedBox): boolean {
  const pt = unseal(key, box, 'check');
  const ok = pt !== undefined && pt.length === CHECK_PLAINTEXT.length && timingSafeEqual(pt, CHECK_PLAINTEXT);
  pt?.fill(0);
  return ok;
}

function subkey(master: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `kms-hmac-keystore v2 ${label}`, 32));
}

/** Which kind of row: a key or an alias (part of every row's hash). */
export type RowKind = 'k' | 'a';

/**
 * The keys of one store (or of "no passphrase"): seals and opens secrets,
 * hashes rows, tags headers. `header` is null for an unencrypted store.
 */
export class StoreKeys {
  readonly header: EncryptionHeader | null;
  /** Canonical JSON of the header ("null" when unencrypted): what the header tag binds. */
  readonly headerText: string;
  /** Records decode with their secrets sealed until first read (codec.ts, records.ts LazySecret). */
  readonly lazy = true;
  #seal: Buffer | undefined;
  /** HMAC-SHA-256 under the row key, on this package's own HMAC backend: a whole store hashes in one batch. */
  #rows: MacKey | undefined;
  #head: Buffer;

  private constructor(header: EncryptionHeader | null, master: Buffer) {
    this.#seal = header ? subkey(master, 'seal') : undefined;
    const rows = subkey(master, 'rows');
    this.#rows = createMacKey('HMAC_SHA_256', rows);
    rows.fill(0);
    this.#head = subkey(master, 'head');
    this.header = header;
    if (header === null) {
      this.headerText = 'null';
    } else {
      const k = header.kdf;
      const c = header.check;
      // Fixed field order: the stored text is exactly this, and so is what the tag binds.
      this.headerText = JSON.stringify({
        check: { data: c.data, iv: c.iv, tag: c.tag },
        cipher: header.cipher,
        kdf: { N: k.N, name: k.name, p: k.p, r: k.r, salt: k.salt },
      });
    }
  }

  static unencrypted(): StoreKeys {
    return new StoreKeys(null, UNENCRYPTED_MASTER);
  }

  /** Keys for a new encrypted store under `master` (derived with `kdf`): makes the check value. */
  static create(kdf: KdfHeader, master: Buffer): StoreKeys {
    const seal0 = subkey(master, 'seal');
    const header: EncryptionHeader = { kdf, cipher: 'aes-256-gcm', check: seal(seal0, CHECK_PLAINTEXT, 'check') };
    seal0.fill(0);
    const keys = new StoreKeys(header, master);
    master.fill(0);
    return keys;
  }

  /** Keys for an existing header, or undefined when `master` is not the one the header was made with (wrong passphrase). */
  static open(header: EncryptionHeader, master: Buffer): StoreKeys | undefined {
    const keys = new StoreKeys(header, master);
    master.fill(0);
    if (opensCheck(keys.#seal!, header.check)) return keys;
    keys.destroy();
    return undefined;
  }

  get encrypted(): boolean {
    return this.header !== null;
  }

  /** Seals one secret field; `aad` binds it to its key and field. */
  sealField(plaintext: Uint8Array, aad: string): SealedBox {
    return seal(this.#live(this.#seal), plaintext, aad);
  }

  unsealField(box: SealedBox, aad: string): Uint8Array | undefined {
    return unseal(this.#live(this.#seal), box, aad);
  }

  /** H(row): a PRF of everything in the row. Never stored. */
  rowHash(kind: RowKind, id: string, rev: number, body: string): Buffer {
    return Buffer.from(this.#rowKey().mac(Buffer.from(rowText(kind, id, rev, body))));
  }

  /** H of many rows at once (one call into the backend per chunk); hash i at i * 32. */
  rowHashes(kind: RowKind, rows: readonly { id: string; rev: number; body: string }[]): Buffer {
    const out = Buffer.allocUnsafe(rows.length * 32);
    const CHUNK = 16_384;
    for (let start = 0; start < rows.length; start += CHUNK) {
      const chunk = rows.slice(start, start + CHUNK);
      // One write per row into a buffer sized for the worst case (3 UTF-8 bytes per UTF-16 unit).
      let bound = 0;
      for (const r of chunk) bound += 3 * (r.id.length + r.body.length + 24);
      const data = Buffer.allocUnsafe(bound);
      const offsets = new Uint32Array(chunk.length + 1);
      let total = 0;
      for (let i = 0; i < chunk.length; i++) {
        const r = chunk[i]!;
        offsets[i] = total;
        total += data.write(rowText(kind, r.id, r.rev, r.body), total);
      }
      offsets[chunk.length] = total;
      this.#rowKey().macPackedInto(data.subarray(0, total), offsets, out.subarray(start * 32));
    }
    return out;
  }

  /** The tag stored with the store: binds the generation, the encryption header and the set digest. */
  headerTag(generation: number, digest: Buffer): string {
    return createHmac('sha256', this.#live(this.#head))
      .update(`kms-hmac-keystore/2\0${generation}\0${this.headerText}\0`)
      .update(digest)
      .digest('base64');
  }

  verifyHeaderTag(generation: number, digest: Buffer, tag: unknown): boolean {
    if (typeof tag !== 'string') return false;
    const want = Buffer.from(this.headerTag(generation, digest), 'base64');
    const got = Buffer.from(tag, 'base64');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /** Zeroes every key; the object is unusable afterwards. */
  destroy(): void {
    this.#seal?.fill(0);
    this.#rows?.destroy();
    this.#head.fill(0);
    this.#seal = undefined;
    this.#rows = undefined;
  }

  #rowKey(): MacKey {
    if (this.#rows === undefined) throw closed();
    return this.#rows;
  }

  #live(k: Buffer | undefined): Buffer {
    if (k === undefined) throw this.header ? closed() : new Error('an unencrypted store seals nothing');
    return k;
  }
}

function closed(): KeyStoreError {
  return new KeyStoreError(
    'STORE_CLOSED',
    'the key store was closed (or its keys replaced) before this secret was read',
  );
}

/** What H hashes for one row: unambiguous (the id's length is given; rev is digits; the body runs to the end). */
function rowText(kind: RowKind, id: string, rev: number, body: string): string {
  return `${kind}${id.length}:${id}:${rev}:${body}`;
}

/** The set digest D: XOR of row hashes, updated in place. */
export class SetDigest {
  readonly bytes = Buffer.alloc(32);

  /** Adds or removes one row hash, as bytes or a latin1 string (XOR is its own inverse). */
  toggle(h: Buffer | string): void {
    if (typeof h === 'string') for (let i = 0; i < 32; i++) this.bytes[i]! ^= h.charCodeAt(i);
    else for (let i = 0; i < 32; i++) this.bytes[i]! ^= h[i]!;
  }

  /** Adds many hashes laid end to end. */
  toggleAll(hashes: Buffer): void {
    for (let at = 0; at < hashes.length; at += 32) for (let i = 0; i < 32; i++) this.bytes[i]! ^= hashes[at + i]!;
  }

  copy(): SetDigest {
    const d = new SetDigest();
    this.bytes.copy(d.bytes);
    return d;
  }
}
