// Order statistics for benchmark samples: the median and nearest-rank percentiles, null for an empty sample.

function sorted(samples: readonly number[]): number[] {
  return samples.filter(Number.isFinite).sort((a, b) => a - b);
}

/** The middle value (the mean of the two middle values for an even count). */
export function median(samples: readonly number[]): number | null {
  const s = sorted(samples);
  if (s.length === 0) return null;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile: the smallest sample with at least q of the samples at or below it (p90 of 10 is the 9th). */
export function percentile(samples: readonly number[], q: number): number | null {
  const s = sorted(samples);
  if (s.length === 0) return null;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
