// Data-key routes (ik_live_…): each key serves one workload's data plane; the secret is shown once.
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { dataKeyCreateSchema, dataKeyCreatedSchema, dataKeyViewSchema, listOf, type DataKeyView } from '../../shared/api.ts';
import { newSecret } from '../../shared/secrets.ts';
import { isoTime } from '../../shared/clock.ts';
import type { DataKeyRow } from '../store/data-keys.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { resolveProject } from './projects.ts';
import { resolveWorkload, workloadParams } from './workloads.ts';

export function registerKeyRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store, clock } = deps;
  const view = (row: DataKeyRow, project: string, workload: string): DataKeyView => ({
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    project,
    workload,
    rate_limit_per_minute: row.rate_limit_per_minute,
    created_at: row.created_at,
    expires_at: row.expires_at,
    last_used_at: row.last_used_at,
    revoked_at: row.revoked_at,
  });

  router.add({
    method: 'POST',
    url: '/api/v1/projects/:p/workloads/:slug/keys',
    operationId: 'createKey',
    summary: "Create a data key for this workload's endpoint (no rate limit unless set)",
    tag: 'keys',
    params: workloadParams,
    body: dataKeyCreateSchema,
    responses: { 201: { description: 'created; the secret is shown only here', schema: dataKeyCreatedSchema } },
    handler: ({ params, body, caller, reply }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      const secret = newSecret('live');
      const row = store.transaction(() => {
        const created = store.dataKeys.insert({
          projectId: project.id,
          workloadId: workload.id,
          name: body.name ?? `${workload.slug} key`,
          secret,
          rateLimitPerMinute: body.rate_limit_per_minute ?? null,
          expiresAt: body.expires_in_s === undefined ? null : isoTime(clock.now() + body.expires_in_s * 1000),
        });
        store.events.record({ kind: 'key.created', projectId: project.id, workload: workload.slug, message: `data key ${created.prefix}… (${created.name}) created`, data: { id: created.id } });
        return created;
      });
      reply.code(201);
      return { ...view(row, project.slug, workload.slug), secret: secret.secret };
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads/:slug/keys',
    operationId: 'listKeys',
    summary: "List the workload's data keys (masked)",
    tag: 'keys',
    params: workloadParams,
    responses: { 200: { description: 'keys', schema: listOf(dataKeyViewSchema) } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      return { items: store.dataKeys.listForWorkload(workload.id).map((k) => view(k, project.slug, workload.slug)), next: null };
    },
  });

  router.add({
    method: 'DELETE',
    url: '/api/v1/projects/:p/workloads/:slug/keys/:id',
    operationId: 'revokeKey',
    summary: 'Revoke a data key',
    tag: 'keys',
    params: workloadParams.extend({ id: z.string().min(1).max(100) }),
    responses: { 200: { description: 'the revoked key', schema: dataKeyViewSchema } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      const row = store.dataKeys.getById(params.id);
      if (!row || row.workload_id !== workload.id) throw new AppError('KEY_NOT_FOUND', `no key ${params.id} on workload ${workload.slug}: see \`ik keys ls ${workload.slug}\``);
      if (store.dataKeys.revoke(row.id)) {
        deps.onKeyRevoked?.();
        store.events.record({ kind: 'key.revoked', projectId: project.id, workload: workload.slug, message: `data key ${row.prefix}… (${row.name}) revoked`, data: { id: row.id } });
      }
      return view(store.dataKeys.getById(row.id)!, project.slug, workload.slug);
    },
  });
}
