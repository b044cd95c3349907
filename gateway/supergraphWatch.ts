// Hot reload: the gateway polls its supergraph file and serves a changed one without a restart. A
// supergraph that does not load is refused and the running one keeps serving; live subscriptions keep
// the plan they started with, so none is dropped.
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Counter } from 'prom-client';
import type { Logger } from '../lib/logger.ts';
import type { Gateway } from './gateway.ts';

const reloads = new Counter({
  name: 'pulsegraph_supergraph_reloads_total',
  help: 'Supergraph reloads by outcome (loaded, or refused because it did not load)',
  labelNames: ['outcome'],
});

/** Watches `path` every `intervalMs`; returns the function that stops watching. */
export function watchSupergraph(
  gateway: Gateway,
  path: string,
  intervalMs: number,
  logger: Logger,
): () => void {
  let running = Promise.resolve();
  const check = async () => {
    const sdl = await readFile(path, 'utf8').catch(() => undefined);
    if (sdl === undefined || sdl === gateway.supergraph.sdl) return;
    try {
      gateway.reload(sdl);
      reloads.inc({ outcome: 'loaded' });
      logger.info({ path }, 'supergraph reloaded');
    } catch (error) {
      reloads.inc({ outcome: 'refused' });
      logger.error(
        { err: error, path },
        'supergraph refused: it does not load; the running one keeps serving',
      );
    }
  };
  const listener = () => void (running = running.then(check));
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(path, listener);
}
