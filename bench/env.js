// The environment header every benchmark prints: numbers mean nothing
// without the machine, the runtime and the backend that produced them.
import os from 'node:os';
import { backendInfo } from '../dist/index.js';

export function environment() {
  const info = backendInfo();
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    openssl: process.versions.openssl,
    backend: info.name,
    backendDetails: info.details,
    skipped: info.skipped,
  };
}

export function printEnvironment(env) {
  const details = Object.entries(env.backendDetails)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  console.log(`# ${env.date}`);
  console.log(`# CPU: ${env.cpu} (${env.cores} cores, ${env.memoryGiB} GiB), ${env.platform}`);
  console.log(`# Node ${env.node}, OpenSSL ${env.openssl}`);
  console.log(`# active backend: ${env.backend}${details ? ` (${details})` : ''}`);
  for (const s of env.skipped) console.log(`# skipped ${s.name}: ${s.reason}`);
}
