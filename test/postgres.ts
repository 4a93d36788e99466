/**
 * PostgreSQL for the tests: whether it can run here, and a throwaway cluster
 * per test file (scripts/postgres-cluster.js). Without PostgreSQL the suites
 * that need it are skipped; test/postgres-setup.ts prints the one line that
 * says so. KMS_HMAC_REQUIRE_POSTGRES=1 (CI) makes a missing server fail.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { postgresUnavailableReason, startPostgres, type PostgresCluster } from '../scripts/postgres-cluster.js';

export const REQUIRED = process.env.KMS_HMAC_REQUIRE_POSTGRES === '1';
/** Why the PostgreSQL suites are skipped, or undefined when they run (always run when required: they fail instead). */
export const PG_SKIP = REQUIRED ? undefined : postgresUnavailableReason();

/** A cluster started before the file's tests and destroyed after them (`durable`: fsync on). */
export function usePostgres(options: { durable?: boolean } = {}): {
  cluster: () => PostgresCluster;
  database: () => Promise<string>;
} {
  let cluster: PostgresCluster | undefined;
  beforeAll(async () => {
    if (PG_SKIP) return;
    cluster = await startPostgres(options);
    if (!cluster) throw new Error(`PostgreSQL is required: ${postgresUnavailableReason()}`);
  }, 120_000);
  afterAll(async () => {
    await cluster?.destroy();
  });
  return {
    cluster: () => cluster!,
    database: () => cluster!.createDatabase(`t_${randomBytes(6).toString('hex')}`),
  };
}
