// A workload as the API shows it: its spec (env values masked) plus state, generation, replicas and placement.
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import type { WorkloadView } from '../../shared/api.ts';
import type { WorkloadRecord } from '../store/workloads.ts';

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

export function toWorkloadView(w: WorkloadRecord, projectSlug: string): WorkloadView {
  return {
    ...w.spec,
    project: projectSlug,
    state: w.state,
    desired_state: w.desired_state,
    generation: w.generation,
    desired_replicas: baselineReplicas(w.spec, w.desired_state),
    replicas: [],
    placement: w.placement,
    created_at: w.created_at,
    updated_at: w.updated_at,
  };
}
