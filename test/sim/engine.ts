// The fake scheduler: at most maxNumSeqs running sequences, a FIFO waiting queue, TTFT and inter-token delays, a prefix
// cache that shortens TTFT for recently seen prompt prefixes, and the counters /metrics reports.

export interface EngineOptions {
  maxNumSeqs: number;
  ttftMs: number;
  itlMs: number;
  prefixCache: boolean;
  /** Tokens the fake KV cache holds; kv_cache_usage_perc is (prompt + generated tokens of running seqs) / this. */
  kvCapacityTokens: number;
}

export interface SequenceSpec {
  /** The first ~256 characters of the prompt (with the model): what the prefix cache remembers. */
  prefixKey: string;
  promptTokens: number;
  maxTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'abort';

/** TTFT with a prefix cache hit, as a fraction of the configured TTFT. */
export const PREFIX_HIT_TTFT_FACTOR = 0.2;
const PREFIX_CACHE_ENTRIES = 1024;
const PREFIX_HIT_TOKENS = 64;

// vLLM's time_to_first_token_seconds buckets; e2e latency uses a shorter list of its e2e buckets.
export const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
export const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++;
  }
}

interface Sequence {
  promptTokens: number;
  generated: number;
}

interface Waiter {
  seq: Sequence;
  admit: (admitted: boolean) => void;
}

export class Engine {
  readonly running = new Set<Sequence>();
  private readonly waiting: Waiter[] = [];
  private readonly prefixes = new Map<string, true>();
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly e2e = new Histogram(E2E_BUCKETS);
  readonly counters = {
    promptTokens: 0,
    generationTokens: 0,
    prefixQueries: 0,
    prefixHits: 0,
    finished: { stop: 0, length: 0, abort: 0 } as Record<FinishReason, number>,
  };

  constructor(
    readonly options: EngineOptions,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get numRunning(): number {
    return this.running.size;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  /** Fraction of the fake KV cache the running sequences hold, 0..1. */
  get kvUsage(): number {
    let tokens = 0;
    for (const s of this.running) tokens += s.promptTokens + s.generated;
    return Math.min(1, tokens / this.options.kvCapacityTokens);
  }

  /** Fraction of prompt tokens served from the prefix cache so far. */
  get prefixHitRate(): number {
    return this.counters.prefixQueries ? this.counters.prefixHits / this.counters.prefixQueries : 0;
  }

  /**
   * Runs one sequence: waits for a slot, waits TTFT, then calls `emit(i)` for each token i < maxTokens with the
   * inter-token latency between them. Stops at once when `signal` aborts (the slot is released before this returns).
   */
  async run(spec: SequenceSpec, signal: AbortSignal, emit: (index: number) => void, finishReason: 'stop' | 'length'): Promise<FinishReason> {
    const arrival = this.now();
    const seq: Sequence = { promptTokens: spec.promptTokens, generated: 0 };
    if (!(await this.admit(seq, signal))) return this.finish('abort');
    try {
      const hit = this.lookupPrefix(spec);
      const ttftMs = hit ? this.options.ttftMs * PREFIX_HIT_TTFT_FACTOR : this.options.ttftMs;
      this.counters.promptTokens += spec.promptTokens;
      if (ttftMs > 0 && !(await sleep(ttftMs, signal))) return this.finish('abort');
      if (signal.aborted) return this.finish('abort');
      const firstTokenAt = this.now();
      this.ttft.observe((firstTokenAt - arrival) / 1000);
      const itl = this.options.itlMs;
      for (let i = 0; i < spec.maxTokens; i++) {
        // Deadlines from the first token, so timer jitter does not accumulate over long outputs.
        if (i > 0 && itl > 0 && !(await sleep(firstTokenAt + i * itl - this.now(), signal))) return this.finish('abort');
        if (signal.aborted) return this.finish('abort');
        seq.generated++;
        this.counters.generationTokens++;
        emit(i);
      }
      this.e2e.observe((this.now() - arrival) / 1000);
      return this.finish(finishReason);
    } finally {
      this.release(seq);
    }
  }

  /** Drops every waiting sequence (shutdown). */
  abortWaiting(): void {
    for (const w of this.waiting.splice(0)) w.admit(false);
  }

  private finish(reason: FinishReason): FinishReason {
    this.counters.finished[reason]++;
    return reason;
  }

  private admit(seq: Sequence, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.running.size < this.options.maxNumSeqs && this.waiting.length === 0) {
      this.running.add(seq);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      };
      const waiter: Waiter = {
        seq,
        admit: (admitted) => {
          signal.removeEventListener('abort', onAbort);
          resolve(admitted);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private release(seq: Sequence): void {
    this.running.delete(seq);
    while (this.waiting.length > 0 && this.running.size < this.options.maxNumSeqs) {
      const next = this.waiting.shift()!;
      this.running.add(next.seq);
      next.admit(true);
    }
  }

  private lookupPrefix(spec: SequenceSpec): boolean {
    this.counters.prefixQueries += spec.promptTokens;
    if (!this.options.prefixCache) return false;
    const hit = this.prefixes.delete(spec.prefixKey);
    this.prefixes.set(spec.prefixKey, true);
    if (this.prefixes.size > PREFIX_CACHE_ENTRIES) this.prefixes.delete(this.prefixes.keys().next().value!);
    if (hit) this.counters.prefixHits += Math.min(spec.promptTokens, PREFIX_HIT_TOKENS);
    return hit;
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
