// What agents say about their replicas becomes observed state: states, ports, restarts, failures as events with
// their reason and last log lines. Differences from what the hub wants are repaired (a lost start is sent again,
// a replica the hub does not want is stopped). Replicas of a lost worker wait out the grace period, then move.
import type { Clock } from '../../shared/clock.ts';
import { isoTime } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { ReplicaReport } from '../../shared/protocol/replicas.ts';
import type { Store } from '../store/index.ts';
import type { ReplicaRecord, ReplicaState } from '../store/replicas.ts';
import type { WorkerState } from '../store/workers.ts';
import type { AgentSessions } from '../tunnel/session.ts';
import type { Reconciler } from './reconciler.ts';

export interface ReplicaReportsDeps {
  store: Store;
  sessions: AgentSessions;
  reconciler: Reconciler;
  clock: Clock;
  log: Logger;
  workerGraceS: number;
}

type ReadyListener = (replicaId: string) => void;
type MetricsListener = (replica: ReplicaRecord, metrics: Record<string, number>) => void;

/** Stopped replicas are kept this long as history, then forgotten. */
const STOPPED_RETENTION_MS = 24 * 3600_000;

export class ReplicaReports {
  private readonly readyListeners: ReadyListener[] = [];
  private readonly metricsListeners: MetricsListener[] = [];

  constructor(private readonly deps: ReplicaReportsDeps) {}

  /** Told when a replica reports ready (the data plane takes it back into rotation). */
  onReady(listener: ReadyListener): void {
    this.readyListeners.push(listener);
  }

  /** Told the backend metrics a replica's agent read (the autoscaler's "backend" metric). */
  onMetrics(listener: MetricsListener): void {
    this.metricsListeners.push(listener);
  }

  /** One replica.status message: a state change, with the last log lines when it failed. */
  onStatus(workerId: string, report: ReplicaReport, lastLog?: string[]): void {
    const replica = this.deps.store.replicas.get(report.replica_id);
    if (!replica || replica.worker_id !== workerId) {
      // Not a replica the hub placed there (an old one, or another hub's): it should not run.
      if (report.state !== 'stopped') this.stopUnknown(workerId, report);
      return;
    }
    this.apply(replica, report, lastLog);
    if (report.metrics) for (const l of this.metricsListeners) l(replica, report.metrics);
  }

  /** The full list an agent sends in each heartbeat (and its hello): observed state, and repair of differences. */
  onReplicaList(workerId: string, reports: ReplicaReport[]): void {
    const seen = new Set<string>();
    for (const report of reports) {
      seen.add(report.replica_id);
      this.onStatus(workerId, report);
    }
    for (const replica of this.deps.store.replicas.forWorker(workerId)) {
      if (seen.has(replica.id)) continue;
      if (replica.desired === 'run' && replica.state !== 'pending') this.deps.reconciler.resendStart(replica);
      // Asked to stop and no longer reported: it is gone.
      if (replica.desired === 'stop') this.finishStop(replica, 'stopped (no longer on its worker)');
    }
  }

  /** Liveness of a worker changed: its replicas go out of rotation at once, and come back with its reports. */
  onWorkerState(workerId: string, state: WorkerState): void {
    this.deps.reconciler.workerChanged();
    if (state === 'ready') return;
    const now = isoTime(this.deps.clock.now());
    for (const r of this.deps.store.replicas.forWorker(workerId)) {
      if (r.state === 'stopped' || r.state === 'lost' || r.state === 'unknown') continue;
      this.deps.store.replicas.observe(r.id, { state: 'unknown', unknown_since: now });
      this.deps.reconciler.enqueue(r.workload_id);
    }
  }

  /** The worker was deleted: its agent stops its replicas; the hub stops counting them. */
  onWorkerDeleted(workerId: string): void {
    this.deps.reconciler.workerChanged();
    for (const r of this.deps.store.replicas.forWorker(workerId)) {
      this.deps.store.replicas.markForStop(r.id);
      this.deps.store.replicas.observe(r.id, { state: 'stopped' });
      this.deps.reconciler.forget(r.id);
      this.deps.reconciler.enqueue(r.workload_id);
    }
  }

  /** Replicas unknown for longer than the grace period are lost: replacements are placed elsewhere. */
  expireGrace(): void {
    const { store, clock } = this.deps;
    const limit = clock.now() - this.deps.workerGraceS * 1000;
    for (const r of store.replicas.live()) {
      if (r.state !== 'unknown' || !r.unknown_since || Date.parse(r.unknown_since) > limit) continue;
      store.transaction(() => {
        store.replicas.observe(r.id, { state: 'lost' });
        store.replicas.markForStop(r.id);
        store.events.record({
          kind: 'replica.lost',
          projectId: r.project_id,
          workload: r.slug,
          workerId: r.worker_id,
          message: `replica ${r.id} is lost: its worker has been gone for ${this.deps.workerGraceS} s; a replacement is placed elsewhere`,
          data: { replica_id: r.id },
        });
      });
      this.deps.reconciler.enqueue(r.workload_id);
    }
    store.replicas.purgeStopped(isoTime(clock.now() - STOPPED_RETENTION_MS));
  }

  private apply(replica: ReplicaRecord, report: ReplicaReport, lastLog?: string[]): void {
    const { store } = this.deps;
    if (replica.state === 'stopped') return;
    if (report.state === 'stopped') return this.finishStop(replica, report.reason ?? 'stopped');
    if (replica.desired === 'stop') {
      // Still running although asked to stop (or adopted after it was replaced): ask again.
      if (replica.state === 'unknown' || replica.state === 'lost') store.replicas.observe(replica.id, { state: 'draining', unknown_since: null });
      this.deps.reconciler.stopWhenDrained(replica, 'no longer wanted');
      return;
    }
    const state: ReplicaState = report.state;
    const changed = state !== replica.state || report.restarts !== replica.restarts || report.port !== replica.port;
    if (!changed && replica.unknown_since === null) return;
    store.replicas.observe(replica.id, {
      state,
      port: report.port,
      runtime: report.runtime,
      container_id: report.container_id,
      pid: report.pid,
      restarts: report.restarts,
      last_error: report.reason ?? (state === 'ready' ? null : replica.last_error),
      unknown_since: null,
      ...(state === 'ready' && replica.state !== 'ready' ? { ready_at: isoTime(this.deps.clock.now()) } : {}),
    });
    this.recordTransition(replica, report, lastLog);
    if (state === 'ready') for (const l of this.readyListeners) l(replica.id);
    this.deps.reconciler.enqueue(replica.workload_id);
  }

  private recordTransition(replica: ReplicaRecord, report: ReplicaReport, lastLog?: string[]): void {
    const base = { projectId: replica.project_id, workload: replica.slug, workerId: replica.worker_id };
    const data = { replica_id: replica.id, state: report.state, restarts: report.restarts, ...(report.reason ? { reason: report.reason } : {}), ...(lastLog?.length ? { last_log: lastLog } : {}) };
    if (replica.state === 'unknown' && report.state === 'ready') {
      this.deps.store.events.record({ ...base, kind: 'replica.adopted', message: `replica ${replica.id} is back with its worker, still running`, data });
    } else if (report.state === 'failed' && replica.state !== 'failed') {
      const tail = lastLog?.length ? `; last log: ${lastLog.slice(-3).join(' | ')}` : '';
      this.deps.store.events.record({ ...base, kind: 'replica.failed', message: `replica ${replica.id} failed: ${report.reason ?? 'no reason given'}${tail}`.slice(0, 2000), data });
    } else if (report.state === 'ready' && replica.state !== 'ready') {
      this.deps.store.events.record({ ...base, kind: 'replica.ready', message: `replica ${replica.id} is ready on port ${report.port}${report.restarts ? ` (after ${report.restarts} restart${report.restarts === 1 ? '' : 's'})` : ''}`, data });
    } else if (report.restarts > replica.restarts) {
      this.deps.store.events.record({ ...base, kind: 'replica.restarted', message: `replica ${replica.id} restarted (restart ${report.restarts})${report.reason ? `: ${report.reason}` : ''}`, data });
    }
  }

  private finishStop(replica: ReplicaRecord, reason: string): void {
    const { store } = this.deps;
    store.replicas.observe(replica.id, { state: 'stopped', unknown_since: null });
    // Its GPU memory is free again for the next placement.
    this.deps.reconciler.workerChanged();
    if (replica.desired === 'run') store.replicas.markForStop(replica.id);
    this.deps.reconciler.forget(replica.id);
    store.events.record({
      kind: 'replica.stopped',
      projectId: replica.project_id,
      workload: replica.slug,
      workerId: replica.worker_id,
      message: `replica ${replica.id} stopped: ${reason}`,
      data: { replica_id: replica.id },
    });
    this.deps.reconciler.enqueue(replica.workload_id);
  }

  private stopUnknown(workerId: string, report: ReplicaReport): void {
    this.deps.log.info({ workerId, replicaId: report.replica_id }, 'stopping a replica the hub does not want');
    this.deps.reconciler.sendStop(report.replica_id, workerId, 'the hub does not know this replica (it was replaced or deleted while the worker was away)');
  }
}
