/**
 * MACs handed to callers are views into a shared pool, like
 * Buffer.allocUnsafe(): an ArrayBuffer per 32-byte MAC costs more than the MAC
 * itself, and a small fresh Uint8Array would be materialized by V8 when the
 * backend asks for its memory. A pool is never reused, so a MAC stays valid
 * for as long as it is referenced; its `.buffer` is shared with other MACs
 * (MAC outputs, not secrets).
 */
import type { BackendKey } from '../backend/types.js';

const POOL_SIZE = 64 * 1024;
let pool = new ArrayBuffer(POOL_SIZE);
let poolBytes = new Uint8Array(pool);
let poolOffset = 0;

/** The MAC of `message` under `key`, as a view into the pool. */
export function pooledMac(key: BackendKey, message: Uint8Array): Uint8Array {
  const length = key.macLength;
  if (poolOffset + length > POOL_SIZE) {
    pool = new ArrayBuffer(POOL_SIZE);
    poolBytes = new Uint8Array(pool);
    poolOffset = 0;
  }
  const offset = poolOffset;
  key.macInto(message, poolBytes, offset);
  poolOffset = offset + length;
  return new Uint8Array(pool, offset, length);
}
