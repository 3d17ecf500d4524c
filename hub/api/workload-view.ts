// A workload as the API shows it: its spec (env values masked) plus state, generation, replicas and placement.
import { isoTime } from '../../shared/clock.ts';
import { desiredReplicas } from '../control/desired-replicas.ts';
import type { ReplicaView, WorkloadView } from '../../shared/api.ts';
import type { WorkloadRecord } from '../store/workloads.ts';
import type { ReplicaRecord } from '../store/replicas.ts';
import type { ApiDeps } from './deps.ts';

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

export function toWorkloadView(w: WorkloadRecord, projectSlug: string, deps: Pick<ApiDeps, 'store' | 'requests' | 'scheduleNow'>): WorkloadView {
  const desired = desiredReplicas(w, deps.scheduleNow());
  const at = (ms: number | null) => (ms === null ? null : isoTime(ms));
  return {
    ...w.spec,
    project: projectSlug,
    state: w.state,
    desired_state: w.desired_state,
    generation: w.generation,
    desired_replicas: desired.count,
    deactivated_by: w.desired_state === 'inactive' ? w.deactivated_by : null,
    ...(desired.schedule ? { schedule: { open: desired.schedule.open, opens_at: at(desired.schedule.opensAtMs), closes_at: at(desired.schedule.closesAtMs) } } : {}),
    adapters: deps.store.adapters.list(w.id).map((a) => ({ name: a.name, source: a.source })),
    // Stopped replicas are history: they are left out.
    replicas: deps.store.replicas.forWorkload(w.id).map((r) => toReplicaView(r, deps)),
    placement: w.placement,
    created_at: w.created_at,
    updated_at: w.updated_at,
  };
}
