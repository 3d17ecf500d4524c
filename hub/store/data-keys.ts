// Data keys (ik_live_): each serves one workload's data plane; optional per-minute rate limit and expiry.
import type { Db } from '../db/open.ts';
import { newId, type NewSecret } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { matchSecret } from './secret-match.ts';

export interface DataKeyRow {
  id: string;
  project_id: string;
  workload_id: string;
  name: string;
  prefix: string;
  hash: string;
  rate_limit_per_minute: number | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = 'id, project_id, workload_id, name, prefix, hash, rate_limit_per_minute, created_at, expires_at, last_used_at, revoked_at';

export function createDataKeyStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO data_keys (id, project_id, workload_id, name, prefix, hash, rate_limit_per_minute, created_at, expires_at)
     VALUES (@id, @project_id, @workload_id, @name, @prefix, @hash, @rate_limit_per_minute, @created_at, @expires_at)`,
  );
  const byPrefix = db.prepare<[string], DataKeyRow>(`SELECT ${COLUMNS} FROM data_keys WHERE prefix = ?`);
  const byId = db.prepare<[string], DataKeyRow>(`SELECT ${COLUMNS} FROM data_keys WHERE id = ?`);
  const byWorkload = db.prepare<[string], DataKeyRow>(`SELECT ${COLUMNS} FROM data_keys WHERE workload_id = ? ORDER BY created_at, id`);
  const revoke = db.prepare<[string, string]>('UPDATE data_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');

  return {
    insert(opts: { projectId: string; workloadId: string; name: string; secret: NewSecret; rateLimitPerMinute: number | null; expiresAt: string | null }): DataKeyRow {
      const row: DataKeyRow = {
        id: newId('key'),
        project_id: opts.projectId,
        workload_id: opts.workloadId,
        name: opts.name,
        prefix: opts.secret.prefix,
        hash: opts.secret.hash,
        rate_limit_per_minute: opts.rateLimitPerMinute,
        created_at: isoTime(clock.now()),
        expires_at: opts.expiresAt,
        last_used_at: null,
        revoked_at: null,
      };
      insert.run(row);
      return row;
    },
    findBySecret(secret: string): DataKeyRow | undefined {
      return matchSecret(secret, (prefix) => byPrefix.all(prefix));
    },
    getById(id: string): DataKeyRow | undefined {
      return byId.get(id);
    },
    listForWorkload(workloadId: string): DataKeyRow[] {
      return byWorkload.all(workloadId);
    },
    revoke(id: string): boolean {
      return revoke.run(isoTime(clock.now()), id).changes > 0;
    },
  };
}

export type DataKeyStore = ReturnType<typeof createDataKeyStore>;
