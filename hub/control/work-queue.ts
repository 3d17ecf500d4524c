// A deduplicating keyed work queue (as in Kubernetes controllers): a key queued many times is processed once;
// a key queued while it is being processed runs again afterwards; keys are processed one at a time.
import type { Logger } from '../../shared/logger.ts';

export class KeyedQueue {
  private readonly queued = new Set<string>();
  private running = false;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly handler: (key: string) => Promise<void> | void,
    private readonly log: Logger,
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    this.queued.add(key);
    if (!this.running) void this.loop();
  }

  get size(): number {
    return this.queued.size;
  }

  /** Resolves once nothing is queued or running (tests and shutdown). */
  idle(): Promise<void> {
    if (!this.running && this.queued.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    this.queued.clear();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.queued.size > 0 && !this.stopped) {
        const key = this.queued.values().next().value as string;
        this.queued.delete(key);
        try {
          await this.handler(key);
        } catch (err) {
          // Level-triggered: the next resync looks at this key again, so an error is logged, not retried in a loop.
          this.log.error({ err, key }, 'reconcile failed');
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
