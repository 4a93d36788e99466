/**
 * HTTPS for the endpoint: a PEM certificate (chain) and private key, read
 * from files, checked as a pair before use, and re-read on demand (`serve`
 * does it on SIGHUP) without dropping a connection. A pair that does not
 * load (unreadable, not PEM, a key that does not match the certificate)
 * leaves the one in use in place, and the error says which file and why.
 *
 * TLS 1.2 is the minimum, as AWS KMS requires of its clients; Node's default
 * cipher list applies (no export, RC4 or NULL suites).
 */
import { readFileSync } from 'node:fs';
import type https from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { X509Certificate } from 'node:crypto';

export const TLS_MIN_VERSION = 'TLSv1.2';

export interface TlsFiles {
  /** PEM certificate, followed by any intermediates. */
  certFile: string;
  /** PEM private key (PKCS#8, PKCS#1 or SEC1), unencrypted. */
  keyFile: string;
}

/** What was loaded, for the startup line and the reload log (never the key). */
export interface TlsCertificateInfo {
  subject: string;
  /** The certificate's last valid day, as its notAfter field says it. */
  validTo: string;
  fingerprint256: string;
}

export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

export interface TlsPair {
  options: SecureContextOptions & { minVersion: typeof TLS_MIN_VERSION };
  info: TlsCertificateInfo;
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
  }
}

/** Reads the pair and checks that it loads together; throws TlsConfigError saying why not. */
export function loadTlsPair(files: TlsFiles): TlsPair {
  if (typeof files?.certFile !== 'string' || typeof files.keyFile !== 'string')
    throw new TypeError('tls needs certFile and keyFile (paths of PEM files)');
  const cert = read(files.certFile, 'certificate');
  const key = read(files.keyFile, 'private key');
  let info: TlsCertificateInfo;
  try {
    const x509 = new X509Certificate(cert);
    info = { subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo, fingerprint256: x509.fingerprint256 };
  } catch (err) {
    key.fill(0);
    throw new TlsConfigError(
      `the TLS certificate ${files.certFile} is not a PEM certificate: ${(err as Error).message}`,
    );
  }
  const options = { cert, key, minVersion: TLS_MIN_VERSION } as const;
  try {
    // OpenSSL checks the key against the certificate here (the same call the server makes).
    createSecureContext(options);
  } catch (err) {
    key.fill(0);
    throw new TlsConfigError(
      `the TLS pair ${files.certFile} / ${files.keyFile} does not load: ${(err as Error).message}`,
    );
  }
  return { options, info };
}

/** Forgets the key bytes of a pair the server has loaded (OpenSSL holds its own copy). */
export function wipeTlsPair(pair: TlsPair): void {
  (pair.options.key as Buffer).fill(0);
}

/**
 * Re-reads the files and installs the new pair on `server` for new
 * connections (those open keep theirs). Throws TlsConfigError, with the old
 * pair still in use, when the new one does not load.
 */
export function reloadTls(server: https.Server, files: TlsFiles): TlsCertificateInfo {
  const pair = loadTlsPair(files);
  try {
    server.setSecureContext(pair.options);
  } finally {
    wipeTlsPair(pair);
  }
  return pair.info;
}
