// The replicas of this agent: starts and stops supervisors on the hub's requests, adopts what an earlier agent left
// running, answers log reads, and lists every replica for the heartbeat.
import type { Logger } from '../../shared/logger.ts';
import type { AgentMessage } from '../../shared/protocol/control.ts';
import type { LogsRead, ReplicaLaunch, ReplicaReport, ReplicaStart, ReplicaStop } from '../../shared/protocol/replicas.ts';
import type { AgentConfig } from '../config.ts';
import type { RecoveredReplica, Runtime } from '../runtime/types.ts';
import { ReplicaSupervisor } from './supervisor.ts';
import { MetricScraper } from './metric-scraper.ts';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

const restartsSchema = z.object({ restarts: z.number().int().nonnegative() });

export interface ManagerDeps {
  runtime: Runtime;
  /** Where the agent keeps small per-replica state (restart counts). */
  stateDir: string;
  config: Pick<AgentConfig, 'imageMap' | 'processMap' | 'replicaStartTimeoutS' | 'hfCacheDir'>;
  log: Logger;
  send: (msg: AgentMessage) => boolean;
}

/** Progress lines of a pull are sent at most this often per replica. */
const PROGRESS_EVERY_MS = 1000;
const LOG_CHUNK_LINES = 500;
/** How often leftovers of this worker that no supervisor owns are removed. */
const REAP_EVERY_MS = 5 * 60_000;

export class ReplicaManager {
  private readonly supervisors = new Map<string, ReplicaSupervisor>();
  private readonly usedPorts = new Set<number>();
  private readonly logReads = new Map<string, AbortController>();
  private readonly lastProgress = new Map<string, number>();
  private workerId = '';
  private readonly reapTimer: NodeJS.Timeout;
  private readonly scraper = new MetricScraper(() =>
    [...this.supervisors.values()].flatMap((s) => (s.report().state === 'ready' && s.currentHandle ? [{ launch: s.launch, port: s.currentHandle.port }] : [])),
  );

  constructor(private readonly deps: ManagerDeps) {
    this.reapTimer = setInterval(() => void this.reap(), REAP_EVERY_MS);
    this.reapTimer.unref();
  }

  /** Adopts the replicas an earlier agent of this worker left behind (before the hello, so the hub adopts them too). */
  async recover(workerId: string): Promise<void> {
    this.workerId = workerId;
    const found = await this.deps.runtime.recover(workerId).catch((err: Error) => {
      this.deps.log.warn({ err: err.message }, 'could not list replicas left by an earlier agent');
      return [];
    });
    for (const r of found) {
      const supervisor = this.supervise(r.launch, r, this.savedRestarts(r.launch.replica_id));
      if (r.running) await supervisor.probeOnce();
      supervisor.start();
      this.deps.log.info({ replicaId: r.launch.replica_id, running: r.running }, 'adopted a replica from an earlier agent');
    }
  }

  setWorkerId(workerId: string): void {
    this.workerId = workerId;
  }

  /** Where a relayed request for this replica goes: its backend port, when it runs here. */
  portOf(replicaId: string): { port: number } | { error: string } {
    const supervisor = this.supervisors.get(replicaId);
    const handle = supervisor?.currentHandle;
    if (!supervisor || !handle) return { error: `replica ${replicaId} is not running on this worker` };
    const state = supervisor.report().state;
    if (state !== 'ready' && state !== 'starting') return { error: `replica ${replicaId} is ${state}` };
    return { port: handle.port };
  }

  reports(): ReplicaReport[] {
    return [...this.supervisors.values()].map((s) => {
      const metrics = this.scraper.metricsOf(s.id);
      return metrics ? { ...s.report(), metrics } : s.report();
    });
  }

  onStart(msg: ReplicaStart): void {
    const id = msg.replica.replica_id;
    // Starting twice is harmless: the hub repeats a start it thinks was lost.
    if (!this.supervisors.has(id)) {
      const supervisor = this.supervise(msg.replica);
      this.deps.send({ type: 'replica.status', replica: supervisor.report() });
      supervisor.start();
    }
    this.reply(msg.id, true);
  }

  onStop(msg: ReplicaStop): void {
    const supervisor = this.supervisors.get(msg.replica_id);
    this.reply(msg.id, true);
    if (!supervisor) {
      // Not ours (any more): say so, so the hub can close its books on it.
      this.deps.send({ type: 'replica.status', replica: { replica_id: msg.replica_id, generation: 1, state: 'stopped', port: null, runtime: this.deps.runtime.kind, container_id: null, pid: null, restarts: 0, reason: 'not running on this worker' } });
      return;
    }
    void supervisor.stop(msg.grace_ms, msg.reason).finally(() => {
      this.supervisors.delete(msg.replica_id);
      this.scraper.forget(msg.replica_id);
      rmSync(this.stateFile(msg.replica_id), { force: true });
    });
  }

  async onLogsRead(msg: LogsRead): Promise<void> {
    const supervisor = this.supervisors.get(msg.replica_id);
    // A replica between runs (or just stopped) still has its log: both runtimes find it by the replica id.
    const handle = supervisor?.currentHandle ?? { replicaId: msg.replica_id, runtime: this.deps.runtime.kind, containerId: null, pid: null, port: 0 };
    const abort = new AbortController();
    this.logReads.set(msg.id, abort);
    try {
      for await (const lines of this.deps.runtime.logs(handle, { tail: msg.tail, since: msg.since, follow: msg.follow, signal: abort.signal })) {
        for (let i = 0; i < lines.length; i += LOG_CHUNK_LINES) {
          if (abort.signal.aborted) break;
          this.deps.send({ type: 'logs.chunk', reply_to: msg.id, lines: lines.slice(i, i + LOG_CHUNK_LINES).map((l) => l.slice(0, 16_384)) });
        }
        if (abort.signal.aborted) break;
      }
      this.deps.send({ type: 'logs.end', reply_to: msg.id });
    } catch (err) {
      this.deps.send({ type: 'logs.end', reply_to: msg.id, error: { code: 'read_failed', message: err instanceof Error ? err.message : String(err) } });
    } finally {
      this.logReads.delete(msg.id);
    }
  }

  onLogsCancel(id: string): void {
    this.logReads.get(id)?.abort();
  }

  /** The worker was deleted on the hub: its replicas go too. */
  async stopAll(reason: string): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.stop(10_000, reason)));
    for (const id of this.supervisors.keys()) rmSync(this.stateFile(id), { force: true });
    this.supervisors.clear();
  }

  /** The agent is going away: replicas keep running for the next agent to adopt. */
  async detachAll(): Promise<void> {
    clearInterval(this.reapTimer);
    this.scraper.close();
    for (const abort of this.logReads.values()) abort.abort();
    await Promise.all([...this.supervisors.values()].map((s) => s.detach()));
    this.deps.runtime.close?.();
  }

  /** Removes what this worker's runtime holds but nobody supervises (containers left by a crash mid-stop). */
  async reap(): Promise<void> {
    if (!this.workerId || !this.deps.runtime.reap) return;
    const removed = await this.deps.runtime.reap(this.workerId, new Set(this.supervisors.keys())).catch((err: Error) => {
      this.deps.log.warn({ err: err.message }, 'reaping leftover replicas failed');
      return [];
    });
    if (removed.length > 0) this.deps.log.info({ removed }, 'removed leftover replicas nobody supervises');
  }

  private stateFile(replicaId: string): string {
    return join(this.deps.stateDir, `${replicaId}.json`);
  }

  private savedRestarts(replicaId: string): number {
    try {
      return restartsSchema.parse(JSON.parse(readFileSync(this.stateFile(replicaId), 'utf8'))).restarts;
    } catch {
      return 0;
    }
  }

  private supervise(launch: ReplicaLaunch, recovered?: RecoveredReplica, restarts = 0): ReplicaSupervisor {
    const supervisor = new ReplicaSupervisor(
      launch,
      {
        runtime: this.deps.runtime,
        workerId: this.workerId,
        config: this.deps.config,
        log: this.deps.log,
        usedPorts: this.usedPorts,
        report: (replica, lastLog) => {
          this.deps.send({ type: 'replica.status', replica, ...(lastLog && lastLog.length ? { last_log: lastLog.map((l) => l.slice(0, 4000)).slice(-50) } : {}) });
        },
        pullProgress: (replicaId, image, p) => {
          const now = Date.now();
          if (now - (this.lastProgress.get(replicaId) ?? 0) < PROGRESS_EVERY_MS && p.percent !== 100) return;
          this.lastProgress.set(replicaId, now);
          this.deps.send({ type: 'image.pull.progress', replica_id: replicaId, image: image.slice(0, 512), status: p.status.slice(0, 500), percent: p.percent });
        },
        saveRestarts: (replicaId, count) => {
          mkdirSync(this.deps.stateDir, { recursive: true, mode: 0o700 });
          writeFileSync(this.stateFile(replicaId), JSON.stringify({ restarts: count }), { mode: 0o600 });
        },
      },
      recovered,
      restarts,
    );
    this.supervisors.set(launch.replica_id, supervisor);
    return supervisor;
  }

  private reply(id: string, ok: boolean, error?: { code: string; message: string }): void {
    this.deps.send({ type: 'reply', reply_to: id, ok, ...(error ? { error } : {}) });
  }
}
