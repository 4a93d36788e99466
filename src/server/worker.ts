/**
 * Cluster worker entry for `startServer({ workers: N })`: waits for its
 * options over IPC, serves, reloads its TLS pair when the primary asks
 * (the primary gets SIGHUP), and drains on `shutdown`, SIGTERM or SIGINT
 * (exit 0 once in-flight requests finished and the store is closed).
 */
import type {
  PrimaryMessage,
  StartedServer,
  StartServerOptions,
  WorkerCredentialsMessage,
  WorkerMessage,
  WorkerStartMessage,
} from './index.js';
import { promClient } from './metrics.js';
import { startInProcess, type InProcessHooks } from './start.js';

const tell = (m: WorkerMessage) => process.send?.(m);

let server: StartedServer | undefined;
let stopping = false;

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await server?.close();
    process.exitCode = 0;
  } catch (err) {
    process.stderr.write(`kms-hmac worker ${process.pid}: shutdown failed: ${String(err)}\n`);
    process.exitCode = 1;
  }
  process.disconnect?.();
  // Let pino's async destination flush, then leave even if a handle lingers.
  setTimeout(() => process.exit(), 200).unref();
}

function reloadTls(id: number): void {
  const reload = server?.reloadTls;
  if (reload === undefined) return void tell({ type: 'tls', id, error: 'this worker serves no TLS' });
  reload().then(
    (info) => tell({ type: 'tls', id, info }),
    (err: unknown) => tell({ type: 'tls', id, error: (err as Error).message }),
  );
}

/** The registry the primary's AggregatorRegistry reads over IPC (prom-client answers its requests itself). */
function clusterRegistry(): NonNullable<InProcessHooks['metricsRegistry']> {
  const { AggregatorRegistry } = promClient();
  const registry = new AggregatorRegistry(); // constructing one installs the worker's answering listener
  AggregatorRegistry.setRegistries([registry]);
  return registry as unknown as NonNullable<InProcessHooks['metricsRegistry']>;
}

process.on('message', (m: WorkerStartMessage | WorkerCredentialsMessage | PrimaryMessage) => {
  if (m?.type === 'start' && server === undefined) {
    // The primary checked the options, warned and seeded; the store's health goes to the primary too.
    const options: StartServerOptions = {
      ...m.options,
      workers: 1,
      onKeyStoreHealth: (health) => tell({ type: 'health', health }),
    };
    const passphrase = m.passphrase === null ? null : Buffer.from(m.passphrase, 'base64');
    // SIGHUP is the primary's: it asks every worker to reload (a hangup of the whole group must not kill workers).
    if (m.options.tls !== undefined) process.on('SIGHUP', () => {});
    startInProcess(options, m.options.credentials, {
      passphrase,
      ...(m.metrics ? { metricsRegistry: clusterRegistry() } : {}),
    }).then(
      (s) => {
        server = s;
        if (stopping) void s.close();
        else tell({ type: 'listening', port: s.port });
      },
      (err) => {
        tell({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  } else if (m?.type === 'stop-accepting') {
    server?.stopAccepting(); // the cluster's message that removes this worker from the round robin goes first
    tell({ type: 'not-accepting' });
  } else if (m?.type === 'credentials') {
    // Checked by the primary, which reloaded them; a refusal here leaves this worker on its old set.
    try {
      server?.setCredentials(m.credentials);
    } catch (err) {
      process.stderr.write(`kms-hmac worker ${process.pid}: credentials not replaced: ${String(err)}\n`);
    }
  } else if (m?.type === 'shutdown') {
    void stop();
  } else if (m?.type === 'reload-tls') {
    reloadTls(m.id);
  }
});
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
tell({ type: 'ready' });
