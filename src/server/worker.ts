/**
 * Cluster worker entry for `startServer({ workers: N })`: waits for its
 * options over IPC, serves, and shuts down gracefully on `shutdown`,
 * SIGTERM or SIGINT (exit 0 once in-flight requests finished and the store
 * is closed).
 */
import type {
  StartedServer,
  StartServerOptions,
  WorkerCredentialsMessage,
  WorkerMessage,
  WorkerStartMessage,
} from './index.js';
import { startInProcess } from './start.js';

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

process.on('message', (m: WorkerStartMessage | WorkerCredentialsMessage | { type: 'shutdown' }) => {
  if (m?.type === 'start' && server === undefined) {
    // The primary checked the options and warned; the store's health goes to the primary too.
    const options: StartServerOptions = {
      ...m.options,
      workers: 1,
      onKeyStoreHealth: (health) => tell({ type: 'health', health }),
    };
    const passphrase = m.passphrase === null ? null : Buffer.from(m.passphrase, 'base64');
    startInProcess(options, m.options.credentials, { passphrase }).then(
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
  } else if (m?.type === 'credentials') {
    // Checked by the primary, which reloaded them; a refusal here leaves this worker on its old set.
    try {
      server?.setCredentials(m.credentials);
    } catch (err) {
      process.stderr.write(`kms-hmac worker ${process.pid}: credentials not replaced: ${String(err)}\n`);
    }
  } else if (m?.type === 'shutdown') {
    void stop();
  }
});
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
tell({ type: 'ready' });
