// The request log: one row per data-plane request, appended in batches; read newest first by workload.
import type { Db } from '../db/open.ts';

export interface RequestLogRow {
  id: number;
  at: string;
  project_id: string;
  workload_id: string;
  key_prefix: string | null;
  route: string;
  status: number;
  latency_ms: number;
  ttft_ms: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  replica_id: string | null;
}

export type NewRequestLogRow = Omit<RequestLogRow, 'id'>;

export function createRequestLogStore(db: Db) {
  const insert = db.prepare(
    `INSERT INTO request_log (at, project_id, workload_id, key_prefix, route, status, latency_ms, ttft_ms, prompt_tokens, completion_tokens, replica_id)
     VALUES (@at, @project_id, @workload_id, @key_prefix, @route, @status, @latency_ms, @ttft_ms, @prompt_tokens, @completion_tokens, @replica_id)`,
  );
  const page = db.prepare<[string, number, number], RequestLogRow>(
    `SELECT id, at, project_id, workload_id, key_prefix, route, status, latency_ms, ttft_ms, prompt_tokens, completion_tokens, replica_id
     FROM request_log WHERE workload_id = ? AND id < ? ORDER BY id DESC LIMIT ?`,
  );
  const purge = db.prepare<[string]>('DELETE FROM request_log WHERE at < ?');
  const insertMany = db.transaction((rows: NewRequestLogRow[]) => {
    for (const r of rows) insert.run(r);
  });

  return {
    append(rows: NewRequestLogRow[]): void {
      if (rows.length > 0) insertMany(rows);
    },
    /** Newest first; `beforeId` pages back. */
    list(workloadId: string, limit: number, beforeId = Number.MAX_SAFE_INTEGER): RequestLogRow[] {
      return page.all(workloadId, beforeId, limit);
    },
    purgeBefore(iso: string): number {
      return purge.run(iso).changes;
    },
  };
}

export type RequestLogStore = ReturnType<typeof createRequestLogStore>;
