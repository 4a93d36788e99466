// `startServer` on a given key store (a path or postgres:// URL; none: in memory), with the
// credentials from KMS_HMAC_ACCESS_KEY_ID / KMS_HMAC_SECRET_ACCESS_KEY, no access log; prints
// "listening on <url>" like the CLI. `npm run bench:server` compares the MAC hot path on a memory
// store and on a PostgreSQL store with it: the same server, only the store differs.
import { startServer } from '../dist/server/index.js';

const server = await startServer({
  port: 0,
  log: false,
  keyStore: process.argv[2],
  credentials: [
    {
      accessKeyId: /** @type {string} */ (process.env.KMS_HMAC_ACCESS_KEY_ID),
      secretAccessKey: /** @type {string} */ (process.env.KMS_HMAC_SECRET_ACCESS_KEY),
    },
  ],
});
process.stdout.write(`kms-hmac serve: listening on ${server.url}\n`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
