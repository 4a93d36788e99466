/**
 * Liveness and readiness probes: `GET /healthz` and `GET /readyz` (HEAD too),
 * answered on the serving port and on the metrics port.
 *
 * - `/healthz`: 200 `{"status":"up"}` while the process serves (draining
 *   included: a liveness probe must not get a draining replica killed).
 * - `/readyz`: whether to send this replica traffic, from the key store's
 *   health (the listener only opens once the snapshot is loaded):
 *     ok        → 200 `{"status":"ready"}`
 *     degraded  → 200 `{"status":"degraded"}` (the database is unreachable and
 *                 MACs come from the snapshot), or 503 under
 *                 `degradedReady: false` (`--degraded-not-ready`)
 *     tampered  → 503 `{"status":"tampered"}` (a reload failed authentication)
 *     draining  → 503 `{"status":"draining"}` (SIGTERM: let the balancer move on)
 *
 * A probe is answered before the Host check and SigV4: a Kubernetes probe
 * addresses the pod by its IP and signs nothing. So the answer says nothing
 * but one of those words: no store name, no error text, no version.
 */
import type http from 'node:http';
import type { KeyStoreHealth } from '../keystore/types.js';

export type ProbePath = '/healthz' | '/readyz';
export type ReadinessStatus = 'ready' | 'degraded' | 'tampered' | 'draining';

export interface ProbeSource {
  /** The key store's health (with workers, in the primary: the worst any worker reported). */
  keyStoreHealth(): KeyStoreHealth;
  /** True once shutdown began. */
  draining(): boolean;
  /** Whether `degraded` answers 200 (default true: MACs are still served). */
  degradedReady: boolean;
}

export function readiness(src: ProbeSource): { ready: boolean; status: ReadinessStatus } {
  if (src.draining()) return { ready: false, status: 'draining' };
  const state = src.keyStoreHealth().state;
  if (state === 'ok') return { ready: true, status: 'ready' };
  if (state === 'degraded') return { ready: src.degradedReady, status: 'degraded' };
  return { ready: false, status: 'tampered' };
}

/** The probe a request asks for: GET or HEAD of exactly /healthz or /readyz; undefined otherwise. */
export function probeOf(req: http.IncomingMessage): ProbePath | undefined {
  if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
  return req.url === '/healthz' || req.url === '/readyz' ? req.url : undefined;
}

/** Answers a probe request (see probeOf) and closes nothing: probes reuse their connection. */
export function answerProbe(path: ProbePath, req: http.IncomingMessage, res: http.ServerResponse, src: ProbeSource) {
  let status = 200;
  let body: string;
  if (path === '/healthz') body = '{"status":"up"}';
  else {
    const r = readiness(src);
    status = r.ready ? 200 : 503;
    body = `{"status":"${r.status}"}`;
  }
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...(src.draining() ? { Connection: 'close' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}
