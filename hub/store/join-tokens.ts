// Join tokens (ik_join_): let an agent register once; project_id NULL joins the shared pool.
import { z } from 'zod';
import type { Db } from '../db/open.ts';
import { newId, type NewSecret } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { matchSecret } from './secret-match.ts';
import { readJson, writeJson } from './json-column.ts';

export const labelsSchema = z.record(z.string(), z.string());
export type Labels = z.infer<typeof labelsSchema>;

interface JoinTokenDbRow {
  id: string;
  project_id: string | null;
  name: string;
  labels: string;
  prefix: string;
  hash: string;
  bootstrap: number;
  uses: number;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export type JoinTokenRow = Omit<JoinTokenDbRow, 'labels'> & { labels: Labels };

const COLUMNS = 'id, project_id, name, labels, prefix, hash, bootstrap, uses, created_at, expires_at, last_used_at, revoked_at';

function fromDb(row: JoinTokenDbRow): JoinTokenRow {
  return { ...row, labels: readJson(labelsSchema, row.labels, 'join_tokens.labels') };
}

export function createJoinTokenStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO join_tokens (id, project_id, name, labels, prefix, hash, bootstrap, created_at, expires_at)
     VALUES (@id, @project_id, @name, @labels, @prefix, @hash, @bootstrap, @created_at, @expires_at)`,
  );
  const byPrefix = db.prepare<[string], JoinTokenDbRow>(`SELECT ${COLUMNS} FROM join_tokens WHERE prefix = ?`);
  const byId = db.prepare<[string], JoinTokenDbRow>(`SELECT ${COLUMNS} FROM join_tokens WHERE id = ?`);
  const listAll = db.prepare<[], JoinTokenDbRow>(`SELECT ${COLUMNS} FROM join_tokens ORDER BY created_at, id`);
  const listByProject = db.prepare<[string], JoinTokenDbRow>(
    `SELECT ${COLUMNS} FROM join_tokens WHERE project_id = ? ORDER BY created_at, id`,
  );
  const bootstrapRow = db.prepare<[], JoinTokenDbRow>(`SELECT ${COLUMNS} FROM join_tokens WHERE bootstrap = 1 AND revoked_at IS NULL`);
  const reactivate = db.prepare<[string]>('UPDATE join_tokens SET revoked_at = NULL, bootstrap = 1 WHERE id = ? AND bootstrap = 1');
  const revoke = db.prepare<[string, string]>('UPDATE join_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const used = db.prepare<[string, string]>('UPDATE join_tokens SET uses = uses + 1, last_used_at = ? WHERE id = ?');

  return {
    insert(opts: {
      projectId: string | null;
      name: string;
      labels: Labels;
      secret: NewSecret;
      bootstrap?: boolean;
      expiresAt?: string | null;
    }): JoinTokenRow {
      const row: JoinTokenRow = {
        id: newId('jtk'),
        project_id: opts.projectId,
        name: opts.name,
        labels: opts.labels,
        prefix: opts.secret.prefix,
        hash: opts.secret.hash,
        bootstrap: opts.bootstrap ? 1 : 0,
        uses: 0,
        created_at: isoTime(clock.now()),
        expires_at: opts.expiresAt ?? null,
        last_used_at: null,
        revoked_at: null,
      };
      insert.run({ ...row, labels: writeJson(row.labels) });
      return row;
    },
    findBySecret(secret: string): JoinTokenRow | undefined {
      const row = matchSecret(secret, (prefix) => byPrefix.all(prefix));
      return row && fromDb(row);
    },
    getById(id: string): JoinTokenRow | undefined {
      const row = byId.get(id);
      return row && fromDb(row);
    },
    list(projectId?: string): JoinTokenRow[] {
      return (projectId === undefined ? listAll.all() : listByProject.all(projectId)).map(fromDb);
    },
    bootstrap(): JoinTokenRow | undefined {
      const row = bootstrapRow.get();
      return row && fromDb(row);
    },
    /** Brings a revoked bootstrap token back (the environment names it explicitly). */
    reactivateBootstrap(id: string): boolean {
      return reactivate.run(id).changes > 0;
    },
    revoke(id: string): boolean {
      return revoke.run(isoTime(clock.now()), id).changes > 0;
    },
    recordUse(id: string): void {
      used.run(isoTime(clock.now()), id);
    },
  };
}

export type JoinTokenStore = ReturnType<typeof createJoinTokenStore>;
