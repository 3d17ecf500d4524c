// `last_used_at` of tokens is written off the request path: remembered in memory, flushed in one transaction.
import type { Db } from '../db/open.ts';
import { isoTime, type Clock, type TimerHandle } from '../../shared/clock.ts';

const TABLES = ['control_tokens', 'join_tokens', 'data_keys'] as const;
type Table = (typeof TABLES)[number];

export class LastUsedRecorder {
  private pending = new Map<string, { table: Table; at: string }>();
  private timer: TimerHandle | undefined;

  constructor(private readonly deps: { db: Db; clock: Clock; flushMs: number }) {}

  touch(table: Table, id: string): void {
    this.pending.set(id, { table, at: isoTime(this.deps.clock.now()) });
    if (!this.timer) {
      this.timer = this.deps.clock.setTimeout(() => this.flush(), this.deps.flushMs);
      this.timer.unref?.();
    }
  }

  flush(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const entries = [...this.pending];
    this.pending = new Map();
    const statements = Object.fromEntries(TABLES.map((t) => [t, this.deps.db.prepare(`UPDATE ${t} SET last_used_at = ? WHERE id = ?`)]));
    this.deps.db.transaction(() => {
      for (const [id, { table, at }] of entries) statements[table]!.run(at, id);
    })();
  }
}
