/**
 * An async worker of the WebAssembly backend: one instance of the module, one part
 * of a batch at a time. The part's buffer arrives transferred and goes back
 * transferred, results inside, key state wiped (src/backend/wasm-hmac.ts).
 *
 * A real module file (dist/backend/wasm-worker.js once built), started with
 * `new Worker(new URL('./wasm-worker.js', import.meta.url))`, so coverage
 * tools, bundlers and minifiers see and keep it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runPart, WA, WasmHmac, type PartJob, type WasmModule } from './wasm-hmac.js';

const port = parentPort!;
const hmac = new WasmHmac(new WA!.Instance((workerData as { module: WasmModule }).module, {}));

port.on('message', (job: PartJob) => {
  try {
    runPart(hmac, job);
    port.postMessage({ id: job.id, buffer: job.buffer }, [job.buffer]);
  } catch (error) {
    port.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
