// Preload (--import) of a gateway bench peer's throwaway first start (servers.ts): exits at SIGTERM through
// process.exit, which writes Node's compile cache, where a peer's own handler might end by the signal.
process.once('SIGTERM', () => process.exit(0));
