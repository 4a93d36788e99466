/**
 * The health of a durable store while it runs (KeyStoreHealth, types.ts):
 * every background reload reports here, and each change of state is told
 * once, to the `onHealthChange` option or, without one, as a process warning
 * (code KMS_HMAC_KEYSTORE_TAMPERED, _DEGRADED or _RECOVERED).
 */
import { KeyStoreCorruptError, KeyStorePassphraseError } from './errors.js';
import type { KeyStoreHealth } from './types.js';

export type HealthListener = (health: KeyStoreHealth) => void;

/** Failing authentication (an edit, an older copy, another passphrase) is tampering; anything else means unreachable. */
function stateOf(err: unknown): 'tampered' | 'degraded' {
  return err instanceof KeyStoreCorruptError || err instanceof KeyStorePassphraseError ? 'tampered' : 'degraded';
}

/** One line saying what a health state means, for logs and warnings. */
export function healthMessage(h: KeyStoreHealth): string {
  const why = h.lastError ? ` (${h.lastError.name}: ${h.lastError.message})` : '';
  switch (h.state) {
    case 'tampered':
      return `key store ${h.store} failed authentication while running${why}; MACs are served from the snapshot it last authenticated`;
    case 'degraded':
      return `key store ${h.store} is unreachable${why}; MACs are served from the last snapshot, writes fail until it is back`;
    default:
      return `key store ${h.store} is back: its snapshot is current again`;
  }
}

/** A health change as a process warning (the default when no onHealthChange is given). */
export function warnHealth(h: KeyStoreHealth): void {
  const code = h.state === 'ok' ? 'RECOVERED' : h.state.toUpperCase();
  process.emitWarning(healthMessage(h), { type: 'KeyStoreWarning', code: `KMS_HMAC_KEYSTORE_${code}` });
}

export class HealthTracker {
  readonly #store: string;
  readonly #listener: HealthListener;
  #state: KeyStoreHealth['state'] = 'ok';
  #loadedAt: number | undefined;
  #lastError: KeyStoreHealth['lastError'];
  #failures = 0;

  constructor(store: string, listener: HealthListener | undefined) {
    this.#store = store;
    this.#listener = listener ?? warnHealth;
  }

  /** The snapshot is known current: loaded, caught up, or checked unchanged. */
  current(): void {
    this.#loadedAt = Date.now();
    if (this.#state !== 'ok') this.#set('ok');
  }

  /** A background reload failed with `err`. Tampering is not hidden by a later unreachable database. */
  failed(err: unknown): void {
    this.#failures++;
    const e = err instanceof Error ? err : new Error(String(err));
    this.#lastError = { name: e.name, message: e.message, at: Date.now() };
    const state = stateOf(err);
    if (state !== this.#state && !(state === 'degraded' && this.#state === 'tampered')) this.#set(state);
  }

  get(): KeyStoreHealth {
    const h: KeyStoreHealth = { store: this.#store, state: this.#state, reloadFailures: this.#failures };
    if (this.#loadedAt !== undefined) h.snapshotLoadedAt = this.#loadedAt;
    if (this.#lastError) h.lastError = { ...this.#lastError };
    return h;
  }

  #set(state: KeyStoreHealth['state']): void {
    this.#state = state;
    try {
      this.#listener(this.get());
    } catch {
      /* a listener's failure must not break the store */
    }
  }
}
