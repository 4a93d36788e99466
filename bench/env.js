// The environment header every benchmark prints: numbers mean nothing
// without the machine, the runtime and the backend that produced them.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { backendInfo } from '../dist/index.js';

/** CPU family/model/stepping and the flags that pick code paths (Linux /proc/cpuinfo; else blank). */
function cpuDetails() {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0];
    const field = (name) => info.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim();
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    return {
      family: field('cpu family'),
      model: field('model'),
      stepping: field('stepping'),
      features: ['sha_ni', 'avx2', 'avx512f', 'avx512vl'].filter((f) => flags.has(f)).join(' '),
      hypervisor: flags.has('hypervisor'),
    };
  } catch {
    return {};
  }
}

/**
 * The kernel's scheduler group and its nice value ("/autogroup-N nice -15"
 * for a run raised above the machine's other jobs, see docs/benchmarks.md
 * "Measuring on a shared machine"). Both sides of every ratio run in it.
 */
function schedulerGroup() {
  try {
    return readFileSync('/proc/self/autogroup', 'utf8').trim();
  } catch {
    return null;
  }
}

export function environment() {
  const info = backendInfo();
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpuDetails: cpuDetails(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
    schedulerGroup: schedulerGroup(),
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
  const cpu = env.cpuDetails ?? {};
  const family = cpu.family
    ? ` (family ${cpu.family}, model ${cpu.model}, stepping ${cpu.stepping}; ${cpu.features}${cpu.hypervisor ? '; VM' : ''})`
    : '';
  console.log(`# ${env.date}`);
  console.log(`# CPU: ${env.cpu}${family}, ${env.cores} cores, ${env.memoryGiB} GiB, ${env.platform}`);
  console.log(
    `# load average at start: ${env.loadAverage.join(' ')}; scheduler group: ${env.schedulerGroup ?? 'unknown'}`,
  );
  console.log(`# Node ${env.node}, OpenSSL ${env.openssl}`);
  console.log(`# active backend: ${env.backend}${details ? ` (${details})` : ''}`);
  for (const s of env.skipped) console.log(`# skipped ${s.name}: ${s.reason}`);
}
