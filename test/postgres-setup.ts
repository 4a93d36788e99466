/**
 * vitest globalSetup: one line, once per run, when the PostgreSQL suites are
 * skipped; an error when KMS_HMAC_REQUIRE_POSTGRES=1 and PostgreSQL cannot run.
 */
import { postgresUnavailableReason } from '../scripts/postgres-cluster.js';

export default function setup(): void {
  const reason = postgresUnavailableReason();
  if (!reason) return;
  if (process.env.KMS_HMAC_REQUIRE_POSTGRES === '1') throw new Error(`KMS_HMAC_REQUIRE_POSTGRES=1 but ${reason}`);
  console.log(
    `[postgres] ${reason}: the PostgreSQL key store and fleet tests are skipped (KMS_HMAC_REQUIRE_POSTGRES=1 makes this an error)`,
  );
}
