// Servers for the benchmarks, each in its own child process: started with the
// given credentials in its environment, ready once its stdout matches.
import { spawn } from 'node:child_process';

/** Starts `node …args` and resolves with the process and the first capture of `readyPattern` on its stdout. */
export function startChild(args, readyPattern, credential) {
  const proc = spawn(process.execPath, args, {
    env: {
      ...process.env,
      KMS_HMAC_ACCESS_KEY_ID: credential.accessKeyId,
      KMS_HMAC_SECRET_ACCESS_KEY: credential.secretAccessKey,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = readyPattern.exec(out);
      if (m) resolvePromise({ proc, ready: m[1] });
    });
    proc.on('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before listening`)));
  });
}

export async function stopChild(proc) {
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}
