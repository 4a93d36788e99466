/**
 * In-memory key store: the default when no path is given. Same semantics as
 * the file store (validation, frozen records, all-or-nothing transactions),
 * without durability.
 */
import { inspect } from 'node:util';
import { KeyStoreError } from './errors.js';
import { Mutex, Snapshot, droppedSecrets, runTransaction, wipeLater } from './state.js';
import type { AliasRecord, KeyRecord, KeyStore, KeyStoreTransaction } from './types.js';

export class MemoryKeyStore implements KeyStore {
  #state: Snapshot = Snapshot.empty();
  #version = 0;
  #mutex = new Mutex();
  #closed = false;

  get version(): number {
    return this.#version;
  }

  getKey(keyId: string): KeyRecord | undefined {
    return this.#state.keys.get(keyId);
  }

  listKeys(): KeyRecord[] {
    return this.#state.listKeys();
  }

  getAlias(aliasName: string): AliasRecord | undefined {
    return this.#state.aliases.get(aliasName);
  }

  listAliases(): AliasRecord[] {
    return this.#state.listAliases();
  }

  transact<T>(mutate: (tx: KeyStoreTransaction) => T | Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new KeyStoreError('STORE_CLOSED', 'the key store is closed'));
    return this.#mutex.run(async () => {
      if (this.#closed) throw new KeyStoreError('STORE_CLOSED', 'the key store is closed');
      const base = this.#state;
      const { result, next } = await runTransaction(base, mutate);
      if (next) {
        this.#state = next;
        this.#version++;
        wipeLater(droppedSecrets(base, next));
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
    return { type: 'MemoryKeyStore', keys: this.#state.keys.size, aliases: this.#state.aliases.size, version: this.#version };
  }

  toString(): string {
    return `MemoryKeyStore(${this.#state.keys.size} keys, ${this.#state.aliases.size} aliases)`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
