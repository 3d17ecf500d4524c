// Adapter routes: the LoRA deployments a workload serves, selected by the request's `model` (DESIGN §4.3).
import { AppError } from '../../shared/errors.ts';
import { adapterPutSchema, adapterViewSchema, listOf, type AdapterView } from '../../shared/api.ts';
import { adapterNameSchema, adapterSupportProblem } from '../../shared/spec/adapters.ts';
import type { AdapterRow } from '../store/adapters.ts';
import type { WorkloadRecord } from '../store/workloads.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { resolveProject } from './projects.ts';
import { resolveWorkload, workloadParams } from './workloads.ts';

const adapterParams = workloadParams.extend({ name: adapterNameSchema.describe("adapter name: what clients put in the request's model field") });

function toAdapterView(row: AdapterRow, workload: string): AdapterView {
  return { name: row.name, source: row.source, workload, created_at: row.created_at, updated_at: row.updated_at };
}

/** Refuses an adapter the workload cannot serve, or whose name the data plane would read as the base model. */
function checkAdapterFits(workload: WorkloadRecord, name: string): void {
  const unsupported = adapterSupportProblem(workload.spec);
  if (unsupported) {
    throw new AppError('VALIDATION_FAILED', `cannot add adapter ${name}: ${unsupported}`, { details: [{ path: 'path.slug', message: unsupported }] });
  }
  const clash =
    name === workload.spec.model ? `is the workload's base model ${workload.spec.model}` : name === workload.slug ? `is the workload's slug` : null;
  if (clash) {
    const message = `adapter name "${name}" ${clash}, which already selects the base model in a request's model field: pick another name`;
    throw new AppError('VALIDATION_FAILED', message, { details: [{ path: 'path.name', message }] });
  }
}

export function registerAdapterRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store } = deps;

  router.add({
    method: 'GET',
    url: '/api/v1/projects/:p/workloads/:slug/adapters',
    operationId: 'listAdapters',
    summary: "List the workload's LoRA adapters (by name); an inactive workload keeps them",
    tag: 'adapters',
    params: workloadParams,
    responses: { 200: { description: 'adapters', schema: listOf(adapterViewSchema) } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      return { items: store.adapters.list(workload.id).map((a) => toAdapterView(a, workload.slug)), next: null };
    },
  });

  router.add({
    method: 'PUT',
    url: '/api/v1/projects/:p/workloads/:slug/adapters/:name',
    operationId: 'putAdapter',
    summary: "Deploy a LoRA adapter on the workload's replicas, or point it at a new source (idempotent by name)",
    tag: 'adapters',
    params: adapterParams,
    body: adapterPutSchema,
    responses: {
      200: { description: 'the adapter existed: its source was changed or already this one', schema: adapterViewSchema },
      201: { description: 'the adapter was created', schema: adapterViewSchema },
    },
    handler: ({ params, body, caller, reply }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      checkAdapterFits(workload, params.name);
      const { outcome, row } = store.transaction(() => {
        const previous = store.adapters.get(workload.id, params.name);
        const outcome = store.adapters.put(workload.id, params.name, body.source);
        if (outcome !== 'unchanged') {
          const message = previous
            ? `adapter ${params.name} now loads ${body.source} (was ${previous.source})`
            : `adapter ${params.name} added (loads ${body.source})`;
          store.events.record({
            kind: 'adapter.put',
            projectId: project.id,
            workload: workload.slug,
            message,
            data: { name: params.name, source: body.source, ...(previous ? { previous_source: previous.source } : {}) },
          });
        }
        return { outcome, row: store.adapters.get(workload.id, params.name)! };
      });
      if (outcome !== 'unchanged') deps.onAdaptersChanged?.(workload.id);
      reply.code(outcome === 'created' ? 201 : 200);
      return toAdapterView(row, workload.slug);
    },
  });

  router.add({
    method: 'DELETE',
    url: '/api/v1/projects/:p/workloads/:slug/adapters/:name',
    operationId: 'deleteAdapter',
    summary: "Remove a LoRA adapter: the workload's replicas unload it",
    tag: 'adapters',
    params: adapterParams,
    responses: { 204: { description: 'deleted' } },
    handler: ({ params, caller }) => {
      const project = resolveProject(deps, caller, params.p);
      const workload = resolveWorkload(store, project, params.slug);
      const removed = store.transaction(() => {
        const row = store.adapters.get(workload.id, params.name);
        if (!row || !store.adapters.delete(workload.id, params.name)) return undefined;
        store.events.record({
          kind: 'adapter.deleted',
          projectId: project.id,
          workload: workload.slug,
          message: `adapter ${row.name} removed (was ${row.source})`,
          data: { name: row.name, source: row.source },
        });
        return row;
      });
      if (!removed) {
        throw new AppError('ADAPTER_NOT_FOUND', `no adapter "${params.name}" on workload ${workload.slug}: see \`ik adapters list ${workload.slug}\``);
      }
      deps.onAdaptersChanged?.(workload.id);
      return undefined;
    },
  });
}
