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
export function startPostgres(options?: { durable?: boolean }): Promise<PostgresCluster | undefined>;
