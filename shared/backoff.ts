// Exponential backoff with full jitter: attempt n waits a random time in [base·2ⁿ/2, min(cap, base·2ⁿ)].

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  const random = opts.random ?? Math.random;
  // Half fixed, half jitter: never hammers the hub in lockstep, never waits much less than the schedule says.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Plain doubling without jitter, for restart schedules that an operator reads in events (10 s × 2ⁿ, capped). */
export function doublingDelay(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}
