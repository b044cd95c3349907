// Durations of the API: KPI windows ("15m", "24h", "7d", "2w") and bucket intervals ("1m" .. "1d").

const WINDOW = /^(\d{1,4})(m|h|d|w)$/;
const UNIT_MINUTES = { m: 1, h: 60, d: 1440, w: 10_080 } as const;

/** Minutes in a window such as "15m", "24h", "7d"; undefined when malformed. */
export function windowMinutes(window: string): number | undefined {
  const match = WINDOW.exec(window);
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MINUTES[match[2] as keyof typeof UNIT_MINUTES];
}

/** Milliseconds in a bucket interval from "1m" to "1d" (whole minutes); undefined otherwise. */
export function intervalMs(interval: string): number | undefined {
  const minutes = /^\d{1,4}[mhd]$/.test(interval) ? windowMinutes(interval) : undefined;
  return minutes !== undefined && minutes >= 1 && minutes <= 1440 ? minutes * 60_000 : undefined;
}
