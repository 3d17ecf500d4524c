// The reconciler: level-triggered, per workload, over a deduplicating queue. It reads desired and observed state,
// creates, places, starts and stops replicas, and never trusts a message alone: a periodic resync repairs the rest.
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { newId } from '../../shared/secrets.ts';
import type { Store } from '../store/index.ts';
import type { ReplicaRecord } from '../store/replicas.ts';
import type { WorkloadRecord } from '../store/workloads.ts';
import type { AgentSessions } from '../tunnel/session.ts';
import { desiredReplicas } from './desired-replicas.ts';
import { KeyedQueue } from './work-queue.ts';
import { planReplicas } from './replica-plan.ts';
import { place } from './scheduler.ts';
import { estimateVram } from './vram.ts';
import { FleetView, replicasPerWorker } from './snapshot.ts';
import { FAILING_AFTER_RESTARTS, nextWorkloadState } from './workload-state.ts';

export interface ReconcilerConfig {
  restartBackoffBaseMs: number;
  placementStrategy: 'spread' | 'binpack';
  /** How often every workload is looked at again, whatever happened. */
  resyncMs: number;
  /** Grace given to a replica to stop before it is killed. */
  stopGraceMs: number;
  /** Fewer replicas ready than desired for this long makes an active workload degraded. */
  degradedAfterMs: number;
  /** A replica taken out with requests in flight gets this long for them to finish before it is told to stop. */
  drainTimeoutMs: number;
}

export interface ReconcilerDeps {
  store: Store;
  sessions: AgentSessions;
  clock: Clock;
  log: Logger;
  config: ReconcilerConfig;
  /** Called on every resync tick, before the workloads are queued (lost-worker grace, purges). */
  onResync?: () => void;
  /** Called whenever a workload is reconciled: its replicas or spec may have changed (routing caches drop it). */
  onWorkloadChanged?: (workloadId: string) => void;
  /** Requests (and jobs) in flight on a replica: one that still has some is drained, not cut. */
  inflight?: (replicaId: string) => number;
  /** The time schedules are read at (the hub's clock, shifted by IK_SCHEDULE_CLOCK_OFFSET_S for tests). */
  scheduleNow?: () => number;
}

/** A start that got no report back within this long is sent again. */
export const START_RESEND_MS = 15_000;
const STOP_RESEND_MS = 15_000;

export class Reconciler {
  readonly queue: KeyedQueue;
  private timer: TimerHandle | undefined;
  private readonly startSentAt = new Map<string, number>();
  private readonly stopSentAt = new Map<string, number>();
  /** Since when each workload has had fewer ready replicas than desired. */
  private readonly shortfallSince = new Map<string, number>();
  /** Replicas taken out of rotation whose stop waits for their requests in flight: since when, and whose. */
  private readonly drainingSince = new Map<string, { at: number; workloadId: string }>();
  readonly fleet: FleetView;

  constructor(private readonly deps: ReconcilerDeps) {
    this.queue = new KeyedQueue((id) => this.reconcile(id), deps.log);
    this.fleet = new FleetView(deps.store, () => deps.clock.now());
  }

  start(): void {
    this.enqueueAll();
    this.schedule();
  }

  stop(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
    this.queue.stop();
  }

  enqueue(workloadId: string): void {
    this.queue.add(workloadId);
  }

  /** A worker or a replica changed (state, flags, a replica stopped): the next placement reads the fleet afresh. */
  workerChanged(): void {
    this.fleet.invalidate();
  }

  enqueueAll(): void {
    const { store } = this.deps;
    for (const w of store.workloads.list()) this.queue.add(w.id);
    for (const id of store.replicas.orphanedWorkloadIds()) this.queue.add(id);
  }

  /** Sends (again) the start of a replica the hub wants on a worker that does not report it. */
  resendStart(replica: ReplicaRecord): void {
    const sent = this.startSentAt.get(replica.id) ?? 0;
    if (this.deps.clock.now() - sent < START_RESEND_MS) return;
    const workload = this.deps.store.workloads.getById(replica.workload_id);
    // Only the current generation can be started again: the spec of an older one is gone.
    if (!workload || workload.generation !== replica.generation || replica.desired !== 'run') return;
    this.sendStart(workload, replica);
  }

  /** Asks a worker's agent to stop a replica (again, if the last request may have been lost). */
  sendStop(replicaId: string, workerId: string | null, reason: string): void {
    if (!workerId) return;
    const sent = this.stopSentAt.get(replicaId) ?? 0;
    if (this.deps.clock.now() - sent < STOP_RESEND_MS) return;
    const session = this.deps.sessions.get(workerId);
    if (!session) return;
    this.stopSentAt.set(replicaId, this.deps.clock.now());
    session.send({ type: 'replica.stop', id: newId('evt'), replica_id: replicaId, reason: reason.slice(0, 500), grace_ms: this.deps.config.stopGraceMs });
  }

  forget(replicaId: string): void {
    this.startSentAt.delete(replicaId);
    this.stopSentAt.delete(replicaId);
    this.drainingSince.delete(replicaId);
  }

  /** Queues the workloads whose draining replicas have finished their requests (or ran out of time). */
  checkDrains(): void {
    const now = this.deps.clock.now();
    for (const [replicaId, d] of this.drainingSince) {
      if ((this.deps.inflight?.(replicaId) ?? 0) === 0 || now - d.at >= this.deps.config.drainTimeoutMs) this.queue.add(d.workloadId);
    }
  }

  private schedule(): void {
    this.timer = this.deps.clock.setTimeout(() => {
      try {
        this.deps.onResync?.();
        this.enqueueAll();
      } finally {
        this.schedule();
      }
    }, this.deps.config.resyncMs);
    this.timer.unref?.();
  }

  private async reconcile(workloadId: string): Promise<void> {
    const { store } = this.deps;
    this.deps.onWorkloadChanged?.(workloadId);
    const workload = store.workloads.getById(workloadId);
    const replicas = store.replicas.forWorkload(workloadId);
    if (!workload) {
      for (const r of replicas) this.retire(r, 'its workload was deleted');
      if (replicas.length > 0) this.fleet.invalidate();
      return;
    }
    const wanted = replicas.filter((r) => r.desired === 'run' && r.state !== 'lost');
    const wants = desiredReplicas(workload, this.deps.scheduleNow?.() ?? this.deps.clock.now());
    const desired = wants.count;
    // Replicas on a draining worker are moved like an old generation: replaced elsewhere, then stopped.
    const evacuating = (r: ReplicaRecord) => r.worker_id !== null && this.fleet.isDraining(r.worker_id);
    const plan = planReplicas({
      desired,
      generation: workload.generation,
      replicas: wanted.map((r) => (evacuating(r) ? { ...r, generation: 0 } : r)),
    });

    if (plan.create > 0) {
      store.transaction(() => {
        for (let i = 0; i < plan.create; i++) {
          store.replicas.insert({ workloadId: workload.id, projectId: workload.project_id, slug: workload.slug, generation: workload.generation });
        }
      });
    }
    for (const id of plan.stop) {
      const r = replicas.find((x) => x.id === id)!;
      const why = evacuating(r) ? `moved off draining worker ${r.worker_id}` : r.generation === workload.generation ? `scaled down to ${desired}` : `replaced by generation ${workload.generation}`;
      this.retire(r, why);
    }
    for (const r of replicas) if (r.desired === 'stop' && r.state !== 'stopped') this.retire(r, 'no longer wanted');
    // Stopping frees GPU memory: the next placement must not count it as booked.
    if (plan.stop.length > 0) this.fleet.invalidate();

    // Reread only when something changed: a steady pass reads each workload's replicas once.
    const now = plan.create > 0 || plan.stop.length > 0 ? store.replicas.forWorkload(workload.id) : replicas;
    const placement = this.placePending(workload, now);
    const outsideSchedule = wants.schedule !== undefined && !wants.schedule.open;
    this.updateWorkload(workload, placement, desired, outsideSchedule, placement === null && now.every((r) => r.state !== 'pending') ? now : undefined);
  }

  /** Places every pending replica of the workload; returns why one is still pending, or null. */
  private placePending(workload: WorkloadRecord, replicas: ReplicaRecord[]): string | null {
    const { store } = this.deps;
    const pending = replicas.filter((r) => r.desired === 'run' && r.state === 'pending');
    if (pending.length === 0) return null;
    const spec = store.workloads.fullSpec(workload.id)!;
    // The estimate parses the model id and the command: once per workload, not once per replica.
    const estimate = estimateVram(spec);
    for (const replica of pending) {
      const result = place(
        {
          project_id: workload.project_id,
          spec,
          estimate,
          workload_replicas: replicasPerWorker(store.replicas.forWorkload(workload.id)),
          strategy: this.deps.config.placementStrategy,
        },
        this.fleet.workers(),
      );
      if (!result.ok) return result.explanation;
      if (!store.replicas.assign(replica.id, result.worker_id, result.gpu_uuids, result.claim_mib_per_gpu)) continue;
      this.fleet.book(result.worker_id, result.gpu_uuids, result.claim_mib_per_gpu);
      const placed = store.replicas.get(replica.id)!;
      store.events.record({
        kind: 'replica.placed',
        projectId: workload.project_id,
        workload: workload.slug,
        workerId: result.worker_id,
        message: `replica ${replica.id} placed on ${result.worker_id} (GPUs ${result.gpu_uuids.join(', ') || 'none'})`,
        data: { replica_id: replica.id, gpu_uuids: result.gpu_uuids, claim_mib_per_gpu: result.claim_mib_per_gpu },
      });
      this.sendStart(workload, placed);
    }
    return null;
  }

  private sendStart(workload: WorkloadRecord, replica: ReplicaRecord): void {
    const session = replica.worker_id ? this.deps.sessions.get(replica.worker_id) : undefined;
    if (!session) return;
    const project = this.deps.store.projects.getById(workload.project_id);
    const spec = this.deps.store.workloads.fullSpec(workload.id);
    if (!project || !spec) return;
    this.startSentAt.set(replica.id, this.deps.clock.now());
    session.send({
      type: 'replica.start',
      id: newId('evt'),
      replica: {
        replica_id: replica.id,
        project: project.slug,
        workload: workload.slug,
        generation: replica.generation,
        spec,
        gpu_uuids: replica.gpu_uuids,
        restart_backoff_base_ms: this.deps.config.restartBackoffBaseMs,
      },
    });
  }

  /** Takes a replica out: never placed → stopped at once; on a worker → draining until the agent says stopped. */
  private retire(r: ReplicaRecord, reason: string): void {
    const { store } = this.deps;
    if (r.desired !== 'stop') store.replicas.markForStop(r.id);
    if (r.worker_id === null || r.state === 'lost') {
      store.replicas.observe(r.id, { state: 'stopped' });
      this.forget(r.id);
      return;
    }
    if (r.state !== 'draining' && r.state !== 'unknown') store.replicas.observe(r.id, { state: 'draining' });
    this.stopWhenDrained(r, reason);
  }

  /**
   * Tells a replica's agent to stop it once its requests in flight are done (or the drain timeout passed): it is out
   * of rotation already (routing skips replicas the hub no longer wants), so nothing new arrives meanwhile.
   */
  stopWhenDrained(r: Pick<ReplicaRecord, 'id' | 'worker_id' | 'workload_id'>, reason: string): void {
    const now = this.deps.clock.now();
    let drain = this.drainingSince.get(r.id);
    if (!drain) this.drainingSince.set(r.id, (drain = { at: now, workloadId: r.workload_id }));
    const busy = this.deps.inflight?.(r.id) ?? 0;
    if (busy > 0 && now - drain.at < this.deps.config.drainTimeoutMs) return;
    this.sendStop(r.id, r.worker_id, busy > 0 ? `${reason} (drain timeout: ${busy} request${busy === 1 ? '' : 's'} cut)` : reason);
  }

  private updateWorkload(workload: WorkloadRecord, placement: string | null, desired: number, outsideSchedule: boolean, known?: ReplicaRecord[]): void {
    const { store } = this.deps;
    const replicas = (known ?? store.replicas.forWorkload(workload.id)).filter((r) => r.desired === 'run');
    const ready = replicas.filter((r) => r.state === 'ready').length;
    const now = this.deps.clock.now();
    if (ready >= desired) this.shortfallSince.delete(workload.id);
    else if (!this.shortfallSince.has(workload.id)) this.shortfallSince.set(workload.id, now);
    const current = replicas.filter((r) => r.generation === workload.generation);
    const state = nextWorkloadState({
      state: workload.state,
      desiredState: workload.desired_state,
      outsideSchedule,
      desired,
      ready,
      allFailing: current.length > 0 && current.every((r) => r.state === 'failed' && r.restarts >= FAILING_AFTER_RESTARTS),
      shortfallMs: now - (this.shortfallSince.get(workload.id) ?? now),
      degradedAfterMs: this.deps.config.degradedAfterMs,
    });
    if (placement !== workload.placement) {
      store.workloads.setPlacement(workload.id, placement);
      if (placement) {
        store.events.record({ kind: 'workload.pending', projectId: workload.project_id, workload: workload.slug, message: `a replica of ${workload.slug} is pending: ${placement}` });
      }
    }
    if (state !== workload.state) {
      store.workloads.setState(workload.id, state);
      store.events.record({
        kind: `workload.${state}`,
        projectId: workload.project_id,
        workload: workload.slug,
        message: `workload ${workload.slug} is ${state} (was ${workload.state})`,
        data: { from: workload.state, to: state },
      });
    }
  }
}
