// A request body as text, for the bench's bare node:http servers (subgraphs and the floor gateway).
import type { IncomingMessage } from 'node:http';

/** Reads a whole request body as UTF-8 text. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
