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

/** A run's answers by verdict, with the start of the first wrong one (what the closed and open loops report). */
export class AnswerTally {
  mismatches = 0;
  reordered = 0;
  firstMismatch: string | undefined;
  readonly #sameJson: boolean;

  constructor(sameJson = false) {
    this.#sameJson = sameJson;
  }

  /** Checks one answer and counts it. */
  record(body: string, expected: string): void {
    const verdict = checkAnswer(body, expected, this.#sameJson);
    if (verdict === 'reordered') this.reordered++;
    else if (verdict === 'different') {
      this.mismatches++;
      this.firstMismatch ??= body.slice(0, 500);
    }
  }
}
