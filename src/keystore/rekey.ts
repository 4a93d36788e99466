/**
 * Changing an encrypted store's passphrase (`store.rekey()`, `kms-hmac keys
 * rekey`). The new passphrase gets a new salt and the current scrypt cost
 * (an old store created at N=2^15 comes out at N=2^17), and the store's
 * keys are derived anew from it. Then one ordinary commit, under the
 * engine's write lock, rewrites every row: each secret sealed again, each
 * row hashed under the new row key, the new encryption header and the tag
 * over all of it. The engine's transaction (SQLite's WAL, PostgreSQL's
 * COMMIT) makes that commit atomic, so a process killed at any instant
 * leaves the store wholly under the old passphrase or wholly under the new
 * one, with every key (test/keystore-rekey.test.ts kills it at random).
 */
import { checkScryptParams, deriveMaster, newKdf, StoreKeys, type ScryptParams } from './crypto.js';
import { KeyStorePassphraseError } from './errors.js';
import type { ReplicaOptions } from './options.js';
import type { Replica } from './replica.js';

export async function rekeyStore(
  name: string,
  replica: Replica,
  settings: ReplicaOptions,
  passphrase: string | Uint8Array,
  scrypt: Partial<ScryptParams> | undefined,
  rewrite: (keys: StoreKeys) => Promise<void>,
): Promise<void> {
  if (replica.kdf === undefined) {
    throw new KeyStorePassphraseError(
      name,
      'the store is not encrypted, so it has no passphrase to change: encrypt it with `kms-hmac keys encrypt` (or encryptExisting) first',
    );
  }
  let next: Buffer;
  if (typeof passphrase === 'string') next = Buffer.from(passphrase, 'utf8');
  else if (passphrase instanceof Uint8Array) next = Buffer.from(passphrase);
  else throw new TypeError('passphrase must be a string or a Uint8Array');
  if (next.length === 0) throw new TypeError('the new passphrase must not be empty');
  const params = { ...settings.scrypt, ...scrypt };
  checkScryptParams(params);
  // scrypt runs before the write lock is taken: the lock is held only for the commit.
  const kdf = newKdf(params);
  const keys = StoreKeys.create(kdf, await deriveMaster(next, kdf));
  try {
    await rewrite(keys);
  } catch (err) {
    if (!replica.holds(keys)) keys.destroy();
    next.fill(0);
    throw err;
  }
  // From now on this process derives with the new passphrase (a reload after another rekey, say).
  settings.passphrase?.fill(0);
  settings.passphrase = next;
}
