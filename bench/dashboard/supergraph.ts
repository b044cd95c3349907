// The supergraph the dashboard bench's gateways serve: ours (supergraph.yaml's subgraph schemas, composed
// as `npm run compose` does) with the routing URLs of the local platform's subgraphs.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeSupergraph, readSupergraphConfig } from '../../gateway/composition.ts';

const CONFIG = fileURLToPath(new URL('../../supergraph.yaml', import.meta.url));
const SCOPES_LINK = '@link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY)';

/** The supergraph files of the bench. */
export interface SupergraphFiles {
  /** As composed: our gateway enforces its @requiresScopes. */
  composed: string;
  /**
   * For the other peers: @requiresScopes linked without `for: SECURITY`, which @apollo/gateway refuses
   * (it cannot enforce it; Apollo Router does). They skip the check; every subgraph still makes it.
   */
  peers: string;
}

/** Composes our subgraphs at `urls` (by subgraph name) into the supergraph files in dir. */
export async function writePlatformSupergraph(
  dir: string,
  urls: Record<string, string>,
): Promise<SupergraphFiles> {
  const sources = readSupergraphConfig(CONFIG).map((source) => {
    const url = urls[source.name];
    if (!url) throw new Error(`the platform runs no subgraph ${source.name}`);
    return { ...source, url };
  });
  const { supergraphSdl } = composeSupergraph(sources);
  if (!supergraphSdl.includes(SCOPES_LINK)) throw new Error(`the supergraph no longer holds ${SCOPES_LINK}`);
  const files = { composed: join(dir, 'supergraph.graphql'), peers: join(dir, 'supergraph-peers.graphql') };
  await writeFile(files.composed, supergraphSdl);
  await writeFile(
    files.peers,
    supergraphSdl.replace(SCOPES_LINK, SCOPES_LINK.replace(', for: SECURITY', '')),
  );
  return files;
}
