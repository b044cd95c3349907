// The part of autocannon 9's API the gateway bench uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  /** A request as setupRequest may rewrite it. */
  interface AutocannonRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }
  /** One step of the request sequence each connection repeats. */
  interface RequestStep extends AutocannonRequest {
    setupRequest?(request: AutocannonRequest, context: Record<string, unknown>): AutocannonRequest;
    onResponse?(status: number, body: string, context: Record<string, unknown>): void;
  }
  /** Options of a run. */
  interface Options {
    url: string;
    connections?: number;
    duration?: number;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    timeout?: number;
    requests?: RequestStep[];
  }
  /** What a run reports (the fields used here). */
  interface Result {
    requests: { total: number; average: number };
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
  }
  /** A running instance: emits 'response' (client, statusCode, bytes, responseTimeMs) per response. */
  interface Instance extends EventEmitter, PromiseLike<Result> {
    stop(): void;
  }
  function autocannon(options: Options): Instance;
  export default autocannon;
}
