// Who is calling the admin API: the hub-wide admin token or a project-scoped control token (ik_sdk_…).
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../shared/errors.ts';
import { secretKindOf } from '../../shared/secrets.ts';
import type { Store } from '../store/index.ts';
import { secretStatus } from '../store/secret-match.ts';
import { bearerToken } from '../tunnel/server.ts';
import type { LastUsedRecorder } from './last-used.ts';

export type Caller =
  | { kind: 'admin'; tokenId: string }
  | { kind: 'project'; tokenId: string; projectId: string; projectSlug: string };

export function authenticateControl(req: FastifyRequest, deps: { store: Store; nowMs: number; lastUsed: LastUsedRecorder }): Caller {
  const token = bearerToken(req.headers.authorization);
  if (!token) throw new AppError('UNAUTHORIZED', 'missing token: send "Authorization: Bearer ik_sdk_…"');
  const kind = secretKindOf(token);
  if (kind !== 'sdk') {
    const what = kind === 'live' ? 'a data key (ik_live_…) only works on /endpoint/… routes' : kind === 'agent' || kind === 'join' ? 'agent tokens only work on the agent tunnel' : 'it is not a control token';
    throw new AppError('UNAUTHORIZED', `invalid token for the admin API: ${what}; use a control token (ik_sdk_…)`);
  }
  const row = deps.store.controlTokens.findBySecret(token);
  if (!row) throw new AppError('UNAUTHORIZED', 'invalid token: no such control token on this hub');
  const status = secretStatus(row, deps.nowMs);
  if (status !== 'valid') throw new AppError('UNAUTHORIZED', `invalid token: the control token ${row.prefix}… was ${status}`);
  deps.lastUsed.touch('control_tokens', row.id);
  if (row.project_id === null) return { kind: 'admin', tokenId: row.id };
  const project = deps.store.projects.getById(row.project_id);
  if (!project) throw new AppError('UNAUTHORIZED', 'invalid token: its project no longer exists');
  return { kind: 'project', tokenId: row.id, projectId: project.id, projectSlug: project.slug };
}

/** True when the caller may see things that belong to `projectId` (null: hub-wide things). */
export function canSee(caller: Caller, projectId: string | null): boolean {
  return caller.kind === 'admin' || projectId === null || caller.projectId === projectId;
}

/** True when the caller may change things that belong to `projectId` (hub-wide things need the admin token). */
export function canChange(caller: Caller, projectId: string | null): boolean {
  return caller.kind === 'admin' || (projectId !== null && caller.projectId === projectId);
}
