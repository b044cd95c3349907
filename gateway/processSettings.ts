// How the gateway's process is started, wherever it is: scripts/start.ts and the benches read this file;
// package.json's `gateway` script and docker-compose.yml's gateway service spell it out
// (gateway/processSettings.test.ts checks that they do).
//
// --max-semi-space-size=32: V8 sizes the young generation by the machine's memory; on 24 GiB it grows to
// two 64 MiB semi-spaces. 32 MiB each keeps a worker 50 to 90 MiB smaller under load, CPU per request
// within the run-to-run noise (about 6 %) in alternating runs; 16 costs 25 to 35 % more CPU per request
// without fetch sharing (objects of requests in flight get copied more often) for 25 to 30 MiB less RSS
// (gateway bench, 2026-12-05, docs/performance.md); 24 is rounded up to 32 by V8. The fanout bench
// (10,000 subscribers) spent the same CPU per update with it as without (208 and 209 ms, one pair of runs).
//
// --no-allocation-site-pretenuring: under load V8 sees the objects of some allocation sites survive a
// scavenge (they belong to requests in flight) and from then on allocates them in the old generation.
// Each such object keeps the young objects it points to alive through scavenges; those get promoted and
// keep their sites tenured. A process falls into this mode or not by chance: 17 of 20 processes here did
// (about 3 MB promoted per scavenge instead of 0.3, an old generation limit of 210 MB, 267 to 322 MiB
// resident instead of 200 to 242). Without pretenuring 16 of 16 stayed out of it (docs/performance.md).
//
// --heap-growing-percent=50: after a full collection V8 lets the old generation grow to up to 4 times what
// survived before the next one. Under load (answer Buffers and in-flight requests promoted), a worker's
// old generation rose from about 35 to about 95 MB and back, so its resident memory swung between 205 and
// 270 MiB depending on the moment. Capped at 1.5 times, it stays between 205 and 237 MiB (sampled every
// 100 ms). The price is the extra full collections: CPU per request within the noise on the same query
// (median ratio 1.00 to 1.03), about 8 % more with a per-request $first (more distinct fetches, more
// promoted); a cap of 2 (100) kept the swing (272 MiB) at 2 %. A trade for memory: drop the line to
// undo it (docs/performance.md).
export const GATEWAY_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=32',
  '--no-allocation-site-pretenuring',
  '--heap-growing-percent=50',
];

// MALLOC_MMAP_THRESHOLD_=32768: glibc serves an allocation this large or larger with a mapping of its own,
// given back to the system when it is freed. Left to itself glibc raises that threshold to the largest
// block freed so far (up to 32 MiB), after which large blocks come from the main heap, whose freed holes
// stay resident: 20 to 60 MiB of a worker under load while every answer had a fresh Buffer, 2 to 14 MiB
// since answer bodies are pooled (execution/responseBuffers.ts; highest RSS sampled 227 to 228 MiB against
// 230 to 241 with thresholds of 128 KiB and 32 MiB, three alternating runs). Its price: a fresh mapping's
// pages are faulted in one by one, and what still gets one (socket read buffers, V8's worker threads)
// costs about 11 % CPU per request on the bench's virtual machine (median ratios 1.11 to 1.12 with a
// per-request $first), where a page fault takes about 14 µs. A trade for memory: drop the line to undo
// it (docs/performance.md). Other C libraries (musl) ignore it.
export const GATEWAY_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '32768' };
