/**
 * `kms-hmac/pino`: a pino transport that writes the log file and its sidecar
 * together (transport.ts, signed-log.ts). It runs in pino's worker thread:
 *
 *   const transport = pino.transport({ target: 'kms-hmac/pino', options: { file, keyId, checkpointsOut } });
 *   const logger = pino(transport);
 *   …
 *   transport.end(); // on shutdown: every line signed, the trailer written ('close' once done)
 *
 * Each line pino writes is appended as it is, newline included, and those
 * bytes are what is MACed. A process killed before end() leaves a sidecar
 * that the next start continues (the rules of `sign --follow`).
 */
import { once } from 'node:events';
import build from 'pino-abstract-transport';
import { openTransport, type TransportOptions } from './transport.js';

export type { TransportOptions as PinoTransportOptions } from './transport.js';

export default async function kmsHmacPinoTransport(options: TransportOptions) {
  const { log, close } = await openTransport(options);
  return build(
    async (source: AsyncIterable<string>) => {
      for await (const line of source) if (!log.write(`${line}\n`)) await once(log, 'drain');
    },
    { parse: 'lines', close: () => close() },
  );
}
