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
import { healthMessage } from '../keystore/health.js';
import { QUOTAS } from '../kms/quotas.js';
import { seedSummary } from '../kms/seed.js';
import { addKeyStoreOptions, EXIT_TAMPERED, KEYSTORE_OPTION, printWarningsPlainly } from './common.js';
import { defaultKeyStorePath } from '../keystore/default-path.js';
import {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_REGION,
  DRAIN_TIMEOUT_MS,
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
  allowedHost: string[];
  keystore?: string;
  region: string;
  regions?: string[];
  accountId: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  credentialsFile?: string;
  auth: 'sigv4' | 'any';
  workers: number;
  log: string;
  logLevel: string;
  quiet?: boolean;
  shutdownTimeout?: number;
  maxConnections: number;
  headersTimeout: number;
  requestTimeout: number;
  drainTimeout?: number;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  metricsPort?: number;
  metricsHost: string;
  degradedNotReady?: boolean;
  seed?: string;
  exitOnTamper?: boolean;
  keysQuota: number;
  aliasesPerKeyQuota: number;
  tagsPerKeyQuota: number;
  importParametersRate: number;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
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
    .option(
      '--allowed-host <name>',
      'a host name or address clients may address requests to, besides loopback ones (repeatable; any port)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(...KEYSTORE_OPTION)
    .option('--region <region>', 'region of key ARNs and of the SigV4 credential scope', DEFAULT_REGION)
    .option(
      '--regions <list>',
      'more Regions answered besides --region, comma-separated: each request is answered in the Region of its SigV4 scope (multi-Region keys replicate across them)',
      (v: string) => v.split(',').filter((r) => r !== ''),
    )
    .option('--account-id <id>', 'account id in key ARNs', DEFAULT_ACCOUNT_ID)
    .option('--access-key-id <id>', `accepted access key id (or env ${ENV_ACCESS_KEY_ID})`)
    .option(
      '--secret-access-key <secret>',
      `its secret; deprecated, goes away in the next major version: argv is visible to other users (use env ${ENV_SECRET_ACCESS_KEY})`,
    )
    .option(
      '--credentials-file <file>',
      'JSON file of access keys, each with its principal: {"credentials":[{"accessKeyId","secretAccessKey","sessionToken"?,"principal"?,"accountId"?}]} (reloaded on SIGHUP)',
    )
    .addOption(
      new Option(
        '--auth <mode>',
        'sigv4: verify signatures; any: accept any well-formed, in-window signature (local emulator: loopback only, keys in memory unless --keystore)',
      )
        .choices(['sigv4', 'any'])
        .default('sigv4'),
    )
    .option('--workers <n>', 'worker processes sharing the port and the key store', intArg(1, 64), 1)
    .option('--log <dest>', 'access log destination: stderr, stdout or a file path', 'stderr')
    .option('--log-level <level>', 'access log level (info, warn, error, silent)', 'info')
    .option('-q, --quiet', 'no access log (same as --log-level silent)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); re-read on SIGHUP')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert; re-read on SIGHUP')
    .option(
      '--insecure-http',
      'serve plain HTTP on an address that is not loopback (without it, such a --host needs TLS)',
    )
    .option(
      '--drain-timeout <ms>',
      'on SIGTERM, how long in-flight requests may take before connections are cut',
      intArg(0, 600_000),
      DRAIN_TIMEOUT_MS,
    )
    .addOption(
      new Option('--shutdown-timeout <ms>', 'the old name of --drain-timeout').argParser(intArg(0, 600_000)).hideHelp(),
    )
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics, /healthz and /readyz on this port (0 picks one; off by default)',
      intArg(0, 65535),
    )
    .option('--metrics-host <host>', 'address of the metrics port', DEFAULT_HOST)
    .option('--degraded-not-ready', '/readyz answers 503 while the key store is degraded (default: 200 "degraded")')
    .option(
      '--seed <file>',
      "create these keys and aliases at start-up if absent, never overwritten (YAML or JSON; kms-hmac's format or local-kms's seed.yaml)",
    )
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
    .option(
      '--keys-quota <n>',
      'KMS keys in the store, in any state (AWS: 100,000)',
      intArg(1, 100_000_000),
      QUOTAS.keys,
    )
    .option('--aliases-per-key-quota <n>', 'aliases per KMS key (AWS: 50)', intArg(1, 1_000_000), QUOTAS.aliasesPerKey)
    .option('--tags-per-key-quota <n>', 'tags per KMS key (AWS: 50)', intArg(1, 1_000_000), QUOTAS.tagsPerKey)
    .option(
      '--import-parameters-rate <per-second>',
      'GetParametersForImport requests per key and second (AWS: 0.25)',
      positiveNumber,
      QUOTAS.getParametersForImportPerSecond,
    )
    .option(
      '--exit-on-tamper',
      `stop (exit ${EXIT_TAMPERED}) when the key store fails authentication while running, instead of serving on from its last authenticated snapshot`,
    )
    .addHelpText(
      'after',
      `
Credentials: ${ENV_ACCESS_KEY_ID} / ${ENV_SECRET_ACCESS_KEY} (and ${ENV_SESSION_TOKEN}),
or --credentials-file. Secrets need at least 16 characters.

Who may do what: each --credentials-file entry may name the principal its requests are
evaluated as, for key policies, grants and accounts:
  "principal"  an IAM ARN, e.g. arn:aws:iam::111122223333:user/shipper (root, user/, role/,
               or sts assumed-role/); its account is the ARN's
  "accountId"  12 digits; alone, the entry is that account's root principal
An entry with neither, and the --access-key-id pair, is the root of --account-id. The file is
re-read on SIGHUP: a file that fails to load or check leaves the previous set in force (the
reason is printed as a warning).

Without any credentials, the
server refuses to start unless --auth any is given (loopback only; keys in memory unless
--keystore names a store). A request with no credentials or unknown ones is answered at once
(its body is never read) and its connection closed, and so is a request addressed to a host
that is neither loopback nor an --allowed-host (403).

Binding an address that is not loopback needs TLS (--tls-cert, --tls-key; TLS 1.2 at least;
SIGHUP re-reads them) or --insecure-http. /healthz and /readyz answer on the serving port (before
the Host check and SigV4: a probe signs nothing) and on --metrics-port, which also serves /metrics.

SIGTERM drains: no new connections, requests in flight are answered (with Connection: close),
idle connections closed, everything left cut after --drain-timeout; then exit 0.

Exit codes: 0 stopped by SIGTERM/SIGINT; 2 bad flags or could not start; ${EXIT_TAMPERED} the key store
failed authentication while running (--exit-on-tamper).

Example:
  export ${ENV_ACCESS_KEY_ID}=AKIDLOCAL ${ENV_SECRET_ACCESS_KEY}=$(head -c 30 /dev/urandom | base64)
  kms-hmac serve --port 4599 &
  AWS_ACCESS_KEY_ID=AKIDLOCAL AWS_SECRET_ACCESS_KEY=$${ENV_SECRET_ACCESS_KEY} \\
    aws kms create-key --key-spec HMAC_256 --key-usage GENERATE_VERIFY_MAC --endpoint-url http://127.0.0.1:4599`,
    )
    .action(async (flags: ServeFlags, command: Command) => {
      let options: StartServerOptions;
      let server: StartedServer | undefined;
      let stopping = false;
      const stop = (why: string, code: number) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`kms-hmac serve: ${why}\n`);
        const exit = (c: number) => process.exit(c);
        if (!server) return exit(code);
        server.close().then(
          () => {
            process.stderr.write('kms-hmac serve: stopped\n');
            exit(code);
          },
          (err) => {
            process.stderr.write(`kms-hmac serve: shutdown failed: ${String(err)}\n`);
            exit(code === 0 ? 1 : code);
          },
        );
      };
      if (flags.secretAccessKey !== undefined) {
        process.emitWarning(
          `--secret-access-key puts the secret in argv, where other users of this machine can read it (ps, /proc): ` +
            `use ${ENV_SECRET_ACCESS_KEY} or --credentials-file. The flag goes away in the next major version.`,
          { type: 'DeprecationWarning', code: 'KMS_HMAC_SECRET_IN_ARGV' },
        );
      }
      // Emulator mode never serves the user's own keys (the default store, or $KMS_HMAC_KEYSTORE, that sign and verify use).
      const emulator = flags.auth === 'any';
      if (emulator && flags.keystore === undefined && process.env.KMS_HMAC_KEYSTORE) {
        process.emitWarning(
          '--auth any does not use $KMS_HMAC_KEYSTORE: keys are kept in memory (pass --keystore to choose a store)',
          { type: 'ServerWarning', code: 'KMS_HMAC_AUTH_ANY_KEYSTORE' },
        );
      }
      try {
        options = {
          host: flags.host,
          port: flags.port,
          allowedHosts: flags.allowedHost,
          keyStore: flags.keystore ?? (emulator ? undefined : defaultKeyStorePath()),
          region: flags.region,
          ...(flags.regions !== undefined ? { regions: flags.regions } : {}),
          accountId: flags.accountId,
          quotas: {
            keys: flags.keysQuota,
            aliasesPerKey: flags.aliasesPerKeyQuota,
            tagsPerKey: flags.tagsPerKeyQuota,
            getParametersForImportPerSecond: flags.importParametersRate,
          },
          credentials: credentialsFromFlags(flags, process.env),
          auth: flags.auth,
          workers: flags.workers,
          log: flags.quiet ? false : { destination: flags.log, level: flags.logLevel },
          shutdownTimeoutMs: flags.shutdownTimeout ?? flags.drainTimeout ?? DRAIN_TIMEOUT_MS,
          maxConnections: flags.maxConnections,
          headersTimeoutMs: flags.headersTimeout,
          requestTimeoutMs: flags.requestTimeout,
          onKeyStoreHealth: (h) => {
            if (flags.exitOnTamper && h.state === 'tampered')
              stop(`${healthMessage(h)}: stopping (--exit-on-tamper)`, EXIT_TAMPERED);
          },
        };
        if (flags.credentialsFile !== undefined) options.credentialsFile = flags.credentialsFile;
        if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
          throw new Error('--tls-cert and --tls-key go together');
        if (flags.tlsCert !== undefined) options.tls = { certFile: flags.tlsCert, keyFile: flags.tlsKey! };
        if (flags.insecureHttp) options.insecureHttp = true;
        if (flags.metricsPort !== undefined) {
          options.metricsPort = flags.metricsPort;
          options.metricsHost = flags.metricsHost;
        }
        if (flags.degradedNotReady) options.degradedReady = false;
        if (flags.seed !== undefined) options.seed = flags.seed;
      } catch (err) {
        command.error(`kms-hmac serve: ${(err as Error).message}`, { exitCode: 2 });
      }
      try {
        server = await startServer(options!);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const msg =
          e.code === 'EADDRINUSE' ? `port ${flags.port} on ${flags.host} is already in use (try --port 0)` : e.message;
        command.error(`kms-hmac serve: ${msg}`, { exitCode: 2 });
      }
      // Before the listening line: a supervisor may send SIGTERM as soon as it reads it.
      let signals = 0;
      const shutdown = (sig: NodeJS.Signals) => {
        if (++signals > 1) {
          process.stderr.write(`kms-hmac serve: second ${sig}, exiting now\n`);
          process.exit(1);
        }
        stop(`${sig}: finishing in-flight requests`, 0);
      };
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
      const nCred = options!.auth === 'any' ? 'any signature (emulator mode)' : 'SigV4';
      const store = options!.keyStore === undefined ? 'in memory' : describeKeyStore(options!.keyStore as string);
      if (server!.seeded) process.stdout.write(`kms-hmac serve: ${seedSummary(options!.seed!, server!.seeded)}\n`);
      if (server!.metricsUrl)
        process.stdout.write(`kms-hmac serve: metrics on ${server!.metricsUrl}/metrics (probes: /healthz, /readyz)\n`);
      const reloadTls = server!.reloadTls;
      if (reloadTls !== undefined) {
        process.on('SIGHUP', () => {
          reloadTls().then(
            (c) =>
              process.stderr.write(
                `kms-hmac serve: SIGHUP: TLS certificate reloaded (${c.subject}, valid to ${c.validTo})\n`,
              ),
            (err: Error) =>
              process.stderr.write(`kms-hmac serve: SIGHUP: ${err.message}; the certificate in use is kept\n`),
          );
        });
      }
      // Last: the line a supervisor (and the tests) wait for, once every handler is in place.
      process.stdout.write(
        `kms-hmac serve: listening on ${server!.url} (region ${options!.region}, account ${options!.accountId}, ` +
          `key store ${store}, auth ${nCred}, workers ${server!.workers})\n`,
      );
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
