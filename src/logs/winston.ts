/**
 * `kms-hmac/winston`: a winston transport that writes the log file and its
 * sidecar together (transport.ts, signed-log.ts):
 *
 *   const transport = new KmsHmacTransport({ file, keyId, checkpointsOut });
 *   const logger = winston.createLogger({ format: winston.format.json(), transports: [transport] });
 *   …
 *   logger.end(); await transport.done; // every line signed, the trailer written
 *
 * Each message is written as winston formatted it (info[MESSAGE]) and a
 * newline, and those bytes are what is MACed. In-process, the key may also
 * be an engine or client, and the sink a function (onCheckpoint). A process
 * killed before the end leaves a sidecar the next start continues (the rules
 * of `sign --follow`).
 */
import TransportStream, { type TransportStreamOptions } from 'winston-transport';
import type { OpenTransport, TransportExtras, TransportOptions } from './transport.js';
import { openTransport } from './transport.js';

export type KmsHmacTransportOptions = TransportStreamOptions &
  Partial<TransportOptions> &
  TransportExtras & { file: string };

const MESSAGE = Symbol.for('message');

export class KmsHmacTransport extends TransportStream {
  /** Resolves once the log is closed: everything signed, the trailer written (or rejects with the signer's error). */
  readonly done: Promise<void>;
  private readonly opened: Promise<OpenTransport>;

  constructor(options: KmsHmacTransportOptions) {
    super(options);
    const { level, format, silent, handleExceptions, handleRejections, ...rest } = options;
    this.opened = openTransport(rest as TransportOptions, rest);
    this.opened.then(
      ({ log }) => log.on('error', (err) => this.emit('error', err)),
      (err: Error) => this.emit('error', err),
    );
    this.done = new Promise((resolve, reject) => {
      this.once('finish', () => {
        this.opened.then((t) => t.close()).then(resolve, reject);
      });
    });
    this.done.catch(() => {});
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    const line = `${String(info[MESSAGE] ?? JSON.stringify(info))}\n`;
    this.opened.then(
      ({ log }) => {
        if (log.write(line)) callback();
        else log.once('drain', callback);
        this.emit('logged', info);
      },
      () => callback(),
    );
  }
}

export default KmsHmacTransport;
