/** A CA (`ca.pem`) in `dir` and a server certificate signed by it for localhost, 127.0.0.1 and ::1 (openssl, EC P-256). */
export function makeCertificates(
  dir: string,
  options?: { certFile?: string; keyFile?: string; commonName?: string; names?: string[]; days?: number },
): { caFile: string; certFile: string; keyFile: string };
