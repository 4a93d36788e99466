/**
 * Leases: how the fast path knows that AWS KMS would still answer GenerateMac
 * and VerifyMac for a key, for this caller, now.
 *
 * Each key the fast path serves has a lease. A probe (injected: the fast path
 * asks the real client for a DryRun GenerateMac and a DescribeKey) returns one
 * of three outcomes:
 *   - granted:     AWS would answer. The lease is valid until the probe's
 *                  start + leaseMs (or the material's ValidTo, if sooner), so a
 *                  local answer is always AWS's decision at most leaseMs old;
 *   - refused:     AWS would not (disabled, pending deletion or import, not
 *                  found, access denied, credentials refused). The lease is
 *                  dropped at once: every request is forwarded;
 *   - unreachable: no answer (network, throttling, 5xx, timeout). Nothing
 *                  changes; a valid lease runs out at its expiry.
 *
 *   pending ──granted──▶ valid ──(expiry, not renewed)──▶ expired
 *      │                  ▲  │                              │
 *   refused            granted refused ◀───────refused──────┘
 *      ▼                  │  ▼
 *   revoked ◀─────────────┴─ revoked        (granted from any state: valid)
 *
 * Probing never runs on the request path: a request only marks its key used
 * and, for a key with no probe scheduled, schedules one on a timer. A lease is
 * renewed at a jittered 50–75 % of its term while its key is in use; a key
 * not requested since its last probe stops being probed and its lease lapses
 * (its next request is forwarded and restarts probing). Unreachable probes are
 * retried with capped exponential backoff.
 */
import { EventEmitter } from 'node:events';

export type LeaseState = 'pending' | 'valid' | 'revoked' | 'expired';
export type ProbeResult = 'granted' | 'refused' | 'unreachable';

export type ProbeOutcome =
  | { result: 'granted' /** Epoch ms after which the material expires in AWS. */; validTo?: number }
  | {
      result: 'refused' | 'unreachable' /** The error name (or a short reason) AWS's answer or its absence gave. */;
      error: string;
    };

/** A key's lease changed state. */
export interface LeaseEvent {
  /** The remote key ARN. */
  keyId: string;
  state: LeaseState;
  previous: LeaseState;
  /** Why, in words: `probe: would succeed`, `probe: DisabledException`, `forwarded DisableKey succeeded`, … */
  reason: string;
  /** The error name behind a refusal or an unreachable probe. */
  error?: string;
  at: Date;
  /** Set while the lease is valid. */
  expiresAt?: Date;
}

/** Per-key figures in `fastPathStats.keys`. */
export interface KeyLeaseStats {
  lease: LeaseState;
  /** Until when local answers are AWS's decision (set while valid, and once expired). */
  expiresAt?: Date;
  /** A probe is in flight. */
  probing: boolean;
  lastProbe?: { at: Date; result: ProbeResult; error?: string };
  /** Answered locally (stale answers included). */
  local: number;
  /** Answered locally from an expired lease because AWS was unreachable (`onUnreachable: 'serve-stale'`). */
  stale: number;
  forwarded: number;
}

export type Decision = 'local' | 'stale' | 'forward';

export interface LeaseTableOptions {
  leaseMs: number;
  /** Answer from an expired lease while AWS is unreachable (the last answer AWS gave was "would succeed"). */
  serveStale: boolean;
  probe(keyId: string, macAlgorithm: string, signal: AbortSignal): Promise<ProbeOutcome>;
  now?: () => number;
  random?: () => number;
}

/** Renewal at this fraction of the term after the probe started, jittered between the two. */
const RENEW_FROM = 0.5;
const RENEW_TO = 0.75;
/** Unreachable probes are retried after this, doubling, capped at a quarter of the term. */
const RETRY_BASE_MS = 250;
/** A probe that takes longer is abandoned (and counts as unreachable): a hung remote must not stop probing. */
const PROBE_TIMEOUT_MS = 10_000;

/** One key's lease. Fields are the table's; callers read counts through `stats()`. */
export class KeyLease {
  verdict: 'none' | 'granted' | 'refused' = 'none';
  expiresAt = 0;
  lastProbe: { at: number; result: ProbeResult; error?: string } | undefined;
  reported: LeaseState = 'pending';
  /** The probe in flight: its abort handle, start and completion. */
  inFlight: { abort: AbortController; started: number; done: Promise<void> } | undefined;
  /** The next probe (or the check whether one is needed). */
  timer: NodeJS.Timeout | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  /** Requested since the last probe started: worth renewing. */
  used = true;
  unreachableStreak = 0;
  local = 0;
  stale = 0;
  forwarded = 0;

  constructor(
    readonly keyId: string,
    readonly macAlgorithm: string,
  ) {}

  state(now: number): LeaseState {
    if (this.verdict === 'none') return 'pending';
    if (this.verdict === 'refused') return 'revoked';
    return now < this.expiresAt ? 'valid' : 'expired';
  }
}

export class LeaseTable extends EventEmitter<{ lease: [LeaseEvent] }> {
  readonly leaseMs: number;
  readonly serveStale: boolean;
  readonly #probe: LeaseTableOptions['probe'];
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #leases = new Map<string, KeyLease>();
  #closed = false;

  constructor(o: LeaseTableOptions) {
    super();
    this.leaseMs = o.leaseMs;
    this.serveStale = o.serveStale;
    this.#probe = o.probe;
    this.#now = o.now ?? Date.now;
    this.#random = o.random ?? Math.random;
  }

  /**
   * The lease of a key a request names, marked used (undefined if the local
   * copy has no MAC algorithm to probe with). A key seen for the first time,
   * or one no longer probed, gets a probe scheduled (not run: the request
   * does not wait for it).
   */
  use(keyId: string, macAlgorithm: () => string | undefined): KeyLease | undefined {
    let lease = this.#leases.get(keyId);
    if (lease === undefined) {
      const alg = macAlgorithm();
      if (alg === undefined) return undefined;
      lease = new KeyLease(keyId, alg);
      this.#leases.set(keyId, lease);
    }
    lease.used = true;
    if (lease.inFlight === undefined && lease.timer === undefined) this.#schedule(lease, 0);
    return lease;
  }

  /** The existing lease of a key, if a request ever named it. */
  get(keyId: string): KeyLease | undefined {
    return this.#leases.get(keyId);
  }

  /**
   * Whether a request for this key may be answered locally now. Past its expiry, a lease AWS
   * last granted is served stale (when allowed) only if renewing it failed to reach AWS: the
   * last probe was unreachable, or the renewal probe started before the expiry is still out.
   * A lease that lapsed because its key went unused is not: its next request is forwarded.
   */
  decide(lease: KeyLease): Decision {
    if (lease.verdict !== 'granted') return 'forward';
    if (this.#now() < lease.expiresAt) return 'local';
    if (!this.serveStale) return 'forward';
    const renewalFailed =
      lease.lastProbe?.result === 'unreachable' ||
      (lease.inFlight !== undefined && lease.inFlight.started < lease.expiresAt);
    return renewalFailed ? 'stale' : 'forward';
  }

  /**
   * Drops a lease at once (a forwarded answer showed AWS would refuse). A probe
   * in flight is abandoned, since it may have been answered before the change;
   * the next one follows the usual cadence and restores the lease if AWS agrees.
   */
  revoke(lease: KeyLease, reason: string, error?: string): void {
    if (this.#closed) return;
    this.#abandonProbe(lease);
    lease.verdict = 'refused';
    lease.expiresAt = 0;
    this.#clearExpiry(lease);
    this.#report(lease, reason, error);
    if (lease.timer === undefined) this.#schedule(lease, this.#renewDelay());
  }

  revokeAll(reason: string, error?: string): void {
    for (const lease of this.#leases.values()) if (lease.verdict !== 'refused') this.revoke(lease, reason, error);
  }

  /** Asks AWS now (replacing any probe in flight or scheduled); resolves when it answered or gave up. */
  probeNow(lease: KeyLease): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#abandonProbe(lease);
    this.#clearTimer(lease);
    lease.used = true;
    return this.#run(lease);
  }

  stats(): Record<string, KeyLeaseStats> {
    const now = this.#now();
    const out: Record<string, KeyLeaseStats> = {};
    for (const [keyId, l] of this.#leases) {
      const s: KeyLeaseStats = {
        lease: l.state(now),
        probing: l.inFlight !== undefined,
        local: l.local,
        stale: l.stale,
        forwarded: l.forwarded,
      };
      if (l.verdict === 'granted') s.expiresAt = new Date(l.expiresAt);
      if (l.lastProbe) {
        s.lastProbe = { at: new Date(l.lastProbe.at), result: l.lastProbe.result };
        if (l.lastProbe.error !== undefined) s.lastProbe.error = l.lastProbe.error;
      }
      out[keyId] = s;
    }
    return out;
  }

  /** Stops every timer and abandons probes in flight; leases stay as they are (and expire). */
  close(): void {
    this.#closed = true;
    for (const lease of this.#leases.values()) {
      this.#abandonProbe(lease);
      this.#clearTimer(lease);
      this.#clearExpiry(lease);
    }
  }

  // ---------------------------------------------------------------------------

  #schedule(lease: KeyLease, delayMs: number): void {
    if (this.#closed) return;
    this.#clearTimer(lease);
    lease.timer = setTimeout(
      () => {
        lease.timer = undefined;
        // Renew only keys in use since the last probe; the others lapse, and their next request starts probing again.
        if (lease.used) void this.#run(lease);
      },
      Math.max(0, delayMs),
    );
    lease.timer.unref();
  }

  #run(lease: KeyLease): Promise<void> {
    const abort = new AbortController();
    const started = this.#now();
    lease.used = false;
    const timeout = setTimeout(() => abort.abort(), Math.min(PROBE_TIMEOUT_MS, this.leaseMs));
    timeout.unref();
    const done = this.#probe(lease.keyId, lease.macAlgorithm, abort.signal)
      .catch((err: unknown): ProbeOutcome => ({ result: 'unreachable', error: errorName(err) }))
      .then((outcome) => {
        clearTimeout(timeout);
        // Abandoned (revoked, replaced or closed meanwhile): its answer may predate what we know now.
        if (lease.inFlight?.abort !== abort || this.#closed) return;
        lease.inFlight = undefined;
        this.#settle(
          lease,
          started,
          abort.signal.aborted && outcome.result !== 'granted'
            ? { result: 'unreachable', error: 'ProbeTimeout' }
            : outcome,
        );
      });
    lease.inFlight = { abort, started, done };
    return done;
  }

  #settle(lease: KeyLease, started: number, outcome: ProbeOutcome): void {
    const now = this.#now();
    const error = outcome.result === 'granted' ? undefined : outcome.error;
    lease.lastProbe =
      error === undefined ? { at: now, result: outcome.result } : { at: now, result: outcome.result, error };
    let next: number;
    if (outcome.result === 'granted') {
      lease.verdict = 'granted';
      lease.expiresAt = Math.min(started + this.leaseMs, outcome.validTo ?? Infinity);
      lease.unreachableStreak = 0;
      this.#armExpiry(lease, now);
      next = started + this.#renewDelay() - now;
    } else if (outcome.result === 'refused') {
      lease.verdict = 'refused';
      lease.expiresAt = 0;
      lease.unreachableStreak = 0;
      this.#clearExpiry(lease);
      next = started + this.#renewDelay() - now;
    } else {
      lease.unreachableStreak++;
      const backoff = Math.min(this.leaseMs / 4, RETRY_BASE_MS * 2 ** Math.min(lease.unreachableStreak - 1, 20));
      next = backoff * (0.5 + this.#random() / 2);
    }
    const reason =
      outcome.result === 'granted'
        ? 'probe: would succeed'
        : `probe: ${outcome.result === 'refused' ? '' : 'unreachable, '}${error}`;
    this.#report(lease, reason, error);
    this.#schedule(lease, next);
  }

  /** When to renew, after a probe's start: jittered so that a fleet does not probe in step. */
  #renewDelay(): number {
    return this.leaseMs * (RENEW_FROM + (RENEW_TO - RENEW_FROM) * this.#random());
  }

  #armExpiry(lease: KeyLease, now: number): void {
    this.#clearExpiry(lease);
    // A few ms late rather than early: the state flips on the clock, the timer only reports it.
    lease.expiryTimer = setTimeout(
      () => {
        lease.expiryTimer = undefined;
        if (lease.state(this.#now()) === 'valid') return this.#armExpiry(lease, this.#now());
        const last = lease.lastProbe;
        const reason =
          last?.result === 'unreachable'
            ? `not renewed: AWS unreachable (${last.error})${this.serveStale ? '; serving stale answers' : ''}`
            : 'not renewed: the key was not requested since the last probe';
        this.#report(lease, reason, last?.result === 'unreachable' ? last.error : undefined);
      },
      Math.max(0, lease.expiresAt - now) + 5,
    );
    lease.expiryTimer.unref();
  }

  #report(lease: KeyLease, reason: string, error: string | undefined): void {
    const now = this.#now();
    const state = lease.state(now);
    if (state === lease.reported) return;
    const e: LeaseEvent = { keyId: lease.keyId, state, previous: lease.reported, reason, at: new Date(now) };
    if (error !== undefined) e.error = error;
    if (state === 'valid') e.expiresAt = new Date(lease.expiresAt);
    lease.reported = state;
    try {
      this.emit('lease', e);
    } catch (err) {
      // A throwing listener is the listener's bug: surface it, but never leave a lease half-updated.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  #abandonProbe(lease: KeyLease): void {
    if (lease.inFlight === undefined) return;
    lease.inFlight.abort.abort();
    lease.inFlight = undefined;
  }

  #clearTimer(lease: KeyLease): void {
    if (lease.timer !== undefined) clearTimeout(lease.timer);
    lease.timer = undefined;
  }

  #clearExpiry(lease: KeyLease): void {
    if (lease.expiryTimer !== undefined) clearTimeout(lease.expiryTimer);
    lease.expiryTimer = undefined;
  }
}

/** An error's name for stats and events: the KMS exception name, or a network error's code (ECONNREFUSED). */
export function errorName(err: unknown): string {
  if (!(err instanceof Error)) return 'UnknownError';
  const code = (err as { code?: unknown }).code;
  return err.name === 'Error' && typeof code === 'string' ? code : err.name;
}
