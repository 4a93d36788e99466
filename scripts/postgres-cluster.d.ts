/** The directory with initdb, pg_ctl and postgres, if PostgreSQL is installed. */
export function postgresBinDir(): string | undefined;
/** Why PostgreSQL cannot be used here, or undefined when it can. */
export function postgresUnavailableReason(): string | undefined;

export class PostgresCluster {
  readonly dir: string;
  readonly data: string;
  readonly socketDir: string;
  readonly port: number;
  running: boolean;
  /** With `tls`: the TCP port on 127.0.0.1 (TLS only there) and the CA that signed the server's certificate for localhost. */
  readonly tcpPort: number | undefined;
  readonly caFile: string | undefined;
  /** A URL for `database` over TCP to localhost, with `query` appended (with `tls`). */
  tcpUrl(database?: string, query?: string): string;
  /** A connection URL for `database` (unix socket). */
  url(database?: string): string;
  /** PGHOST, PGPORT, PGUSER, PGDATABASE for this cluster. */
  env(database?: string): Record<string, string>;
  start(): Promise<void>;
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  psql(sql: string, database?: string): Promise<string>;
  createDatabase(name: string): Promise<string>;
  destroy(): Promise<void>;
}

/** A new throwaway cluster, or undefined when PostgreSQL is not available (KMS_HMAC_REQUIRE_POSTGRES=1: an error instead). */
export function startPostgres(options?: { durable?: boolean; tls?: boolean }): Promise<PostgresCluster | undefined>;
