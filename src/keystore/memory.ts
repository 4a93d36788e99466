/**
 * In-memory key store: the default when no store is named. Same semantics as
 * the durable stores (validation, frozen records, all-or-nothing
 * transactions), without durability.
 */
import { inspect } from 'node:util';
import { KeyStoreError } from './errors.js';
import { Mutex, StoreState, runTransaction, wipeLater } from './state.js';
import type { AliasRecord, KeyRecord, KeyStore, KeyStoreHealth, KeyStoreTransaction } from './types.js';

export class MemoryKeyStore implements KeyStore {
  readonly #state = new StoreState();
  #version = 0;
  #mutex = new Mutex();
  #closed = false;

  get version(): number {
    return this.#version;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  refresh(): Promise<boolean> {
    return Promise.resolve(false);
  }

  /** Always ok: there is nothing to reload. */
  health(): KeyStoreHealth {
    return { store: 'memory', state: 'ok', reloadFailures: 0 };
  }

  getKey(keyId: string): KeyRecord | undefined {
    return this.#state.getKey(keyId);
  }

  listKeys(): KeyRecord[] {
    return this.#state.listKeys();
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    return this.#state.getAlias(aliasName);
  }

  listAliases(): AliasRecord[] {
    return this.#state.listAliases();
  }

  transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new KeyStoreError('STORE_CLOSED', 'the key store is closed'));
    return this.#mutex.run(async () => {
      if (this.#closed) throw new KeyStoreError('STORE_CLOSED', 'the key store is closed');
      const { result, changes } = await runTransaction(this.#state, mutate);
      if (changes) {
        wipeLater(this.#state.apply(changes));
        this.#version++;
      }
      return result;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#mutex.idle();
    // Reads keep working on the last state; only writes are refused after close.
  }

  toJSON(): object {
    return {
      type: 'MemoryKeyStore',
      keys: this.#state.keyCount,
      aliases: this.#state.aliasCount,
      version: this.#version,
    };
  }

  toString(): string {
    return `MemoryKeyStore(${this.#state.keyCount} keys, ${this.#state.aliasCount} aliases)`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
