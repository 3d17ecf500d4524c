// Workload routes: ensure (PUT), list, show, delete, activate and deactivate.
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { listOf, onDriftModes, slugSchema, workloadViewSchema } from '../../shared/api.ts';
import { workloadSpecSchema } from '../../shared/spec/workload-spec.ts';
import type { Store } from '../store/index.ts';
import type { Project } from '../store/projects.ts';
import type { WorkloadRecord } from '../store/workloads.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { projectParams, resolveProject } from './projects.ts';
import { ensureWorkload } from './ensure.ts';
import { ENSURE_OUTCOME_HEADER } from '../../shared/api.ts';
import { toWorkloadView } from './workload-view.ts';

export const workloadParams = projectParams.extend({ slug: slugSchema.describe('workload slug') });

export function resolveWorkload(store: Store, project: Project, slug: string): WorkloadRecord {
  const workload = store.workloads.get(project.id, slug);
  if (!workload) throw new AppError('WORKLOAD_NOT_FOUND', `no workload "${slug}" in project ${project.slug}: see \`ik workloads ls\``);
  return workload;
}

export function registerWorkloadRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store } = deps;
  const one = { 200: { description: 'the workload', schema: workloadViewSchema } };

  router.add({
    method: 'PUT',
    url: '/api/v1/projects/:p/workloads/:slug',
    operationId: 'ensureWorkload',
    summary: 'ensure(): create the workload, or bring it to this spec (idempotent by slug); the x-ik-ensure header says created, unchanged, reconciled or ignored',
    tag: 'workloads',
    // The slug is checked with the rest of the spec, so a bad slug is reported along with every other problem.
    params: projectParams.extend({ slug: z.string().min(1).max(200).describe('workload slug (must equal the body\'s slug)') }),
    query: z.strictObject({
      on_drift: z.enum(onDriftModes).default('reconcile').describe('reconcile: apply the new spec (bumps the generation); fail: 409 naming the differences; ignore: keep the stored spec'),
    }),
    bodyDoc: workloadSpecSchema,
    responses: { 200: { description: 'unchanged, reconciled or ignored', schema: workloadViewSchema }, 201: { description: 'created', schema: workloadViewSchema } },
    handler: ({ params, query, rawBody, caller, reply }) => {
      const project = resolveProject(deps, caller, params.p);
      const result = ensureWorkload(store, project, params.slug, rawBody, query.on_drift);
      if (result.outcome === 'created' || result.outcome === 'reconciled') deps.reconciler.enqueue(result.workload.id);
      // The status says created or not; the header says which of the other outcomes happened.
      reply.code(result.outcome === 'created' ? 201 : 200).header(ENSURE_OUTCOME_HEADER, result.outcome);
      return toWorkloadView(result.workload, project.slug, deps);
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads',
    operationId: 'listWorkloads',
    summary: "List the project's workloads",
    tag: 'workloads',
    params: projectParams,
    responses: { 200: { description: 'workloads', schema: listOf(workloadViewSchema) } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      return { items: store.workloads.list(project.id).map((w) => toWorkloadView(w, project.slug, deps)), next: null };
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads/:slug',
    operationId: 'getWorkload',
    summary: 'Show one workload: spec (env values masked), state, generation, replicas, placement',
    tag: 'workloads',
    params: workloadParams,
    responses: one,
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      return toWorkloadView(resolveWorkload(store, project, params.slug), project.slug, deps);
    },
  });

  router.add({
    method: 'DELETE',
    url: '/api/v1/projects/:p/workloads/:slug',
    operationId: 'deleteWorkload',
    summary: 'Delete a workload: its replicas are drained and stopped, its data keys stop working',
    tag: 'workloads',
    params: workloadParams,
    responses: { 204: { description: 'deleted' } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      store.transaction(() => {
        store.workloads.delete(workload.id);
        store.events.record({ kind: 'workload.deleted', projectId: project.id, workload: workload.slug, message: `workload ${workload.slug} deleted` });
      });
      // Its replicas are drained and stopped by the reconciler (they outlive the workload row until then).
      deps.reconciler.enqueue(workload.id);
      return undefined;
    },
  });

  for (const action of ['activate', 'deactivate'] as const) {
    router.add({
      method: 'POST',
      url: `/api/v1/projects/:p/workloads/:slug/${action}`,
      operationId: `${action}Workload`,
      summary: action === 'activate' ? 'Activate: run the workload by its policy again' : 'Deactivate: release its compute (remembers adapters); requests get 503 until activated',
      tag: 'workloads',
      params: workloadParams,
      responses: one,
      handler: ({ params, caller }) => {
        const project = resolveProject(deps, caller, params.p);
        const workload = resolveWorkload(store, project, params.slug);
        const desired = action === 'activate' ? 'active' : 'inactive';
        if (workload.desired_state !== desired) {
          store.transaction(() => {
            if (desired === 'active') store.workloads.activate(workload.id, 'creating');
            else store.workloads.deactivate(workload.id, 'hand');
            store.events.record({
              kind: `workload.${action}d`,
              projectId: project.id,
              workload: workload.slug,
              message: `workload ${workload.slug} ${action}d by hand`,
            });
          });
          deps.reconciler.enqueue(workload.id);
        }
        return toWorkloadView(store.workloads.getById(workload.id)!, project.slug, deps);
      },
    });
  }
}
