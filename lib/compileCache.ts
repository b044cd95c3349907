// Node's compile cache for every Pulsegraph process. Node runs our TypeScript by stripping its types with a
// WebAssembly build of swc, loaded into each process that strips a file: about 17 MiB more resident for a
// process that does (a gateway worker under load: about 20 MiB). With the cache, a process whose files
// are unchanged since an earlier start reads their stripped and compiled form from disk and never loads
// swc. Node writes the cache when a process exits (our services exit through their shutdown path on
// SIGTERM and SIGINT). Writing it as soon as a service is ready was tried: on a cold cache, `npm start`'s
// ten processes serializing their code at once on two cores held up the others' first NATS requests past
// their 5 s timeout. The path is relative to the working directory (the repository root, or /app in the
// image); where it cannot be written, Node runs without the cache.
export const COMPILE_CACHE_ENV: Readonly<Record<string, string>> = {
  NODE_COMPILE_CACHE: 'node_modules/.cache/node-compile',
};
