// Worker routes: the operator's inventory view and actions (cordon, uncordon, drain, patch, delete).
import { z } from 'zod';
import { AppError } from '../../shared/errors.ts';
import { listOf, workerPatchSchema, workerViewSchema, type WorkerView } from '../../shared/api.ts';
import type { WorkerRecord } from '../store/workers.ts';
import type { Store } from '../store/index.ts';
import { canChange, canSee, type Caller } from './auth.ts';
import type { ApiRouter } from './route.ts';
import type { ApiDeps } from './deps.ts';
import { toReplicaView } from './workload-view.ts';

const idParams = z.strictObject({ id: z.string().min(1).max(100) });
const listQuery = z.strictObject({ project: z.string().min(1).max(63).optional().describe('only workers this project can use') });

export function toWorkerView(w: WorkerRecord, store: Store, deps?: Pick<ApiDeps, 'requests'>): WorkerView {
  return {
    id: w.id,
    name: w.name,
    project: w.project_id === null ? null : (store.projects.getById(w.project_id)?.slug ?? null),
    state: w.state,
    cordoned: w.cordoned,
    draining: w.draining,
    labels: w.labels,
    agent_version: w.agent_version,
    last_heartbeat_at: w.last_heartbeat_at,
    host: w.host,
    // Images and the image map are for placement; the operator's view shows what the runtime is.
    runtime: { kind: w.runtime.kind, docker_version: w.runtime.docker_version, nvidia_runtime: w.runtime.nvidia_runtime, cdi: w.runtime.cdi, gpu_mode: w.runtime.gpu_mode },
    gpu_driver_version: w.gpu_driver_version,
    cuda_version: w.cuda_version,
    gpu_error: w.gpu_error,
    gpus: [...w.gpus].sort((a, b) => a.index - b.index),
    gpu_hourly_cost_usd: w.gpu_hourly_cost_usd,
    replicas: deps ? store.replicas.forWorker(w.id).map((r) => toReplicaView(r, deps)) : [],
  };
}

/** The worker if the caller may see it; otherwise the same 404 as for an unknown id, so ids cannot be probed. */
function visibleWorker(deps: ApiDeps, caller: Caller, id: string): WorkerRecord {
  const worker = deps.store.workers.getById(id);
  if (!worker || !canSee(caller, worker.project_id)) {
    throw new AppError('WORKER_NOT_FOUND', `no worker ${id}: list workers with \`ik workers ls\``);
  }
  return worker;
}

function changeableWorker(deps: ApiDeps, caller: Caller, id: string): WorkerRecord {
  const worker = visibleWorker(deps, caller, id);
  if (!canChange(caller, worker.project_id)) {
    throw new AppError('FORBIDDEN', `worker ${id} is in the shared pool: only the hub's admin token can change it`);
  }
  return worker;
}

export function registerWorkerRoutes(router: ApiRouter, deps: ApiDeps): void {
  const { store } = deps;
  const one = { 200: { description: 'the worker', schema: workerViewSchema } };

  router.add({
    method: 'GET',
    url: '/api/v1/workers',
    operationId: 'listWorkers',
    summary: 'List workers: inventory, state, replicas, last heartbeat',
    tag: 'workers',
    query: listQuery,
    responses: { 200: { description: 'workers', schema: listOf(workerViewSchema) } },
    handler: ({ query, caller }) => {
      let projectId: string | undefined = caller.kind === 'project' ? caller.projectId : undefined;
      if (query.project !== undefined) {
        const project = store.projects.getBySlug(query.project);
        if (!project || !canSee(caller, project.id)) throw new AppError('PROJECT_NOT_FOUND', `no project "${query.project}"`);
        projectId = project.id;
      }
      return { items: store.workers.list(projectId).map((w) => toWorkerView(w, store, deps)), next: null };
    },
  });

  router.add({
    method: 'GET',
    url: '/api/v1/workers/:id',
    operationId: 'getWorker',
    summary: 'Show one worker',
    tag: 'workers',
    params: idParams,
    responses: one,
    handler: ({ params, caller }) => toWorkerView(visibleWorker(deps, caller, params.id), store, deps),
  });

  const flagAction = (action: 'cordon' | 'uncordon' | 'drain', summary: string, flags: (w: WorkerRecord) => { cordoned: boolean; draining: boolean }) =>
    router.add({
      method: 'POST',
      url: `/api/v1/workers/:id/${action}`,
      operationId: `${action}Worker`,
      summary,
      tag: 'workers',
      params: idParams,
      responses: one,
      handler: ({ params, caller }) => {
        const worker = changeableWorker(deps, caller, params.id);
        const next = flags(worker);
        if (next.cordoned !== worker.cordoned || next.draining !== worker.draining) {
          store.transaction(() => {
            store.workers.setFlags(worker.id, next);
            // A drain moves the worker's replicas elsewhere; an uncordon may let pending replicas in.
            store.events.record({ kind: `worker.${action}ed`, workerId: worker.id, projectId: worker.project_id, message: `worker ${worker.name}: ${summary.toLowerCase()}` });
          });
          deps.reconciler.workerChanged();
          for (const w of store.workloads.list()) deps.reconciler.enqueue(w.id);
        }
        return toWorkerView(store.workers.getById(worker.id)!, store, deps);
      },
    });
  flagAction('cordon', 'Cordon: place no new replicas here', (w) => ({ cordoned: true, draining: w.draining }));
  flagAction('uncordon', 'Uncordon: place replicas here again (also ends a drain)', () => ({ cordoned: false, draining: false }));
  flagAction('drain', 'Drain: place nothing new and move replicas elsewhere', (w) => ({ cordoned: w.cordoned, draining: true }));

  router.add({
    method: 'PATCH',
    url: '/api/v1/workers/:id',
    operationId: 'patchWorker',
    summary: 'Change labels and the GPU hourly cost',
    tag: 'workers',
    params: idParams,
    body: workerPatchSchema,
    responses: one,
    handler: ({ params, body, caller }) => {
      const worker = changeableWorker(deps, caller, params.id);
      deps.reconciler.workerChanged();
      store.workers.patch(worker.id, {
        labels: body.labels ?? worker.labels,
        gpu_hourly_cost_usd: body.gpu_hourly_cost_usd === undefined ? worker.gpu_hourly_cost_usd : body.gpu_hourly_cost_usd,
      });
      return toWorkerView(store.workers.getById(worker.id)!, store, deps);
    },
  });

  router.add({
    method: 'DELETE',
    url: '/api/v1/workers/:id',
    operationId: 'deleteWorker',
    summary: 'Remove a worker; its agent is disconnected and its credential stops working',
    tag: 'workers',
    params: idParams,
    responses: { 204: { description: 'deleted' } },
    handler: ({ params, caller }) => {
      const worker = changeableWorker(deps, caller, params.id);
      deps.heartbeats.discard(worker.id);
      deps.liveness.forget(worker.id);
      store.transaction(() => {
        store.workers.delete(worker.id);
        store.events.record({ kind: 'worker.deleted', workerId: worker.id, projectId: worker.project_id, message: `worker ${worker.name} was deleted` });
      });
      deps.sessions.get(worker.id)?.goAway('worker_deleted', 'this worker was deleted on the hub; its credential no longer works');
      deps.replicas.onWorkerDeleted(worker.id);
      return undefined;
    },
  });
}
