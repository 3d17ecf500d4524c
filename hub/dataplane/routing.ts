// Where requests for a workload can go: the workload and its ready replicas, read from the store and cached for a
// moment (the data plane's hot path never parses rows); replica and workload changes invalidate an entry at once.
import type { Store } from '../store/index.ts';
import type { WorkloadSpec } from '../../shared/spec/workload-spec.ts';
import type { WorkloadRecord } from '../store/workloads.ts';

export interface RoutableReplica {
  id: string;
  workerId: string;
  port: number;
  generation: number;
}

export interface RouteEntry {
  workload: Pick<WorkloadRecord, 'id' | 'project_id' | 'slug' | 'generation' | 'state' | 'desired_state' | 'deactivated_by' | 'placement'>;
  projectSlug: string;
  spec: WorkloadSpec;
  replicas: RoutableReplica[];
  /** The workload's LoRA adapters (what `model` may name besides the base model). */
  adapters: Array<{ name: string; source: string; created_at: string }>;
  at: number;
}

const CACHE_MS = 1000;

export class RoutingTable {
  private readonly entries = new Map<string, RouteEntry | null>();
  private readonly byWorkloadId = new Map<string, string>();

  constructor(private readonly deps: { store: Store; now: () => number }) {}

  get(projectSlug: string, workloadSlug: string): RouteEntry | undefined {
    const key = `${projectSlug}/${workloadSlug}`;
    const cached = this.entries.get(key);
    if (cached !== undefined && (cached === null ? false : this.deps.now() - cached.at < CACHE_MS)) return cached ?? undefined;
    const entry = this.load(projectSlug, workloadSlug);
    this.entries.set(key, entry);
    if (entry) this.byWorkloadId.set(entry.workload.id, key);
    return entry ?? undefined;
  }

  /** A replica or the workload changed: the next request reads it afresh. */
  invalidate(workloadId: string): void {
    const key = this.byWorkloadId.get(workloadId);
    if (key) this.entries.delete(key);
  }

  private load(projectSlug: string, workloadSlug: string): RouteEntry | null {
    const { store } = this.deps;
    const project = store.projects.getBySlug(projectSlug);
    const workload = project && store.workloads.get(project.id, workloadSlug);
    if (!project || !workload) return null;
    const replicas = store.replicas
      .forWorkload(workload.id)
      .filter((r) => r.state === 'ready' && r.desired === 'run' && r.worker_id !== null && r.port !== null)
      .map((r) => ({ id: r.id, workerId: r.worker_id!, port: r.port!, generation: r.generation }));
    return {
      workload: {
        id: workload.id,
        project_id: workload.project_id,
        slug: workload.slug,
        generation: workload.generation,
        state: workload.state,
        desired_state: workload.desired_state,
        deactivated_by: workload.deactivated_by,
        placement: workload.placement,
      },
      projectSlug,
      spec: store.workloads.fullSpec(workload.id)!,
      replicas,
      adapters: store.adapters.list(workload.id).map((a) => ({ name: a.name, source: a.source, created_at: a.created_at })),
      at: this.deps.now(),
    };
  }
}
