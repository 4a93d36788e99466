/**
 * An async worker of the WebAssembly backend: one engine instance, taking
 * units of the batches it is sent until none is left, reading inputs from
 * and writing results to shared memory (src/backend/wasm-engine.ts
 * BatchJob). Its reply carries no data, only the batch's id.
 *
 * A real module file (dist/backend/wasm-worker.js once built), started with
 * `new Worker(new URL('./wasm-worker.js', import.meta.url))`, so coverage
 * tools, bundlers and minifiers see and keep it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchJob, runUnits, WA, WasmEngine, type WasmModule } from './wasm-engine.js';

const port = parentPort!;
const engine = new WasmEngine(new WA!.Instance((workerData as { module: WasmModule }).module, {}));

port.on('message', (job: BatchJob) => {
  try {
    runUnits(engine, job);
    port.postMessage({ id: job.id });
  } catch (error) {
    port.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
