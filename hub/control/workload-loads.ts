// The hub-measured load of every workload (one LoadWindow each), fed by the data plane and the job dispatcher and
// read by the policy loop: the autoscaler's signals and the idle timers of inactive timeouts and scale to zero.
import type { Clock } from '../../shared/clock.ts';
import { LoadWindow } from './load-window.ts';

/** A replica's backend metric older than this is left out of its workload's sum (its agent stopped reporting it). */
const METRIC_FRESH_MS = 5000;

export class WorkloadLoads {
  private readonly windows = new Map<string, LoadWindow>();
  /** The last backend metrics each replica's agent read, with when they arrived. */
  private readonly replicaMetrics = new Map<string, { metrics: Record<string, number>; at: number }>();

  constructor(private readonly clock: Clock) {}

  /** The workload's window, created on first use. */
  of(workloadId: string): LoadWindow {
    let w = this.windows.get(workloadId);
    if (!w) this.windows.set(workloadId, (w = new LoadWindow(this.clock)));
    return w;
  }

  peek(workloadId: string): LoadWindow | undefined {
    return this.windows.get(workloadId);
  }

  recordReplicaMetrics(replicaId: string, metrics: Record<string, number>): void {
    this.replicaMetrics.set(replicaId, { metrics, at: this.clock.now() });
  }

  /** The sum of `name` over the given replicas' fresh reports; null when none of them reported it. */
  backendSum(name: string, replicaIds: readonly string[]): number | null {
    const now = this.clock.now();
    let sum: number | null = null;
    for (const id of replicaIds) {
      const r = this.replicaMetrics.get(id);
      const v = r && now - r.at < METRIC_FRESH_MS ? r.metrics[name] : undefined;
      if (v !== undefined) sum = (sum ?? 0) + v;
    }
    return sum;
  }

  /** Forgets workloads and replicas that no longer exist. */
  retain(workloadIds: ReadonlySet<string>, replicaIds: ReadonlySet<string>): void {
    for (const id of this.windows.keys()) if (!workloadIds.has(id)) this.windows.delete(id);
    for (const id of this.replicaMetrics.keys()) if (!replicaIds.has(id)) this.replicaMetrics.delete(id);
  }
}
