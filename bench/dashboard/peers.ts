// The dashboard bench's gateways: Apollo Server first, whose answer is the reference, then the others,
// each checked with one request; mercurius' gateway (Federation 1) is left out, with its reason, when it
// cannot serve our Federation 2 subgraphs.
import { residentMiB } from '../cores.ts';
import { checkAnswer } from '../gateway/answerCheck.ts';
import { startPeer, type BenchProcess, type Peer, type PeerOptions } from '../gateway/servers.ts';

/** The peer whose answer every other one must give. */
export const REFERENCE: Peer = 'apollo-server';

/** A started peer, and how many of its answers were right only as parsed JSON (not byte for byte). */
export interface Running {
  name: Peer;
  process: BenchProcess;
  idleRss: number;
  reordered: number;
}

/** POSTs a body to a peer; its answer without Apollo Server's trailing newline. */
export async function ask(url: string, token: string, body: string): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 300)}`);
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/**
 * Starts the peers named (REFERENCE among them) into `peers`, in that order, so that the caller can stop
 * them whatever happens; resolves with the reference's answer to `body`.
 */
export async function startPeers(
  peers: Running[],
  names: Peer[],
  options: PeerOptions,
  token: string,
  body: string,
): Promise<string> {
  let expected: string | undefined;
  for (const name of [REFERENCE, ...names.filter((name) => name !== REFERENCE)]) {
    let started: BenchProcess | undefined;
    try {
      started = await startPeer(name, options);
      const answer = await ask(started.url, token, body);
      expected ??= answer;
      if (answer.includes('"errors"')) throw new Error(`it answered errors: ${answer.slice(0, 300)}`);
      if (checkAnswer(answer, expected, true) === 'different')
        throw new Error(`its answer differs from ${REFERENCE}'s: ${answer.slice(0, 300)}`);
      peers.push({ name, process: started, idleRss: residentMiB(started.pid), reordered: 0 });
    } catch (error) {
      await started?.stop();
      const why = (error as Error).message.split('\n').find((line) => line.trim()) ?? 'no reason given';
      if (name !== 'mercurius') throw new Error(`${name}: ${why}`, { cause: error });
      console.log(
        `mercurius left out: @mercuriusjs/gateway (Federation 1) cannot serve our Federation 2 subgraphs: ${why.slice(0, 300)}`,
      );
    }
  }
  peers.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name));
  return expected!;
}
