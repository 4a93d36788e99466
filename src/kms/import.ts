/**
 * Key material import (GetParametersForImport / ImportKeyMaterial): RSA
 * wrapping keys, import tokens, unwrapping. All crypto is node:crypto.
 *
 * The import token is 48 random bytes behind a short tag; the store keeps
 * only its SHA-256 (`tokenId`), never the token itself.
 */
import {
  constants,
  createDecipheriv,
  createHash,
  createPrivateKey,
  generateKeyPair,
  privateDecrypt,
  randomBytes,
} from 'node:crypto';
import type { HmacKeySpec } from '../keystore/types.js';

/** How long import parameters stay valid (AWS: 24 hours). */
export const IMPORT_PARAMETERS_TTL_MS = 24 * 60 * 60 * 1000;

/** Accepted imported-material lengths in bytes per key spec (spec §4). */
export const IMPORT_MATERIAL_RANGE: Readonly<Record<HmacKeySpec, readonly [number, number]>> = {
  HMAC_224: [28, 64],
  HMAC_256: [32, 64],
  HMAC_384: [48, 128],
  HMAC_512: [64, 128],
};

/** Generated material length: the bits in the spec name. */
export const GENERATED_MATERIAL_LENGTH: Readonly<Record<HmacKeySpec, number>> = {
  HMAC_224: 28,
  HMAC_256: 32,
  HMAC_384: 48,
  HMAC_512: 64,
};

export const SUPPORTED_WRAPPING_ALGORITHMS = new Set([
  'RSAES_OAEP_SHA_1',
  'RSAES_OAEP_SHA_256',
  'RSA_AES_KEY_WRAP_SHA_1',
  'RSA_AES_KEY_WRAP_SHA_256',
]);
export const SUPPORTED_WRAPPING_KEY_SPECS: Readonly<Record<string, number>> = {
  RSA_2048: 2048,
  RSA_3072: 3072,
  RSA_4096: 4096,
};

const TOKEN_TAG = Buffer.from('kmshmac-import-v1:', 'latin1');

export interface WrappingKeyPair {
  /** DER SubjectPublicKeyInfo. */
  publicKey: Uint8Array;
  /** DER PKCS#8. Secret. */
  privateKey: Uint8Array;
}

export function generateWrappingKey(spec: string): Promise<WrappingKeyPair> {
  const modulusLength = SUPPORTED_WRAPPING_KEY_SPECS[spec];
  if (!modulusLength) return Promise.reject(new Error(`unsupported wrapping key spec`));
  return new Promise((resolve, reject) => {
    generateKeyPair(
      'rsa',
      {
        modulusLength,
        publicExponent: 0x10001,
        publicKeyEncoding: { type: 'spki', format: 'der' },
        privateKeyEncoding: { type: 'pkcs8', format: 'der' },
      },
      (err, publicKey, privateKey) => {
        if (err) reject(err);
        else resolve({ publicKey: new Uint8Array(publicKey), privateKey: new Uint8Array(privateKey) });
      },
    );
  });
}

export function newImportToken(): { token: Uint8Array; tokenId: string } {
  const token = Buffer.concat([TOKEN_TAG, randomBytes(48)]);
  return { token: new Uint8Array(token), tokenId: tokenIdOf(token) };
}

export function tokenIdOf(token: Uint8Array): string {
  return createHash('sha256').update(token).digest('hex');
}

export function materialDigest(material: Uint8Array): string {
  return createHash('sha256').update(material).digest('hex');
}

/**
 * Unwraps EncryptedKeyMaterial. Returns undefined when it cannot be
 * decrypted (→ InvalidCiphertextException); never says why in detail, so no
 * padding oracle beyond what OAEP already hides.
 */
export function unwrapKeyMaterial(
  algorithm: string,
  privateKeyDer: Uint8Array,
  wrapped: Uint8Array,
): Uint8Array | undefined {
  try {
    const key = createPrivateKey({ key: Buffer.from(privateKeyDer), format: 'der', type: 'pkcs8' });
    const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
    if (algorithm === 'RSAES_OAEP_SHA_1' || algorithm === 'RSAES_OAEP_SHA_256') {
      return new Uint8Array(privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, wrapped));
    }
    if (algorithm === 'RSA_AES_KEY_WRAP_SHA_1' || algorithm === 'RSA_AES_KEY_WRAP_SHA_256') {
      // RSA-OAEP-wrapped ephemeral AES-256 key (modulus-sized), then the
      // material wrapped with AES key wrap with padding (RFC 5649).
      const modulusBytes = ((key.asymmetricKeyDetails?.modulusLength ?? 0) + 7) >> 3;
      if (wrapped.byteLength <= modulusBytes) return undefined;
      const aesKey = privateDecrypt(
        { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash },
        wrapped.subarray(0, modulusBytes),
      );
      if (aesKey.length !== 32) return undefined;
      const decipher = createDecipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('A65959A6', 'hex'));
      const out = Buffer.concat([decipher.update(wrapped.subarray(modulusBytes)), decipher.final()]);
      aesKey.fill(0);
      return new Uint8Array(out);
    }
    return undefined;
  } catch {
    return undefined;
  }
}
