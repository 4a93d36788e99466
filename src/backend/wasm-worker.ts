/**
 * An async worker of the WebAssembly backend: one instance of the module, taking
 * units of the batches it is sent until none is left, reading inputs from
 * and writing results to shared memory (src/backend/wasm-hmac.ts
 * BatchJob). Its reply carries no data, only the batch's id.
 *
 * A real module file (dist/backend/wasm-worker.js once built), started with
 * `new Worker(new URL('./wasm-worker.js', import.meta.url))`, so coverage
 * tools, bundlers and minifiers see and keep it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchJob, runUnits, WA, WasmHmac, type WasmModule } from './wasm-hmac.js';

const port = parentPort!;
const hmac = new WasmHmac(new WA!.Instance((workerData as { module: WasmModule }).module, {}));

port.on('message', (job: BatchJob) => {
  try {
    runUnits(hmac, job);
    port.postMessage({ id: job.id });
  } catch (error) {
    port.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
