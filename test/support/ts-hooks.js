// Node module hooks for the test runs only: lets a worker_thread started
// from src/ under vitest load the TypeScript module next to it.
// src/backend/wasm.ts starts its workers with
// `new Worker(new URL('./wasm-worker.js', import.meta.url))`; in dist/ that
// file exists, in src/ only wasm-worker.ts does. vitest.config.ts preloads
// this file (execArgv --import), and worker threads inherit it.
//
// resolve: a missing ./x.js next to a ./x.ts resolves to the .ts file.
// load: .ts files are transpiled (types stripped) with the project's
// TypeScript, loaded on first use only; the output is cached on disk.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { register } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { threadId } from 'node:worker_threads';

const CACHE = fileURLToPath(new URL('../../node_modules/.cache/kms-hmac-test-ts/', import.meta.url));

let typescript;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    // (A worker's entry point has no parentURL: its specifier is absolute.)
    const url = URL.canParse(specifier, context.parentURL) ? new URL(specifier, context.parentURL) : undefined;
    if (url?.protocol !== 'file:' || !url.pathname.endsWith('.js') || !/\/(src|test)\//.test(url.pathname)) throw error;
    return nextResolve(`${url.href.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const source = readFileSync(file, 'utf8');
  // Transpiled output is cached on disk: every worker thread has its own
  // hooks thread, and loading TypeScript there takes seconds.
  const cached = join(CACHE, `${createHash('sha256').update(file).update(source).digest('hex')}.js`);
  if (existsSync(cached)) return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  typescript ??= (await import('typescript')).default;
  const { outputText } = typescript.transpileModule(source, {
    fileName: file,
    compilerOptions: {
      module: typescript.ModuleKind.ESNext,
      target: typescript.ScriptTarget.ES2022,
      inlineSourceMap: true,
    },
  });
  mkdirSync(CACHE, { recursive: true });
  const temporary = `${cached}.${process.pid}.${threadId}`;
  writeFileSync(temporary, outputText);
  renameSync(temporary, cached);
  return { format: 'module', source: outputText, shortCircuit: true };
}

// Preloaded with --import: register this file's hooks for the process and its workers.
if (!import.meta.url.includes('?hooks')) register(`${import.meta.url}?hooks`);
