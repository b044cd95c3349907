// The Node flags the gateway runs with, wherever it is started: scripts/start.ts and the benches read
// them here; package.json's `gateway` script and docker-compose.yml's gateway command spell them out
// (gateway/nodeFlags.test.ts checks that they do).
//
// --max-semi-space-size=32: V8 sizes the young generation by the machine's memory; on 24 GiB it grows to
// two 64 MiB semi-spaces. 32 MiB each keeps a worker 50 to 90 MiB smaller under load, CPU per request
// within the run-to-run noise (about 6 %) in alternating runs; 16 cost about 10 % more CPU (objects of
// requests in flight get copied and promoted), 8 about 15 %. The fanout bench (10,000 subscribers) spent
// the same CPU per update with it as without (208 and 209 ms, one pair of runs).
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
