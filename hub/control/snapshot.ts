// The scheduler's view of the fleet, read from the store: workers with their measured GPUs and the memory that
// replicas already placed on them claim (book-kept).
import type { Store } from '../store/index.ts';
import type { ReplicaRecord } from '../store/replicas.ts';
import type { SchedulerWorker } from './scheduler.ts';

/** Replicas that hold (or are about to hold) GPU memory on their worker. */
export function holdsResources(r: ReplicaRecord): boolean {
  return r.worker_id !== null && r.state !== 'stopped' && r.state !== 'lost' && r.state !== 'pending';
}

export function schedulerWorkers(store: Store, live: ReplicaRecord[] = store.replicas.live()): SchedulerWorker[] {
  const booked = new Map<string, Record<string, number>>();
  const counts = new Map<string, number>();
  for (const r of live) {
    if (!holdsResources(r)) continue;
    const perGpu = booked.get(r.worker_id!) ?? {};
    for (const uuid of r.gpu_uuids) perGpu[uuid] = (perGpu[uuid] ?? 0) + r.claim_mib;
    booked.set(r.worker_id!, perGpu);
    counts.set(r.worker_id!, (counts.get(r.worker_id!) ?? 0) + 1);
  }
  return store.workers.list().map((w) => ({
    id: w.id,
    name: w.name,
    project_id: w.project_id,
    state: w.state,
    cordoned: w.cordoned,
    draining: w.draining,
    runtime: w.runtime,
    gpu_mode: w.runtime.gpu_mode,
    cuda_version: w.cuda_version,
    gpu_error: w.gpu_error,
    gpus: w.gpus,
    images: w.runtime.images,
    image_map: w.runtime.image_map,
    booked_mib: booked.get(w.id) ?? {},
    replicas: counts.get(w.id) ?? 0,
    gpu_hourly_cost_usd: w.gpu_hourly_cost_usd,
  }));
}

/** Replicas of one workload per worker, for spreading a workload across workers. */
export function replicasPerWorker(replicas: ReplicaRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replicas) if (holdsResources(r)) out[r.worker_id!] = (out[r.worker_id!] ?? 0) + 1;
  return out;
}

/**
 * The fleet as the scheduler sees it, cached for a short while: reading and checking every worker row for every
 * placement would cost more than the placement itself. A placement made through `book` is applied to the cache at
 * once, so the next decision sees it; anything else is at most `maxAgeMs` old.
 */
export class FleetView {
  private cached: SchedulerWorker[] | undefined;
  private builtAt = 0;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly maxAgeMs = 1000,
  ) {}

  workers(): SchedulerWorker[] {
    if (!this.cached || this.now() - this.builtAt > this.maxAgeMs) {
      this.cached = schedulerWorkers(this.store);
      this.builtAt = this.now();
    }
    return this.cached;
  }

  isDraining(workerId: string): boolean {
    return this.workers().find((w) => w.id === workerId)?.draining ?? false;
  }

  book(workerId: string, gpuUuids: string[], claimMib: number): void {
    const w = this.cached?.find((x) => x.id === workerId);
    if (!w) return;
    for (const uuid of gpuUuids) w.booked_mib[uuid] = (w.booked_mib[uuid] ?? 0) + claimMib;
    w.replicas += 1;
  }

  invalidate(): void {
    this.cached = undefined;
  }
}
