// A workload's state from its replicas (DESIGN §7): creating until a first replica is ready; active (also at zero
// replicas); degraded when fewer are ready than desired for longer than a start takes; failed when every replica
// keeps failing; inactive when deactivated; scheduled while a scheduled workload waits for its time.
import type { WorkloadState } from '../store/workloads.ts';

/** Restarts after which a replica that is failed counts as failing for good. */
export const FAILING_AFTER_RESTARTS = 3;

export interface WorkloadStateInput {
  state: WorkloadState;
  desiredState: 'active' | 'inactive';
  /** A scheduled workload outside its time. */
  outsideSchedule: boolean;
  desired: number;
  ready: number;
  /** Every replica of the current generation is failed and has restarted FAILING_AFTER_RESTARTS times or more. */
  allFailing: boolean;
  /** How long fewer replicas than desired have been ready (0 when enough are). */
  shortfallMs: number;
  degradedAfterMs: number;
}

export function nextWorkloadState(i: WorkloadStateInput): WorkloadState {
  if (i.desiredState === 'inactive') return 'inactive';
  if (i.outsideSchedule) return 'scheduled';
  if (i.ready >= i.desired) return 'active';
  if (i.allFailing) return 'failed';
  const wasServing = i.state === 'active' || i.state === 'degraded';
  if (!wasServing && i.ready === 0) return 'creating';
  if (i.shortfallMs >= i.degradedAfterMs) return 'degraded';
  return 'active';
}
