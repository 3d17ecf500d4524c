// The policy loop (DESIGN §7): once a tick it applies each workload's execution policy — the autoscaler's decision
// for autoscaling ones, the opening and closing of scheduled ones' time, the inactive timeout of fixed ones — writes
// what changed, records why as an event, and hands the workload to the reconciler.
import type { Clock, TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import { isoTime } from '../../shared/clock.ts';
import type { AutoscalingConfig } from '../../shared/spec/policies.ts';
import type { Store } from '../store/index.ts';
import type { WorkloadRecord } from '../store/workloads.ts';
import { decideScale, initialAutoscalerState, panicWindowS, stableWindowS, type AutoscalerState } from './autoscaler.ts';
import { desiredReplicas } from './desired-replicas.ts';
import type { Reconciler } from './reconciler.ts';
import type { SchedulerWorker } from './scheduler.ts';
import { estimateVram } from './vram.ts';
import type { WorkloadLoads } from './workload-loads.ts';

export interface PolicyLoopDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  reconciler: Reconciler;
  loads: WorkloadLoads;
  /** The time schedules are read at. */
  scheduleNow: () => number;
  tickMs: number;
}

interface ScalerMemory {
  state: AutoscalerState;
  /** The activation this memory belongs to: a reactivated workload starts afresh. */
  activatedAt: string;
}

export class PolicyLoop {
  private timer: TimerHandle | undefined;
  private readonly scalers = new Map<string, ScalerMemory>();
  private readonly scheduleOpen = new Map<string, boolean>();
  private readonly startedAt: number;
  /** Ready replicas of autoscaling workloads seen this tick (their backend metrics are kept, others forgotten). */
  private readyReplicaIds = new Set<string>();

  constructor(private readonly deps: PolicyLoopDeps) {
    this.startedAt = deps.clock.now();
  }

  start(): void {
    const loop = () => {
      try {
        this.tick();
      } catch (err) {
        this.deps.log.error({ err }, 'policy tick failed');
      }
      this.timer = this.deps.clock.setTimeout(loop, this.deps.tickMs);
      this.timer.unref?.();
    };
    loop();
  }

  stop(): void {
    if (this.timer) this.deps.clock.clearTimeout(this.timer);
  }

  /** A request (or a job) arrived for a workload that its inactive timeout deactivated: it runs again. */
  wake(workloadId: string): void {
    const { store } = this.deps;
    const w = store.workloads.getById(workloadId);
    if (!w || w.desired_state !== 'inactive' || w.deactivated_by !== 'timeout') return;
    store.transaction(() => {
      store.workloads.activate(w.id, 'creating');
      store.events.record({
        kind: 'workload.woken',
        projectId: w.project_id,
        workload: w.slug,
        message: `workload ${w.slug} woken by a request (its inactive timeout had deactivated it)`,
      });
    });
    this.deps.reconciler.enqueue(w.id);
  }

  tick(): void {
    const { store, loads } = this.deps;
    const workloads = store.workloads.list();
    const queued = new Set(store.jobs.workloadsWithQueued());
    for (const w of workloads) {
      // Queued async jobs are activity: they keep a workload from idling out and wake one that did.
      if (queued.has(w.id)) loads.of(w.id).activity();
      if (w.desired_state === 'inactive') {
        if (queued.has(w.id)) this.wake(w.id);
        continue;
      }
      const spec = w.spec;
      if (spec.execution_policy === 'autoscaling') this.autoscale(w, spec.execution_policy_config, queued.has(w.id));
      else if (spec.execution_policy === 'scheduled') this.followSchedule(w);
      else if (spec.execution_policy_config.inactive_timeout_s !== undefined) this.checkInactive(w, spec.execution_policy_config.inactive_timeout_s);
    }
    loads.retain(new Set(workloads.map((w) => w.id)), this.readyReplicaIds);
    this.readyReplicaIds = new Set();
    for (const id of this.scalers.keys()) if (!workloads.some((w) => w.id === id)) this.scalers.delete(id);
    this.deps.reconciler.checkDrains();
  }

  /** Idle timers count from the later of the last activity and the activation (or this hub's start). */
  private idleSince(w: WorkloadRecord): number {
    const last = this.deps.loads.peek(w.id)?.lastActivityMs ?? 0;
    return Math.max(last, Date.parse(w.activated_at), this.startedAt);
  }

  private checkInactive(w: WorkloadRecord, timeoutS: number): void {
    const { store, clock } = this.deps;
    if ((this.deps.loads.peek(w.id)?.inFlight ?? 0) > 0) return;
    const idleMs = clock.now() - this.idleSince(w);
    if (idleMs < timeoutS * 1000) return;
    store.transaction(() => {
      store.workloads.deactivate(w.id, 'timeout');
      store.events.record({
        kind: 'workload.deactivated',
        projectId: w.project_id,
        workload: w.slug,
        message: `workload ${w.slug} deactivated: no request for ${Math.round(idleMs / 1000)} s (inactive_timeout_s ${timeoutS}); the next request wakes it`,
        data: { by: 'timeout', idle_s: Math.round(idleMs / 1000) },
      });
    });
    this.deps.reconciler.enqueue(w.id);
  }

  private followSchedule(w: WorkloadRecord): void {
    const now = this.deps.scheduleNow();
    const schedule = desiredReplicas(w, now).schedule!;
    const was = this.scheduleOpen.get(w.id);
    this.scheduleOpen.set(w.id, schedule.open);
    if (was === schedule.open) return;
    // The first look after a start only settles the state; events mark real openings and closings.
    if (was !== undefined) {
      const when = schedule.open
        ? `until ${schedule.closesAtMs === null ? 'further notice' : isoTime(schedule.closesAtMs)}`
        : `next start ${schedule.opensAtMs === null ? 'none' : isoTime(schedule.opensAtMs)}`;
      this.deps.store.events.record({
        kind: schedule.open ? 'workload.schedule_opened' : 'workload.schedule_closed',
        projectId: w.project_id,
        workload: w.slug,
        message: `workload ${w.slug}: its schedule ${schedule.open ? 'opened' : 'closed'} (${when})`,
        data: { open: schedule.open, opens_at: schedule.opensAtMs === null ? null : isoTime(schedule.opensAtMs), closes_at: schedule.closesAtMs === null ? null : isoTime(schedule.closesAtMs) },
      });
    }
    this.deps.reconciler.enqueue(w.id);
  }

  private autoscale(w: WorkloadRecord, config: AutoscalingConfig, jobsQueued: boolean): void {
    const { store, clock, loads } = this.deps;
    let memory = this.scalers.get(w.id);
    if (!memory || memory.activatedAt !== w.activated_at) this.scalers.set(w.id, (memory = { state: initialAutoscalerState(), activatedAt: w.activated_at }));
    const window = loads.of(w.id);
    const current = desiredReplicas(w, clock.now()).count;
    const readyIds = store.replicas
      .forWorkload(w.id)
      .filter((r) => r.desired === 'run' && r.state === 'ready')
      .map((r) => r.id);
    const ready = readyIds.length;
    for (const id of readyIds) this.readyReplicaIds.add(id);
    if (config.metric === 'backend' && config.backend_metric) {
      const sum = loads.backendSum(config.backend_metric, readyIds);
      if (sum !== null) window.sampleBackend(sum);
    }
    const { hourlyCost, placeable } = this.capacity(w, config);
    const decision = decideScale({
      nowMs: clock.now(),
      config,
      current,
      ready,
      stable: window.averages(stableWindowS),
      panic: window.averages(panicWindowS),
      // A queued job is demand like a request waiting for a cold start.
      inFlight: window.inFlight + (jobsQueued ? 1 : 0),
      lastActivityMs: window.lastActivityMs,
      sinceMs: Math.max(Date.parse(w.activated_at), this.startedAt),
      replicaHourlyCostUsd: hourlyCost,
      placeable,
      state: memory.state,
    });
    memory.state = decision.state;
    if (decision.desired === current && w.scale !== null) return;
    store.transaction(() => {
      store.workloads.setScale(w.id, decision.desired);
      if (decision.desired !== current && decision.reason) {
        store.events.record({
          kind: 'workload.scaled',
          projectId: w.project_id,
          workload: w.slug,
          message: `workload ${w.slug}: ${decision.reason}`,
          data: { from: current, to: decision.desired, panic: decision.panic, ...decision.numbers },
        });
      }
    });
    if (decision.desired !== current) this.deps.reconciler.enqueue(w.id);
  }

  /**
   * What one more replica costs per hour (its GPU count × the dearest eligible worker's price, so the cap is never
   * passed) and how many replicas the eligible workers could hold.
   */
  private capacity(w: WorkloadRecord, config: AutoscalingConfig): { hourlyCost: number; placeable: number } {
    const gpus = estimateVram(w.spec).gpus;
    const eligible = this.deps.reconciler.fleet.workers().filter((worker) => eligibleFor(worker, w.project_id, config));
    const price = Math.max(0, ...eligible.map((worker) => worker.gpu_hourly_cost_usd ?? 0));
    const placeable = config.workers?.source === 'private' ? eligible.reduce((n, worker) => n + Math.max(1, Math.floor(worker.gpus.length / Math.max(1, gpus))), 0) : Infinity;
    return { hourlyCost: gpus * price, placeable };
  }
}

/** Whether a worker may take this workload's replicas by its autoscaling config (the scheduler checks the rest). */
function eligibleFor(worker: SchedulerWorker, projectId: string, config: AutoscalingConfig): boolean {
  if (worker.project_id !== null && worker.project_id !== projectId) return false;
  const placed = config.workers;
  if (!placed) return true;
  if (placed.source === 'private') return placed.private_worker_ids.includes(worker.id);
  return worker.gpus.some((g) => g.name !== null && placed.cloud_pool.gpu_pool.includes(g.name));
}
