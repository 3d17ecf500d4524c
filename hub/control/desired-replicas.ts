// How many replicas a workload wants right now, from its lifecycle and its policy: fixed asks for its count, scheduled
// for its count inside its time and none outside, autoscaling for what the autoscaler last decided (min_workers
// before its first decision).
import { scheduleState, type ScheduleState } from '../../shared/spec/schedule-time.ts';
import type { WorkloadRecord } from '../store/workloads.ts';

export interface DesiredReplicas {
  count: number;
  /** scheduled only: whether its time is now, and when it next opens or closes. */
  schedule?: ScheduleState;
}

export function desiredReplicas(w: Pick<WorkloadRecord, 'spec' | 'desired_state' | 'scale'>, nowMs: number): DesiredReplicas {
  const spec = w.spec;
  const schedule = spec.execution_policy === 'scheduled' ? scheduleState(spec.execution_policy_config, nowMs) : undefined;
  if (w.desired_state === 'inactive') return { count: 0, ...(schedule ? { schedule } : {}) };
  switch (spec.execution_policy) {
    case 'fixed':
      return { count: spec.execution_policy_config.replicas };
    case 'scheduled':
      return { count: schedule!.open ? spec.execution_policy_config.replicas : 0, schedule: schedule! };
    case 'autoscaling': {
      const { min_workers, max_workers } = spec.execution_policy_config;
      // A spec edited since the decision may have moved the bounds: the stored count is kept inside them.
      return { count: Math.min(max_workers, Math.max(min_workers, w.scale ?? min_workers)) };
    }
  }
}
