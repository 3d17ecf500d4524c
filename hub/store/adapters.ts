// Adapters: the LoRA deployments each workload should serve (desired state, written only by the API).
import type { Db } from '../db/open.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';

export interface AdapterRow {
  workload_id: string;
  /** The name clients put in the request's `model` field. */
  name: string;
  /** What the backend loads: a Hugging Face repo id or a path on the worker. */
  source: string;
  created_at: string;
  updated_at: string;
}

/** What a put did: a new adapter, a new source for an existing one, or nothing. */
export type AdapterPutOutcome = 'created' | 'updated' | 'unchanged';

const COLUMNS = 'workload_id, name, source, created_at, updated_at';

export function createAdapterStore(db: Db, clock: Clock) {
  const byWorkload = db.prepare<[string], AdapterRow>(`SELECT ${COLUMNS} FROM adapters WHERE workload_id = ? ORDER BY name`);
  const byName = db.prepare<[string, string], AdapterRow>(`SELECT ${COLUMNS} FROM adapters WHERE workload_id = ? AND name = ?`);
  const insert = db.prepare(
    `INSERT INTO adapters (workload_id, name, source, created_at, updated_at) VALUES (@workload_id, @name, @source, @at, @at)`,
  );
  const setSource = db.prepare<[string, string, string, string]>('UPDATE adapters SET source = ?, updated_at = ? WHERE workload_id = ? AND name = ?');
  const remove = db.prepare<[string, string]>('DELETE FROM adapters WHERE workload_id = ? AND name = ?');

  return {
    /** The workload's adapters, by name. */
    list(workloadId: string): AdapterRow[] {
      return byWorkload.all(workloadId);
    },
    get(workloadId: string, name: string): AdapterRow | undefined {
      return byName.get(workloadId, name);
    },
    /** Creates the adapter or points it at a new source; the same source again changes nothing (not even updated_at). */
    put(workloadId: string, name: string, source: string): AdapterPutOutcome {
      return db.transaction((): AdapterPutOutcome => {
        const existing = byName.get(workloadId, name);
        const at = isoTime(clock.now());
        if (!existing) {
          insert.run({ workload_id: workloadId, name, source, at });
          return 'created';
        }
        if (existing.source === source) return 'unchanged';
        setSource.run(source, at, workloadId, name);
        return 'updated';
      })();
    },
    delete(workloadId: string, name: string): boolean {
      return remove.run(workloadId, name).changes > 0;
    },
  };
}

export type AdapterStore = ReturnType<typeof createAdapterStore>;
