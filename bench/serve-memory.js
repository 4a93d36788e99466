// `kms-hmac serve` with an in-memory key store (the CLI always names a durable one), for
// `npm run bench:server`'s hot-path comparison. Credentials from KMS_HMAC_ACCESS_KEY_ID /
// KMS_HMAC_SECRET_ACCESS_KEY; prints "listening on <url>" like the CLI.
import { startServer } from '../dist/server/index.js';

const server = await startServer({
  port: 0,
  log: false,
  credentials: [{ accessKeyId: process.env.KMS_HMAC_ACCESS_KEY_ID, secretAccessKey: process.env.KMS_HMAC_SECRET_ACCESS_KEY }],
});
process.stdout.write(`kms-hmac serve: listening on ${server.url}\n`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
