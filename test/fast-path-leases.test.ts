/**
 * The lease state machine on its own (src/client/fast-path-leases.ts), on vitest's
 * fake clock with a scripted probe: when it probes, what it decides, which
 * events it emits. The fast path against a real remote is
 * test/kms-fast-path.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseTable, type LeaseEvent, type ProbeOutcome } from '../src/client/fast-path-leases.js';

const KEY = 'arn:aws:kms:us-east-1:111122223333:key/k';
const LEASE_MS = 10_000;
const ALG = () => 'HMAC_SHA_256';

/** A probe whose answers the test gives, one per call, when it chooses. */
function scriptedProbe() {
  const calls: Array<{ at: number; answer: (o: ProbeOutcome) => void; signal: AbortSignal }> = [];
  const probe = (_keyId: string, _alg: string, signal: AbortSignal) =>
    new Promise<ProbeOutcome>((resolve) => calls.push({ at: Date.now(), answer: resolve, signal }));
  return { calls, probe };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function table(o: { serveStale?: boolean; random?: () => number } = {}) {
  const p = scriptedProbe();
  const t = new LeaseTable({
    leaseMs: LEASE_MS,
    serveStale: o.serveStale ?? false,
    probe: p.probe,
    random: o.random ?? (() => 0.5),
  });
  const events: LeaseEvent[] = [];
  t.on('lease', (e) => events.push(e));
  return { t, calls: p.calls, events };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaseTable', () => {
  it('a first request schedules a probe and is forwarded; "would succeed" grants until start + lease', async () => {
    const { t, calls, events } = table();
    const lease = t.use(KEY, ALG)!;
    expect(calls).toHaveLength(0); // scheduled, not run on the request path
    expect(t.decide(lease)).toBe('forward');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    const started = Date.now();
    await vi.advanceTimersByTimeAsync(300);
    calls[0]!.answer({ result: 'granted' });
    await settle();
    expect(t.decide(lease)).toBe('local');
    expect(events).toMatchObject([{ keyId: KEY, state: 'valid', previous: 'pending', reason: 'probe: would succeed' }]);
    expect(events[0]!.expiresAt!.getTime()).toBe(started + LEASE_MS);
    t.close();
  });

  it('renews keys in use at a jittered 50–75 % of the term; lets unused ones lapse; a material ValidTo caps the lease', async () => {
    for (const [random, at] of [
      [0, 0.5],
      [0.999, 0.75],
    ] as const) {
      const { t, calls, events } = table({ random: () => random });
      const lease = t.use(KEY, ALG)!;
      await vi.advanceTimersByTimeAsync(0);
      const started = Date.now();
      calls[0]!.answer({ result: 'granted', validTo: started + LEASE_MS / 2 + 1000 });
      await settle();
      expect(t.stats()[KEY]!.expiresAt!.getTime()).toBe(started + LEASE_MS / 2 + 1000);
      t.use(KEY, ALG)!; // in use: renewed
      await vi.advanceTimersByTimeAsync(LEASE_MS * at - 10);
      expect(calls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(20);
      expect(calls).toHaveLength(2);
      expect(calls[1]!.at - started).toBeCloseTo(LEASE_MS * at, -2);
      calls[1]!.answer({ result: 'granted' });
      await settle();
      // Not used since: no third probe, and the lease lapses.
      await vi.advanceTimersByTimeAsync(LEASE_MS * 2);
      expect(calls).toHaveLength(2);
      expect(t.decide(lease)).toBe('forward');
      expect(events.at(-1)).toMatchObject({
        state: 'expired',
        reason: 'not renewed: the key was not requested since the last probe',
      });
      // The next request starts probing again (and is forwarded meanwhile).
      t.use(KEY, ALG)!;
      await vi.advanceTimersByTimeAsync(0);
      expect(calls).toHaveLength(3);
      t.close();
    }
  });

  it('a refusal drops the lease at once; a later grant restores it', async () => {
    const { t, calls, events } = table();
    const lease = t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(0);
    calls[0]!.answer({ result: 'granted' });
    await settle();
    t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(LEASE_MS * 0.625);
    calls[1]!.answer({ result: 'refused', error: 'DisabledException' });
    await settle();
    expect(t.decide(lease)).toBe('forward');
    t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(LEASE_MS * 0.625);
    calls[2]!.answer({ result: 'granted' });
    await settle();
    expect(t.decide(lease)).toBe('local');
    expect(events.map((e) => [e.state, e.reason])).toEqual([
      ['valid', 'probe: would succeed'],
      ['revoked', 'probe: DisabledException'],
      ['valid', 'probe: would succeed'],
    ]);
    t.close();
  });

  it('revoke() abandons a probe in flight: an answer that may predate the change is ignored', async () => {
    const { t, calls } = table();
    const lease = t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(0);
    calls[0]!.answer({ result: 'granted' });
    await settle();
    void t.probeNow(lease);
    await settle();
    expect(calls).toHaveLength(2);
    t.revoke(lease, 'forwarded DisableKey succeeded');
    expect(calls[1]!.signal.aborted).toBe(true);
    calls[1]!.answer({ result: 'granted' });
    await settle();
    expect(t.decide(lease)).toBe('forward');
    expect(t.stats()[KEY]).toMatchObject({ lease: 'revoked', probing: false });
    t.close();
  });

  it('unreachable: retried with capped backoff; fail-closed forwards after expiry, serve-stale answers stale', async () => {
    for (const serveStale of [false, true]) {
      const { t, calls, events } = table({ serveStale, random: () => 1 - Number.EPSILON });
      const lease = t.use(KEY, ALG)!;
      await vi.advanceTimersByTimeAsync(0);
      calls[0]!.answer({ result: 'granted' });
      await settle();
      const gaps: number[] = [];
      for (let i = 1; i <= 6; i++) {
        t.use(KEY, ALG)!;
        while (calls.length <= i) await vi.advanceTimersByTimeAsync(10);
        if (i > 1) gaps.push(calls[i]!.at - calls[i - 1]!.at);
        calls[i]!.answer({ result: 'unreachable', error: 'ECONNREFUSED' });
        await settle();
      }
      // 250, 500, 1000, 2000, then a quarter of the term (2500).
      expect(gaps.map((g) => Math.round(g / 10) * 10)).toEqual([250, 500, 1000, 2000, 2500]);
      await vi.advanceTimersByTimeAsync(LEASE_MS);
      expect(t.decide(lease)).toBe(serveStale ? 'stale' : 'forward');
      expect(events.at(-1)).toMatchObject({ state: 'expired', error: 'ECONNREFUSED' });
      expect(events.at(-1)!.reason).toMatch(/^not renewed: AWS unreachable \(ECONNREFUSED\)/);
      t.close();
    }
  });

  it('serve-stale: a renewal still out at expiry counts as unreachable; a lease lapsed unused does not', async () => {
    const { t, calls } = table({ serveStale: true });
    const lease = t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(0);
    calls[0]!.answer({ result: 'granted' });
    await settle();
    t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(LEASE_MS * 0.625 + 1);
    expect(calls).toHaveLength(2); // the renewal, never answered
    await vi.advanceTimersByTimeAsync(LEASE_MS * 0.375);
    expect(t.decide(lease)).toBe('stale');
    t.close();

    const idle = table({ serveStale: true });
    const l2 = idle.t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(0);
    idle.calls[0]!.answer({ result: 'granted' });
    await settle();
    await vi.advanceTimersByTimeAsync(LEASE_MS * 2);
    expect(idle.t.decide(l2)).toBe('forward');
    idle.t.close();
  });

  it('a probe that never answers is abandoned after min(10 s, lease) and counted unreachable', async () => {
    const { t, calls } = table();
    t.use(KEY, ALG)!;
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(LEASE_MS);
    expect(calls[0]!.signal.aborted).toBe(true);
    calls[0]!.answer({ result: 'unreachable', error: 'AbortError' });
    await settle();
    expect(t.stats()[KEY]).toMatchObject({
      lease: 'pending',
      probing: false,
      lastProbe: { result: 'unreachable', error: 'ProbeTimeout' },
    });
    t.close();
  });

  it('a listener that throws does not disturb the lease', async () => {
    const { t, calls } = table();
    t.on('lease', () => {
      throw new Error('listener bug');
    });
    const thrown: unknown[] = [];
    const spy = vi.spyOn(process, 'nextTick').mockImplementation(((fn: () => void) => {
      try {
        fn();
      } catch (e) {
        thrown.push(e);
      }
    }) as never);
    try {
      const lease = t.use(KEY, ALG)!;
      await vi.advanceTimersByTimeAsync(0);
      calls[0]!.answer({ result: 'granted' });
      await settle();
      expect(t.decide(lease)).toBe('local');
      expect(thrown).toHaveLength(1);
    } finally {
      spy.mockRestore();
      t.close();
    }
  });
});
