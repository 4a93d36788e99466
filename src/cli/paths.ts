/**
 * Shared default locations for the `kms-hmac` command (every subcommand that
 * opens a key store uses the same default, so `kms-hmac keys create` and
 * `kms-hmac serve` see the same keys without flags).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The default durable key store file:
 * `$KMS_HMAC_KEYSTORE`, else `$XDG_DATA_HOME/kms-hmac/keystore.json`,
 * else `~/.local/share/kms-hmac/keystore.json`.
 */
export function defaultKeyStorePath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.KMS_HMAC_KEYSTORE;
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env.XDG_DATA_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'kms-hmac', 'keystore.json');
}
