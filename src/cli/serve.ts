/**
 * `kms-hmac serve`: the KMS-compatible HTTP endpoint (see src/server/).
 * `serveCommand()` is added to the main program by src/cli/main.ts; this
 * file also runs on its own (`node dist/cli/serve.js [options]`), which the
 * tests and the benchmark use so they do not depend on the rest of the CLI.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { describeKeyStore } from '../keystore/index.js';
import { addKeyStoreOptions, KEYSTORE_OPTION, printWarningsPlainly } from './common.js';
import { defaultKeyStorePath } from './paths.js';
import {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_REGION,
  HEADERS_TIMEOUT_MS,
  MAX_CONNECTIONS,
  REQUEST_TIMEOUT_MS,
  ENV_ACCESS_KEY_ID,
  ENV_SECRET_ACCESS_KEY,
  ENV_SESSION_TOKEN,
  startServer,
  type Credential,
  type StartedServer,
  type StartServerOptions,
} from '../server/index.js';

interface ServeFlags {
  host: string;
  port: number;
  keystore: string;
  region: string;
  accountId: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  credentialsFile?: string;
  auth: 'sigv4' | 'any';
  workers: number;
  log: string;
  logLevel: string;
  quiet?: boolean;
  shutdownTimeout: number;
  maxConnections: number;
  headersTimeout: number;
  requestTimeout: number;
}

function intArg(min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** Credentials from flags, else the environment (a flag pair wins over the env pair). */
export function credentialsFromFlags(
  flags: Pick<ServeFlags, 'accessKeyId' | 'secretAccessKey'>,
  env: NodeJS.ProcessEnv,
): Credential[] {
  const id = flags.accessKeyId ?? env[ENV_ACCESS_KEY_ID];
  const secret = flags.secretAccessKey ?? env[ENV_SECRET_ACCESS_KEY];
  if ((id === undefined || id === '') !== (secret === undefined || secret === '')) {
    throw new Error(
      `an access key id needs its secret (and vice versa): set both --access-key-id and --secret-access-key, or both ${ENV_ACCESS_KEY_ID} and ${ENV_SECRET_ACCESS_KEY}`,
    );
  }
  if (!id || !secret) return [];
  const c: Credential = { accessKeyId: id, secretAccessKey: secret };
  const token = env[ENV_SESSION_TOKEN];
  if (flags.accessKeyId === undefined && token) c.sessionToken = token;
  return [c];
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('Serve the AWS KMS HMAC API over HTTP (AWS JSON 1.1, SigV4), for the AWS CLI and SDKs')
    .option('--host <host>', 'address to bind (loopback unless told otherwise)', DEFAULT_HOST)
    .option('--port <port>', 'port (0 picks a free one; the startup line says which)', intArg(0, 65535), DEFAULT_PORT)
    .option(...KEYSTORE_OPTION)
    .option('--region <region>', 'region of key ARNs and of the SigV4 credential scope', DEFAULT_REGION)
    .option('--account-id <id>', 'account id in key ARNs', DEFAULT_ACCOUNT_ID)
    .option('--access-key-id <id>', `accepted access key id (or env ${ENV_ACCESS_KEY_ID})`)
    .option(
      '--secret-access-key <secret>',
      `its secret (prefer env ${ENV_SECRET_ACCESS_KEY}: argv is visible to other users)`,
    )
    .option(
      '--credentials-file <file>',
      'JSON file with several pairs: {"credentials":[{"accessKeyId","secretAccessKey","sessionToken"?}]}',
    )
    .addOption(
      new Option(
        '--auth <mode>',
        'sigv4: verify signatures; any: accept any well-formed, in-window signature (local emulator only)',
      )
        .choices(['sigv4', 'any'])
        .default('sigv4'),
    )
    .option('--workers <n>', 'worker processes sharing the port and the key store', intArg(1, 64), 1)
    .option('--log <dest>', 'access log destination: stderr, stdout or a file path', 'stderr')
    .option('--log-level <level>', 'access log level (info, warn, error, silent)', 'info')
    .option('-q, --quiet', 'no access log (same as --log-level silent)')
    .option('--shutdown-timeout <ms>', 'how long shutdown waits for in-flight requests', intArg(0, 600_000), 10_000)
    .option(
      '--max-connections <n>',
      'open connections allowed at once (all workers together); more are closed on accept',
      intArg(1, 1_000_000),
      MAX_CONNECTIONS,
    )
    .option('--headers-timeout <ms>', "time allowed for a request's headers", intArg(1, 600_000), HEADERS_TIMEOUT_MS)
    .option(
      '--request-timeout <ms>',
      'time allowed for a whole request, body included',
      intArg(1, 600_000),
      REQUEST_TIMEOUT_MS,
    )
    .addHelpText(
      'after',
      `
Credentials: ${ENV_ACCESS_KEY_ID} / ${ENV_SECRET_ACCESS_KEY} (and ${ENV_SESSION_TOKEN}),
or --access-key-id/--secret-access-key, or --credentials-file. Without any, the server
refuses to start unless --auth any is given. A request with no credentials or unknown ones is
answered at once (its body is never read) and its connection closed.

Example:
  ${ENV_ACCESS_KEY_ID}=AKIDLOCAL ${ENV_SECRET_ACCESS_KEY}=local-secret kms-hmac serve --port 4599
  AWS_ACCESS_KEY_ID=AKIDLOCAL AWS_SECRET_ACCESS_KEY=local-secret \\
    aws kms create-key --key-spec HMAC_256 --key-usage GENERATE_VERIFY_MAC --endpoint-url http://127.0.0.1:4599`,
    )
    .action(async (flags: ServeFlags, command: Command) => {
      let options: StartServerOptions;
      try {
        options = {
          host: flags.host,
          port: flags.port,
          keyStore: flags.keystore ?? defaultKeyStorePath(),
          region: flags.region,
          accountId: flags.accountId,
          credentials: credentialsFromFlags(flags, process.env),
          auth: flags.auth,
          workers: flags.workers,
          log: flags.quiet ? false : { destination: flags.log, level: flags.logLevel },
          shutdownTimeoutMs: flags.shutdownTimeout,
          maxConnections: flags.maxConnections,
          headersTimeoutMs: flags.headersTimeout,
          requestTimeoutMs: flags.requestTimeout,
        };
        if (flags.credentialsFile !== undefined) options.credentialsFile = flags.credentialsFile;
      } catch (err) {
        command.error(`kms-hmac serve: ${(err as Error).message}`, { exitCode: 2 });
      }
      if (flags.auth === 'any') {
        process.stderr.write(
          '\n' +
            '!!! kms-hmac serve: --auth any — SIGNATURES ARE NOT VERIFIED.\n' +
            '!!! Any well-formed, in-window SigV4 request is accepted, whoever signed it.\n' +
            '!!! Local emulator use only: never expose this endpoint beyond loopback.\n\n',
        );
      }
      if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(flags.host)) {
        process.stderr.write(
          `kms-hmac serve: binding to ${flags.host}, which is not loopback: other machines can reach this endpoint\n`,
        );
      }
      let server: StartedServer;
      try {
        server = await startServer(options!);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const msg =
          e.code === 'EADDRINUSE' ? `port ${flags.port} on ${flags.host} is already in use (try --port 0)` : e.message;
        command.error(`kms-hmac serve: ${msg}`, { exitCode: 2 });
      }
      const nCred = options!.auth === 'any' ? 'any signature (emulator mode)' : 'SigV4';
      process.stdout.write(
        `kms-hmac serve: listening on ${server.url} (region ${options!.region}, account ${options!.accountId}, ` +
          `key store ${describeKeyStore(options!.keyStore as string)}, auth ${nCred}, workers ${server.workers})\n`,
      );
      let signals = 0;
      const shutdown = (sig: NodeJS.Signals) => {
        if (++signals > 1) {
          process.stderr.write(`kms-hmac serve: second ${sig}, exiting now\n`);
          process.exit(1);
        }
        process.stderr.write(`kms-hmac serve: ${sig}: finishing in-flight requests\n`);
        server!.close().then(
          () => {
            process.stderr.write('kms-hmac serve: stopped\n');
            process.exit(0);
          },
          (err) => {
            process.stderr.write(`kms-hmac serve: shutdown failed: ${String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
    });
  return cmd;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  printWarningsPlainly();
  const cmd = serveCommand();
  addKeyStoreOptions(cmd);
  cmd.parseAsync(process.argv).catch((err) => {
    process.stderr.write(`kms-hmac serve: ${String(err)}\n`);
    process.exit(1);
  });
}
