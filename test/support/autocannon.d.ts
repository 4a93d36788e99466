/** The part of autocannon (devDependency, no types of its own) the drain test drives. */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';
  interface Request {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
  }
  interface Options {
    url: string;
    connections?: number;
    overallRate?: number;
    duration?: number;
    requests?: Request[];
    timeout?: number;
  }
  interface Instance extends EventEmitter {
    stop(): void;
  }
  function autocannon(options: Options): Instance;
  export default autocannon;
}
