// Control tokens (ik_sdk_): hub-wide admin (project_id NULL) or scoped to one project.
import type { Db } from '../db/open.ts';
import { newId, type NewSecret } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { matchSecret } from './secret-match.ts';

export interface ControlTokenRow {
  id: string;
  project_id: string | null;
  name: string;
  prefix: string;
  hash: string;
  bootstrap: number;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = 'id, project_id, name, prefix, hash, bootstrap, created_at, expires_at, last_used_at, revoked_at';

export function createControlTokenStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO control_tokens (id, project_id, name, prefix, hash, bootstrap, created_at, expires_at)
     VALUES (@id, @project_id, @name, @prefix, @hash, @bootstrap, @created_at, @expires_at)`,
  );
  const byPrefix = db.prepare<[string], ControlTokenRow>(`SELECT ${COLUMNS} FROM control_tokens WHERE prefix = ?`);
  const byId = db.prepare<[string], ControlTokenRow>(`SELECT ${COLUMNS} FROM control_tokens WHERE id = ?`);
  const listAll = db.prepare<[], ControlTokenRow>(`SELECT ${COLUMNS} FROM control_tokens ORDER BY created_at, id`);
  const listByProject = db.prepare<[string], ControlTokenRow>(
    `SELECT ${COLUMNS} FROM control_tokens WHERE project_id = ? ORDER BY created_at, id`,
  );
  const bootstrapRow = db.prepare<[], ControlTokenRow>(
    `SELECT ${COLUMNS} FROM control_tokens WHERE bootstrap = 1 AND revoked_at IS NULL`,
  );
  const reactivate = db.prepare<[string]>('UPDATE control_tokens SET revoked_at = NULL, bootstrap = 1 WHERE id = ? AND bootstrap = 1');
  const revoke = db.prepare<[string, string]>('UPDATE control_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');

  return {
    insert(opts: { projectId: string | null; name: string; secret: NewSecret; bootstrap?: boolean; expiresAt?: string | null }): ControlTokenRow {
      const row: ControlTokenRow = {
        id: newId('tok'),
        project_id: opts.projectId,
        name: opts.name,
        prefix: opts.secret.prefix,
        hash: opts.secret.hash,
        bootstrap: opts.bootstrap ? 1 : 0,
        created_at: isoTime(clock.now()),
        expires_at: opts.expiresAt ?? null,
        last_used_at: null,
        revoked_at: null,
      };
      insert.run(row);
      return row;
    },
    findBySecret(secret: string): ControlTokenRow | undefined {
      return matchSecret(secret, (prefix) => byPrefix.all(prefix));
    },
    getById(id: string): ControlTokenRow | undefined {
      return byId.get(id);
    },
    list(projectId?: string): ControlTokenRow[] {
      return projectId === undefined ? listAll.all() : listByProject.all(projectId);
    },
    bootstrapAdmin(): ControlTokenRow | undefined {
      return bootstrapRow.get();
    },
    /** Brings a revoked bootstrap token back (the environment names it explicitly). */
    reactivateBootstrap(id: string): boolean {
      return reactivate.run(id).changes > 0;
    },
    revoke(id: string): boolean {
      return revoke.run(isoTime(clock.now()), id).changes > 0;
    },
  };
}

export type ControlTokenStore = ReturnType<typeof createControlTokenStore>;
