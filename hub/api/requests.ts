// GET …/workloads/{slug}/requests: the request log of a workload, newest first (paged with `before`).
import { z } from 'zod';
import { listOf } from '../../shared/api.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { resolveProject } from './projects.ts';
import { resolveWorkload, workloadParams } from './workloads.ts';

export const requestLogViewSchema = z.object({
  id: z.number().int(),
  at: z.string(),
  key_prefix: z.string().nullable(),
  route: z.string(),
  status: z.number().int(),
  latency_ms: z.number(),
  ttft_ms: z.number().nullable(),
  prompt_tokens: z.number().int().nullable(),
  completion_tokens: z.number().int().nullable(),
  replica_id: z.string().nullable(),
});

export function registerRequestLogRoute(router: ApiRouter, deps: ApiDeps): void {
  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads/:slug/requests',
    operationId: 'listRequests',
    summary: "The workload's request log, newest first: key, route, status, latency, TTFT, tokens, replica",
    tag: 'workloads',
    params: workloadParams,
    query: z.strictObject({
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      before: z.coerce.number().int().positive().optional().describe('cursor: rows older than this id (the `next` of a previous page)'),
    }),
    responses: { 200: { description: 'request log rows', schema: listOf(requestLogViewSchema) } },
    handler: ({ params, query, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(deps.store, project, params.slug);
      const rows = deps.store.requestLog.list(workload.id, query.limit + 1, query.before);
      const page = rows.slice(0, query.limit);
      return {
        items: page.map(({ project_id: _p, workload_id: _w, ...row }) => row),
        next: rows.length > query.limit ? String(page[page.length - 1]!.id) : null,
      };
    },
  });
}
