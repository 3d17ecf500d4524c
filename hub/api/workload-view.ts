// A workload as the API shows it: its spec (env values masked) plus state, generation, replicas and placement.
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import type { ReplicaView, WorkloadView } from '../../shared/api.ts';
import type { WorkloadRecord } from '../store/workloads.ts';
import type { ReplicaRecord } from '../store/replicas.ts';
import type { ApiDeps } from './deps.ts';

/** Replicas the policy asks for before any load or schedule is considered (the autoscaler and windows refine it). */
export function baselineReplicas(spec: WorkloadSpec, desired: WorkloadRecord['desired_state']): number {
  if (desired === 'inactive') return 0;
  switch (spec.execution_policy) {
    case 'fixed':
      return spec.execution_policy_config.replicas;
    case 'autoscaling':
      return spec.execution_policy_config.min_workers;
    case 'scheduled':
      return 0;
  }
}

export function toReplicaView(r: ReplicaRecord, deps: Pick<ApiDeps, 'requests'>): ReplicaView {
  const pull = r.state === 'pulling' ? deps.requests.pullOf(r.id) : undefined;
  return {
    id: r.id,
    workload: r.slug,
    generation: r.generation,
    worker_id: r.worker_id,
    gpu_uuids: r.gpu_uuids,
    state: r.state,
    port: r.port,
    runtime: r.runtime,
    container_id: r.container_id,
    pid: r.pid,
    restarts: r.restarts,
    last_error: r.last_error,
    created_at: r.created_at,
    ready_at: r.ready_at,
    ...(pull ? { progress: { status: pull.status, percent: pull.percent } } : {}),
  };
}

export function toWorkloadView(w: WorkloadRecord, projectSlug: string, deps: Pick<ApiDeps, 'store' | 'requests'>): WorkloadView {
  return {
    ...w.spec,
    project: projectSlug,
    state: w.state,
    desired_state: w.desired_state,
    generation: w.generation,
    desired_replicas: baselineReplicas(w.spec, w.desired_state),
    // Stopped replicas are history: they are left out.
    replicas: deps.store.replicas.forWorkload(w.id).map((r) => toReplicaView(r, deps)),
    placement: w.placement,
    created_at: w.created_at,
    updated_at: w.updated_at,
  };
}
