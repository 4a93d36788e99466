/**
 * Graceful drain (SIGTERM, `close()`): stop accepting connections, finish the
 * requests in flight, close keep-alive connections as they fall idle, and cut
 * whatever is left when the drain timeout runs out.
 *
 *   t = 0       the listener closes (new connections are refused; with
 *               workers, the cluster primary stops handing this worker any).
 *               Every response from now on carries `Connection: close`, so
 *               a connection closes as soon as its current request is
 *               answered, and /readyz answers 503 "draining".
 *   t = grace   keep-alive connections idle since then are closed
 *               (`IDLE_GRACE_MS`, or the timeout if shorter).
 *   t = timeout every connection still open is cut.
 *
 * Why a grace instead of closing idle connections at once (what
 * http.Server#close does since Node 19): a client may have just written a
 * request on a connection the server still sees as idle, and closing it
 * then resets that request. A busy client sends its next request within the
 * grace and gets it answered, with `Connection: close`; only a connection
 * silent for the whole grace is closed under it.
 */
import type http from 'node:http';
import net from 'node:net';

/** How long idle keep-alive connections are left for their clients' next request once a drain begins. */
export const IDLE_GRACE_MS = 1000;

/** Default drain timeout (`--drain-timeout`). */
export const DRAIN_TIMEOUT_MS = 10_000;

const listenerClosed = new WeakMap<http.Server, Promise<void>>();

/**
 * Closes `server`'s listener (idempotent) and resolves once its last
 * connection closed. Alone, it changes nothing for the connections open:
 * a cluster worker calls it first, so that the primary stops handing it
 * connections before its own ones start closing (index.ts says why).
 */
export function stopAccepting(server: http.Server): Promise<void> {
  let closed = listenerClosed.get(server);
  if (closed === undefined) {
    // net.Server#close stops accepting without http.Server#close's immediate closing of idle connections.
    closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    listenerClosed.set(server, closed);
  }
  return closed;
}

/**
 * Drains `server` (see above) and resolves once every connection is closed
 * and `idle()` resolved (no request is still being processed).
 */
export async function drain(server: http.Server, timeoutMs: number, idle: () => Promise<void>): Promise<void> {
  const closed = stopAccepting(server);
  const grace = setTimeout(() => server.closeIdleConnections(), Math.min(IDLE_GRACE_MS, timeoutMs));
  const cut = setTimeout(() => server.closeAllConnections(), timeoutMs);
  try {
    await closed;
    await idle();
  } finally {
    clearTimeout(grace);
    clearTimeout(cut);
  }
}
