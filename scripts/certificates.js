// Throwaway TLS certificates for tests and benchmarks, made at run time with
// Debian's openssl (no private key is ever committed): a CA of their own and a
// server certificate for localhost / 127.0.0.1 / ::1 signed by it (EC P-256).
//
//   import { makeCertificates } from '../scripts/certificates.js';
//   const { caFile, certFile, keyFile } = makeCertificates(dir);
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A CA (`ca.pem`) in `dir`, and a server certificate signed by it; `names` become the subject alt names. */
export function makeCertificates(
  dir,
  {
    certFile = join(dir, 'server.crt'),
    keyFile = join(dir, 'server.key'),
    commonName = 'localhost',
    names = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'],
    days = 2,
  } = {},
) {
  const caFile = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  ssl('req', '-x509', ...EC, '-days', String(days), '-subj', '/CN=kms-hmac test CA', '-keyout', caKey, '-out', caFile);
  const csr = join(dir, 'server.csr');
  ssl('req', ...EC, '-subj', `/CN=${commonName}`, '-keyout', keyFile, '-out', csr);
  const ext = join(dir, 'san.ext');
  writeFileSync(ext, `subjectAltName=${names.join(',')}\n`);
  ssl(
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    caFile,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    String(days),
    '-extfile',
    ext,
    '-out',
    certFile,
  );
  chmodSync(keyFile, 0o600);
  return { caFile, certFile, keyFile };
}
