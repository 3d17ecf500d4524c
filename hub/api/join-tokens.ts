// Join-token routes: create (secret shown once, with the install one-liner), list masked, revoke.
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { joinTokenCreateSchema, joinTokenCreatedSchema, joinTokenViewSchema, listOf, type JoinTokenView } from '../../shared/api.ts';
import { newSecret } from '../../shared/secrets.ts';
import { isoTime } from '../../shared/clock.ts';
import type { JoinTokenRow } from '../store/join-tokens.ts';
import type { Caller } from './auth.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';

export function installCommand(publicUrl: string, secret: string): string {
  return `curl -sfL ${publicUrl}/install.sh | IK_TOKEN=${secret} sh -`;
}

export function registerJoinTokenRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store, clock } = deps;

  const view = (row: JoinTokenRow): JoinTokenView => ({
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    project: row.project_id === null ? null : (store.projects.getById(row.project_id)?.slug ?? null),
    labels: row.labels,
    uses: row.uses,
    created_at: row.created_at,
    expires_at: row.expires_at,
    last_used_at: row.last_used_at,
    revoked_at: row.revoked_at,
  });
  // Join tokens of the shared pool are the admin's; a project sees only its own.
  const mine = (caller: Caller, row: JoinTokenRow) => caller.kind === 'admin' || row.project_id === caller.projectId;

  router.add({
    method: 'POST',
    url: '/api/v1/join-tokens',
    operationId: 'createJoinToken',
    summary: 'Create a join token for the shared pool, or for one project\'s private workers',
    tag: 'join-tokens',
    body: joinTokenCreateSchema,
    responses: { 201: { description: 'created; the secret is shown only here', schema: joinTokenCreatedSchema } },
    handler: ({ body, caller, reply }) => {
      let projectId: string | null = caller.kind === 'project' ? caller.projectId : null;
      if (body.project !== undefined) {
        const project = store.projects.getBySlug(body.project);
        if (!project || (caller.kind === 'project' && project.id !== caller.projectId)) {
          throw new AppError('PROJECT_NOT_FOUND', `no project "${body.project}"`);
        }
        projectId = project.id;
      }
      const secret = newSecret('join');
      const expiresAt = body.expires_in_s === undefined ? null : isoTime(clock.now() + body.expires_in_s * 1000);
      const row = store.transaction(() => {
        const created = store.joinTokens.insert({
          projectId,
          name: body.name ?? (body.project ? `${body.project} workers` : 'shared pool'),
          labels: body.labels ?? {},
          secret,
          expiresAt,
        });
        store.events.record({ kind: 'join_token.created', projectId, message: `join token ${created.prefix}… created`, data: { id: created.id } });
        return created;
      });
      reply.code(201);
      return { ...view(row), secret: secret.secret, install_command: installCommand(deps.publicUrl(), secret.secret) };
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/join-tokens',
    operationId: 'listJoinTokens',
    summary: 'List join tokens (masked)',
    tag: 'join-tokens',
    responses: { 200: { description: 'join tokens', schema: listOf(joinTokenViewSchema) } },
    handler: ({ caller }) => ({
      items: store.joinTokens.list(caller.kind === 'project' ? caller.projectId : undefined).map(view),
      next: null,
    }),
  });

  router.add({
    method: 'DELETE',
    url: '/api/v1/join-tokens/:id',
    operationId: 'revokeJoinToken',
    summary: 'Revoke a join token (workers that already joined keep their credentials)',
    tag: 'join-tokens',
    params: z.strictObject({ id: z.string().min(1).max(100) }),
    responses: { 200: { description: 'the revoked token', schema: joinTokenViewSchema } },
    handler: ({ params, caller }) => {
      const row = store.joinTokens.getById(params.id);
      if (!row || !mine(caller, row)) throw new AppError('TOKEN_NOT_FOUND', `no join token ${params.id}: list them with \`ik join-token ls\``);
      if (store.joinTokens.revoke(row.id)) {
        store.events.record({ kind: 'join_token.revoked', projectId: row.project_id, message: `join token ${row.prefix}… revoked`, data: { id: row.id } });
      }
      return view(store.joinTokens.getById(row.id)!);
    },
  });
}
