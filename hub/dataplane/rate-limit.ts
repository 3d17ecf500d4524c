// Rate limits per data key (requests per minute): a token bucket per key, refilled continuously, so a key may
// burst up to its limit and then gets 429 with the seconds until its next request is allowed.

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /** Takes one request's token; returns null when allowed, else the seconds to wait (Retry-After). */
  take(keyId: string, perMinute: number, now: number): number | null {
    const rate = perMinute / 60_000;
    const bucket = this.buckets.get(keyId) ?? { tokens: perMinute, at: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.at) * rate);
    bucket.at = now;
    this.buckets.set(keyId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return null;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / rate / 1000));
  }
}
