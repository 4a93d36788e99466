/**
 * Structured access log (pino, one JSON line per request). Logged: request
 * id, operation, status, error type, access key id (an identifier, not a
 * secret — AWS CloudTrail logs it too), remote address, duration. Never
 * logged: signatures, session tokens, secrets, request or response bodies,
 * key material.
 */
import type http from 'node:http';
import { createRequire } from 'node:module';
import type { Logger, pino as Pino } from 'pino';

export interface AccessLogOptions {
  /** `'stderr'` (default), `'stdout'`, or a file path (appended). */
  destination?: string;
  /** pino level; `'silent'` disables the log. Default `'info'`. */
  level?: string;
}

export interface AccessLog {
  readonly logger: Logger;
  request(
    req: http.IncomingMessage,
    id: string,
    op: string | undefined,
    status: number,
    errorType: string | undefined,
    accessKeyId: string | undefined,
    ms: number,
  ): void;
  error(id: string, op: string | undefined, err: unknown): void;
  flush(): void;
}

export function createAccessLog(opts: AccessLogOptions = {}): AccessLog | null {
  const level = opts.level ?? 'info';
  if (level === 'silent') return null;
  const d = opts.destination ?? 'stderr';
  // Loaded here, by the endpoint that logs: not on every CLI start.
  const pino = createRequire(import.meta.url)('pino') as typeof Pino;
  const dest = pino.destination({
    dest: d === 'stderr' ? 2 : d === 'stdout' ? 1 : d,
    sync: false,
    minLength: 4096,
    mkdir: d !== 'stderr' && d !== 'stdout',
  });
  const logger = pino({ level, base: { pid: process.pid }, messageKey: 'msg' }, dest);
  return {
    logger,
    request(req, id, op, status, errorType, accessKeyId, ms) {
      if (!logger.isLevelEnabled('info')) return;
      logger.info(
        {
          reqId: id,
          op: op ?? null,
          status,
          err: errorType,
          akid: accessKeyId,
          ip: req.socket.remoteAddress,
          ms: Math.round(ms * 1000) / 1000,
        },
        'request',
      );
    },
    error(id, op, err) {
      // Stack and name only: KMS-layer messages never carry secrets, but unknown errors might carry input.
      const e = err instanceof Error ? { name: err.name, stack: err.stack } : { value: String(err).slice(0, 200) };
      logger.error({ reqId: id, op: op ?? null, error: e }, 'internal error');
    },
    flush() {
      try {
        dest.flushSync();
      } catch {
        /* not yet open, or already closed */
      }
    },
  };
}
