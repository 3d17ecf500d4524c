// What a workload may cost per hour (DESIGN §4.3 plan, §7 autoscaler caps), from what one replica costs.
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';

export interface HourlyCost {
  min: number;
  max: number;
  notes: string[];
}

const rounded = (usd: number) => Math.round(usd * 10_000) / 10_000;

/**
 * The hourly cost range of `spec` when one replica costs `low` … `high` USD per hour (its GPU count × its worker's
 * gpu_hourly_cost_usd, from the cheapest to the dearest worker that can take it). fixed: replicas × that; scheduled:
 * 0 outside its time, replicas × that while it runs; autoscaling: min_workers … max_workers replicas, the count bounded
 * by cloud_pool.max_instances and by the lower of max_hourly_cost_usd and cloud_pool.max_hourly_cost_usd.
 */
export function hourlyCostRange(spec: WorkloadSpec, low: number, high: number): HourlyCost {
  const notes: string[] = [];
  if (spec.execution_policy === 'fixed') {
    const n = spec.execution_policy_config.replicas;
    return { min: rounded(n * low), max: rounded(n * high), notes };
  }
  if (spec.execution_policy === 'scheduled') {
    notes.push('scheduled: 0 outside its time; the maximum is the cost while it runs');
    return { min: 0, max: rounded(spec.execution_policy_config.replicas * high), notes };
  }
  const c = spec.execution_policy_config;
  const pool = c.workers?.source === 'cloud' ? c.workers.cloud_pool : undefined;
  let count = Math.min(c.max_workers, pool?.max_instances ?? Infinity);
  const cap = Math.min(c.max_hourly_cost_usd ?? Infinity, pool?.max_hourly_cost_usd ?? Infinity);
  const affordable = Number.isFinite(cap) && high > 0 ? Math.floor(cap / high + 1e-9) : Infinity;
  if (affordable < count) {
    count = affordable;
    notes.push(`the hourly cap of ${cap} USD bounds autoscaling to ${count} replica${count === 1 ? '' : 's'}`);
  }
  return { min: rounded(Math.min(c.min_workers, count) * low), max: rounded(count * high), notes };
}

/** The note for workers priced at nothing because their gpu_hourly_cost_usd is unset (null: every worker has a price). */
export function unpricedNote(workerIds: readonly string[]): string | null {
  if (workerIds.length === 0) return null;
  const ids = [...workerIds].sort();
  const shown = ids.length > 5 ? `${ids.slice(0, 5).join(', ')} and ${ids.length - 5} more` : ids.join(', ');
  return `${shown} ${ids.length === 1 ? 'has' : 'have'} no gpu_hourly_cost_usd: counted as 0 USD per GPU-hour`;
}
