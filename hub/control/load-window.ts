// One workload's recent load, in per-second buckets: requests in flight (time-weighted), arrivals, backend samples.
import type { Clock } from '../../shared/clock.ts';

/** The longest window `averages` can answer: the autoscaler's stable window (60 s) with room to spare. */
export const maxLoadWindowS = 70;

/** A window's load, as the autoscaler reads it. */
export interface LoadAverages {
  /** Requests in flight, averaged over time (a stream open for the whole window counts 1). */
  readonly concurrency: number;
  /** Arrivals per second. */
  readonly rps: number;
  /** The average of the seconds that had backend samples; null when none had. */
  readonly backend: number | null;
}

interface Bucket {
  /** The epoch second this bucket holds now; a slot that holds an older second reads as empty. */
  second: number;
  /** In-flight count × milliseconds, integrated over the part of the second seen so far. */
  inFlightMs: number;
  arrivals: number;
  backendSum: number;
  backendSamples: number;
}

/** The whole seconds of a window plus the current, unfinished one. */
const slotCount = maxLoadWindowS + 1;

/**
 * Records one workload's load for the autoscaler. Called on every relayed request, so each call is O(1) and
 * allocates nothing: the buckets are a ring allocated once, and the in-flight integral is brought up to date
 * lazily (at most `slotCount` seconds per call, usually none or one).
 */
export class LoadWindow {
  private readonly slots: Bucket[];
  private count = 0;
  /** The in-flight count is integrated into the buckets up to this time. */
  private integratedToMs: number;
  private lastActivity: number | null = null;

  constructor(private readonly clock: Clock) {
    this.integratedToMs = clock.now();
    this.slots = Array.from({ length: slotCount }, () => ({ second: Number.NaN, inFlightMs: 0, arrivals: 0, backendSum: 0, backendSamples: 0 }));
  }

  /** Requests in flight now. */
  get inFlight(): number {
    return this.count;
  }

  /** The latest arrival, end or `activity()`; null before any. */
  get lastActivityMs(): number | null {
    return this.lastActivity;
  }

  requestStarted(): void {
    const now = this.advance();
    this.count += 1;
    this.bucket(now).arrivals += 1;
    this.lastActivity = now;
  }

  /** An end without a start is ignored: it would count a request that never was. */
  requestEnded(): void {
    if (this.count === 0) return;
    const now = this.advance();
    this.count -= 1;
    this.lastActivity = now;
  }

  /** Work without a relayed request (an async job queued or picked up): it keeps the workload awake but adds no load. */
  activity(): void {
    this.lastActivity = this.advance();
  }

  /** A backend metric sample (e.g. vllm:num_requests_waiting summed over replicas); several in one second average. */
  sampleBackend(value: number): void {
    const bucket = this.bucket(this.advance());
    bucket.backendSum += value;
    bucket.backendSamples += 1;
  }

  /** The load over the last `windowS` whole seconds before the current one (seconds with nothing in them count 0). */
  averages(windowS: number): LoadAverages {
    if (!Number.isInteger(windowS) || windowS < 1 || windowS > maxLoadWindowS)
      throw new RangeError(`a load window is 1 to ${maxLoadWindowS} whole seconds, got ${windowS}`);
    const nowSecond = secondOf(this.advance());
    let inFlightMs = 0;
    let arrivals = 0;
    let backendTotal = 0;
    let backendSeconds = 0;
    for (let second = nowSecond - windowS; second < nowSecond; second++) {
      const bucket = this.slots[slotOf(second)];
      if (!bucket || bucket.second !== second) continue;
      inFlightMs += bucket.inFlightMs;
      arrivals += bucket.arrivals;
      if (bucket.backendSamples > 0) {
        backendTotal += bucket.backendSum / bucket.backendSamples;
        backendSeconds += 1;
      }
    }
    return {
      concurrency: inFlightMs / (windowS * 1000),
      rps: arrivals / windowS,
      backend: backendSeconds === 0 ? null : backendTotal / backendSeconds,
    };
  }

  /**
   * Integrates the in-flight count up to now and returns now. The count only changes through calls, so between two
   * calls it was constant: this is what carries open streams through seconds with no events. A clock that steps
   * back is held at the latest time seen.
   */
  private advance(): number {
    const now = Math.max(this.clock.now(), this.integratedToMs);
    if (this.count > 0) {
      // Seconds older than the ring are overwritten anyway: skip them rather than loop over a long quiet spell.
      let from = Math.max(this.integratedToMs, now - slotCount * 1000);
      while (from < now) {
        const until = Math.min(now, (secondOf(from) + 1) * 1000);
        this.bucket(from).inFlightMs += this.count * (until - from);
        from = until;
      }
    }
    this.integratedToMs = now;
    return now;
  }

  private bucket(ms: number): Bucket {
    const second = secondOf(ms);
    const bucket = this.slots[slotOf(second)];
    if (!bucket) throw new Error(`load window slot ${slotOf(second)} is missing`);
    if (bucket.second !== second) {
      bucket.second = second;
      bucket.inFlightMs = 0;
      bucket.arrivals = 0;
      bucket.backendSum = 0;
      bucket.backendSamples = 0;
    }
    return bucket;
  }
}

function secondOf(ms: number): number {
  return Math.floor(ms / 1000);
}

function slotOf(second: number): number {
  return ((second % slotCount) + slotCount) % slotCount;
}
