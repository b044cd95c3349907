// Whether a gateway's answer is the one expected: byte for byte (Apollo Server alone ends its JSON with a
// newline), or, where the bench allows it, the same JSON in another key order (counted apart).
import { isDeepStrictEqual } from 'node:util';

/** How an answer compared with the expected one. */
export type Verdict = 'same' | 'reordered' | 'different';

/** Compares an answer with the expected one; `sameJson` accepts the same JSON in another key order. */
export function checkAnswer(body: string, expected: string, sameJson = false): Verdict {
  if (body === expected || (body.length === expected.length + 1 && body === `${expected}\n`)) return 'same';
  return sameJson && isDeepStrictEqual(parsedOrNot(body), parsedOrNot(expected)) ? 'reordered' : 'different';
}

/** Parses JSON, or a value equal to no JSON when it is not JSON. */
function parsedOrNot(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return Symbol('not JSON');
  }
}
