// Resilience towards subgraphs: a circuit breaker per subgraph (after N consecutive failures, fail fast for
// a cool-down, then let one probe through) and retries with exponential backoff for idempotent fetches.

/** How the breaker and the retries behave; defaults in `defaultResilience`. */
export interface ResilienceOptions {
  /** Consecutive transport failures to one subgraph that open its circuit. */
  failureThreshold: number;
  /** How long an open circuit fails fast before one probe is let through (half-open). */
  coolDownMs: number;
  /** Further attempts of an idempotent (query) fetch after a transport failure; mutations get none. */
  retries: number;
  /** Delay before the first retry; each next one doubles it, with up to 50 % jitter added. */
  retryBaseDelayMs: number;
}

/** The defaults of the gateway's settings SUBGRAPH_CIRCUIT_FAILURES, ..._COOLDOWN_MS and SUBGRAPH_RETRIES. */
export const defaultResilience: ResilienceOptions = {
  failureThreshold: 5,
  coolDownMs: 5_000,
  retries: 2,
  retryBaseDelayMs: 50,
};

/** A circuit's state: closed (calls flow), open (calls fail fast), half-open (one probe in flight). */
export type CircuitState = 'closed' | 'open' | 'half-open';

interface Circuit {
  state: CircuitState;
  failures: number;
  openedAt: number;
}

/** One circuit per subgraph name. */
export class CircuitBreaker {
  readonly #options: Pick<ResilienceOptions, 'failureThreshold' | 'coolDownMs'>;
  readonly #now: () => number;
  readonly #circuits = new Map<string, Circuit>();

  constructor(options: Pick<ResilienceOptions, 'failureThreshold' | 'coolDownMs'>, now = Date.now) {
    this.#options = options;
    this.#now = now;
  }

  /** Whether a call to `name` may go out now; an open circuit past its cool-down lets exactly one probe. */
  allow(name: string): boolean {
    const circuit = this.#circuits.get(name);
    if (!circuit || circuit.state === 'closed') return true;
    if (circuit.state === 'half-open') return false;
    if (this.#now() - circuit.openedAt < this.#options.coolDownMs) return false;
    circuit.state = 'half-open';
    return true;
  }

  /** Records an answer from `name`: the circuit closes and its failure count resets. */
  succeeded(name: string): void {
    this.#circuits.delete(name);
  }

  /** Records a transport failure of `name`: the threshold-th in a row, or a failed probe, opens the circuit. */
  failed(name: string): void {
    const circuit = this.#circuits.get(name) ?? { state: 'closed', failures: 0, openedAt: 0 };
    circuit.failures += 1;
    if (circuit.state === 'half-open' || circuit.failures >= this.#options.failureThreshold) {
      circuit.state = 'open';
      circuit.openedAt = this.#now();
    }
    this.#circuits.set(name, circuit);
  }

  /** The circuit's state (for metrics and tests). */
  state(name: string): CircuitState {
    return this.#circuits.get(name)?.state ?? 'closed';
  }

  /** Milliseconds until an open circuit lets a probe through (0 when it is not open). */
  retryAfterMs(name: string): number {
    const circuit = this.#circuits.get(name);
    if (circuit?.state !== 'open') return 0;
    return Math.max(0, circuit.openedAt + this.#options.coolDownMs - this.#now());
  }
}

/** Whether a subgraph operation may be sent again safely: anything but a mutation. */
export function isIdempotent(operation: string): boolean {
  return !/^\s*mutation\b/.test(operation);
}

/** The delay before retry number `attempt` (1-based): base * 2^(attempt-1), plus up to 50 % jitter. */
export function backoffDelayMs(attempt: number, baseDelayMs: number, random = Math.random): number {
  const delay = baseDelayMs * 2 ** (attempt - 1);
  return Math.round(delay + delay * 0.5 * random());
}
