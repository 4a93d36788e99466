/**
 * PostgreSQL store URLs: how one may be shown (without its password, in
 * every message that names the store or carries a `pg` error), and whether
 * it asks for a verified TLS connection when `KMS_HMAC_PG_REQUIRE_TLS=1`
 * demands one. URLs are read as `pg` reads them (pg-connection-string: a
 * URL whose host is empty, `postgres://u:p@/db?host=/run/postgresql`, parses
 * with a placeholder host).
 */
import { KeyStoreError } from './errors.js';

export const REQUIRE_TLS_ENV = 'KMS_HMAC_PG_REQUIRE_TLS';

/** Whether `spec` names a PostgreSQL store (a `postgres://` or `postgresql://` URL). */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

function parse(url: string): URL | undefined {
  for (const s of [url, url.replace('@/', '@___DUMMY___/')]) {
    try {
      return new URL(s);
    } catch {
      /* next form */
    }
  }
  return undefined;
}

const PASSWORD_PARAM = /([?&]password=)([^&#]*)/gi;

/** The URL as it may be shown: the password of its user info and of a `password` parameter replaced by `***`. */
export function redactUrl(url: string): string {
  const u = parse(url);
  // Unparsable (pg cannot use it either): drop the whole user info rather than guess where the password ends.
  const out =
    u === undefined ? url.replace(/\/\/[^@/]*@/, '//***@') : u.password ? url.replace(`:${u.password}@`, ':***@') : url;
  return out.replace(PASSWORD_PARAM, '$1***');
}

/** The passwords a URL carries, as written and decoded. */
function passwordsOf(url: string): string[] {
  const raw = [parse(url)?.password ?? '', ...[...url.matchAll(PASSWORD_PARAM)].map((m) => m[2]!)];
  const out = new Set<string>();
  for (const p of raw) {
    if (p === '') continue;
    out.add(p);
    try {
      out.add(decodeURIComponent(p));
    } catch {
      /* not percent-encoded */
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** `text` (an error message) with the URL shown redacted and any password it carries replaced by `***`. */
export function redactText(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  for (const p of passwordsOf(url)) out = out.split(p).join('***');
  return out;
}

/**
 * With `KMS_HMAC_PG_REQUIRE_TLS=1`, refuses (KeyStoreError `TLS_REQUIRED`,
 * before any connection is made) a store whose connections would not be
 * TLS with the server's certificate verified: the URL (or `PGSSLMODE`) must
 * say `sslmode=verify-full`, or the pool's `ssl` option must be set without
 * `rejectUnauthorized: false`. (`sslmode=require` verifies in pg 8 but not
 * in libpq or pg 9.) A unix-socket connection never leaves the machine and
 * is allowed.
 */
export function checkTls(url: string, poolSsl: unknown, env: NodeJS.ProcessEnv = process.env): void {
  if (env[REQUIRE_TLS_ENV] !== '1') return;
  const u = parse(url);
  const param = (name: string) => u?.searchParams.get(name) ?? undefined;
  const host = param('host') ?? (u && u.hostname !== '___dummy___' && u.hostname !== '' ? u.hostname : env.PGHOST);
  if (host?.startsWith('/')) return;
  if (
    poolSsl === true ||
    (typeof poolSsl === 'object' &&
      poolSsl !== null &&
      (poolSsl as { rejectUnauthorized?: unknown }).rejectUnauthorized !== false)
  )
    return;
  const mode = param('sslmode') ?? env.PGSSLMODE;
  if (mode === 'verify-full') return;
  const why =
    mode === undefined
      ? 'it does not ask for TLS'
      : mode === 'require' || mode === 'verify-ca' || mode === 'prefer'
        ? `sslmode=${mode} does not verify the server's name (libpq, pg 9)`
        : `sslmode=${mode} is not a verified TLS connection`;
  throw new KeyStoreError(
    'TLS_REQUIRED',
    `key store ${redactUrl(url)}: ${REQUIRE_TLS_ENV}=1 and ${why}: add ?sslmode=verify-full&sslrootcert=<the server's CA file>`,
  );
}
