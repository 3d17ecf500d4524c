// Heartbeats are frequent: their writes are collected in memory and flushed in one transaction per interval.
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { HeartbeatWrite, WorkerStore } from '../store/workers.ts';

export class HeartbeatWriter {
  private pending = new Map<string, HeartbeatWrite>();
  private timer: TimerHandle | undefined;

  constructor(private readonly deps: { workers: WorkerStore; clock: Clock; log: Logger; flushMs: number }) {}

  queue(write: HeartbeatWrite): void {
    this.pending.set(write.id, write);
    if (!this.timer) {
      this.timer = this.deps.clock.setTimeout(() => this.flush(), this.deps.flushMs);
      this.timer.unref?.();
    }
  }

  /** Drops a worker's pending write (it was deleted: nothing must bring its row back). */
  discard(workerId: string): void {
    this.pending.delete(workerId);
  }

  flush(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const writes = [...this.pending.values()];
    this.pending = new Map();
    try {
      this.deps.workers.writeHeartbeats(writes);
    } catch (err) {
      this.deps.log.error({ err, count: writes.length }, 'heartbeat flush failed');
    }
  }
}
