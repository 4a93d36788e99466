/**
 * The default key store location, shared by the `kms-hmac` command (every subcommand that
 * opens a key store uses the same default, so `kms-hmac keys create` and
 * `kms-hmac serve` see the same keys without flags).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The default key store: `$KMS_HMAC_KEYSTORE` (a path or a postgres:// URL),
 * else `keystore.db` in `$XDG_DATA_HOME/kms-hmac` or `~/.local/share/kms-hmac`.
 * A `keystore.json` there (the JSON store of kms-hmac 0.1) is used instead
 * while no `keystore.db` exists: it is migrated in place on first open and
 * keeps its name.
 */
export function defaultKeyStorePath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.KMS_HMAC_KEYSTORE;
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env.XDG_DATA_HOME;
  const dir = join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share'), 'kms-hmac');
  const db = join(dir, 'keystore.db');
  const legacy = join(dir, 'keystore.json');
  return !existsSync(db) && existsSync(legacy) ? legacy : db;
}
