// Control-token routes of a project (ik_sdk_…): create (secret shown once), list masked, revoke.
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { controlTokenCreateSchema, controlTokenCreatedSchema, controlTokenViewSchema, listOf, type ControlTokenView } from '../../shared/api.ts';
import { newSecret } from '../../shared/secrets.ts';
import { isoTime } from '../../shared/clock.ts';
import type { ControlTokenRow } from '../store/control-tokens.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { projectParams, resolveProject } from './projects.ts';

export function registerTokenRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store, clock } = deps;
  const view = (row: ControlTokenRow, project: string): ControlTokenView => ({
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    project,
    created_at: row.created_at,
    expires_at: row.expires_at,
    last_used_at: row.last_used_at,
    revoked_at: row.revoked_at,
  });

  router.add({
    method: 'POST',
    url: '/api/v1/projects/:p/tokens',
    operationId: 'createToken',
    summary: "Create a control token scoped to the project (it sees and changes only this project's things)",
    tag: 'tokens',
    params: projectParams,
    body: controlTokenCreateSchema,
    responses: { 201: { description: 'created; the secret is shown only here', schema: controlTokenCreatedSchema } },
    handler: ({ params, body, caller, reply }) => {
      const project = resolveProject(deps, caller, params.p);
      const secret = newSecret('sdk');
      const row = store.transaction(() => {
        const created = store.controlTokens.insert({
          projectId: project.id,
          name: body.name ?? `${project.slug} token`,
          secret,
          expiresAt: body.expires_in_s === undefined ? null : isoTime(clock.now() + body.expires_in_s * 1000),
        });
        store.events.record({ kind: 'token.created', projectId: project.id, message: `control token ${created.prefix}… (${created.name}) created`, data: { id: created.id } });
        return created;
      });
      reply.code(201);
      return { ...view(row, project.slug), secret: secret.secret };
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/tokens',
    operationId: 'listTokens',
    summary: "List the project's control tokens (masked)",
    tag: 'tokens',
    params: projectParams,
    responses: { 200: { description: 'tokens', schema: listOf(controlTokenViewSchema) } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      return { items: store.controlTokens.list(project.id).map((t) => view(t, project.slug)), next: null };
    },
  });

  router.add({
    method: 'DELETE',
    url: '/api/v1/projects/:p/tokens/:id',
    operationId: 'revokeToken',
    summary: 'Revoke a control token',
    tag: 'tokens',
    params: projectParams.extend({ id: z.string().min(1).max(100) }),
    responses: { 200: { description: 'the revoked token', schema: controlTokenViewSchema } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const row = store.controlTokens.getById(params.id);
      if (!row || row.project_id !== project.id) throw new AppError('TOKEN_NOT_FOUND', `no token ${params.id} in project ${project.slug}: see \`ik tokens ls\``);
      if (store.controlTokens.revoke(row.id)) {
        store.events.record({ kind: 'token.revoked', projectId: project.id, message: `control token ${row.prefix}… (${row.name}) revoked`, data: { id: row.id } });
      }
      return view(store.controlTokens.getById(row.id)!, project.slug);
    },
  });
}
