// The async-job dispatcher: claims queued jobs oldest first per workload, runs each on a ready replica through the
// same tunnel relay as sync requests (a bounded number per replica), stores the result or requeues the job with
// backoff when its replica failed, and purges finished jobs after the retention period.
import type { IncomingMessage } from 'node:http';
import { isoTime, type Clock, type TimerHandle } from '../../shared/clock.ts';
import type { Logger } from '../../shared/logger.ts';
import type { Store } from '../store/index.ts';
import type { WorkloadLoads } from '../control/workload-loads.ts';
import type { ClaimedJob } from '../store/jobs.ts';
import type { AgentSession, AgentSessions } from '../tunnel/session.ts';
import type { Balancer } from './balancer.ts';
import { decideRun, finalError, retryDelayMs, type RunOutcome } from './jobs-results.ts';
import { attemptRelay, forwardedHeaders, type StreamPools } from './relay.ts';
import type { RoutableReplica } from './routing.ts';
import { upstreamPath } from './task-routes.ts';

export interface JobDispatcherConfig {
  concurrencyPerReplica: number;
  retentionMs: number;
  requestTimeoutMs: number;
  maxStreamsPerAgent: number;
  /** Largest backend answer a job keeps. */
  maxResultBytes: number;
}

export interface JobDispatcherDeps {
  store: Store;
  sessions: AgentSessions;
  /** The data plane's balancer: jobs count as load on a replica, like sync requests, and share its ejections. */
  balancer: Balancer;
  /** The data plane's keep-alive streams per replica. */
  pools: StreamPools;
  clock: Clock;
  log: Logger;
  config: JobDispatcherConfig;
  /** Where a running job counts as load for the autoscaler and the idle timers (as a sync request does). */
  loads?: WorkloadLoads;
}

export const DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024;
/** Queued jobs are looked at this often even when nothing kicks the dispatcher (retries coming due, replicas back). */
const TICK_MS = 500;
const PURGE_EVERY_MS = 10 * 60_000;
/** A replica whose relay failed sits out this long, unless it reports ready sooner (as for sync requests). */
const EJECT_MS = 30_000;

interface Run {
  attempt: number;
  abort: (() => void) | undefined;
}

export class JobDispatcher {
  private readonly running = new Map<string, Run>();
  private readonly perReplica = new Map<string, number>();
  private tickTimer: TimerHandle | undefined;
  private kickTimer: TimerHandle | undefined;
  private purgeTimer: TimerHandle | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly deps: JobDispatcherDeps) {}

  /** Requeues the jobs the previous hub process left running, purges old ones, and starts dispatching. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const { requeued, failed } = this.deps.store.jobs.requeueInterrupted({
      message: 'the hub stopped while the job ran, and it had no attempts left',
      type: 'api_error',
      code: 'hub_restarted',
    });
    if (requeued + failed > 0) this.deps.log.info({ requeued, failed }, 'jobs interrupted by a hub restart');
    this.purge();
    this.tick();
  }

  /** Stops dispatching; runs in flight are aborted and their jobs queued again without counting the attempt. */
  stop(): void {
    this.stopped = true;
    for (const t of [this.tickTimer, this.kickTimer, this.purgeTimer]) if (t) this.deps.clock.clearTimeout(t);
    for (const [id, run] of this.running) {
      run.abort?.();
      this.deps.store.jobs.release(id, run.attempt);
    }
    this.running.clear();
  }

  /** Something changed (a job was submitted or finished, a replica became ready): dispatch soon. */
  kick(): void {
    if (!this.started || this.stopped || this.kickTimer) return;
    this.kickTimer = this.deps.clock.setTimeout(() => {
      this.kickTimer = undefined;
      this.dispatch();
    }, 0);
  }

  /** Jobs running now, per replica (tests, metrics). */
  inflight(): ReadonlyMap<string, number> {
    return this.perReplica;
  }

  private tick(): void {
    if (this.stopped) return;
    this.dispatch();
    this.tickTimer = this.deps.clock.setTimeout(() => this.tick(), TICK_MS);
    this.tickTimer.unref?.();
  }

  /** Fills every workload's free replica slots with its oldest due jobs. */
  private dispatch(): void {
    if (this.stopped) return;
    const { store, balancer, clock, log } = this.deps;
    let workloads: string[];
    try {
      workloads = store.jobs.workloadsWithQueued();
    } catch (err) {
      log.error({ err }, 'reading the job queue failed');
      return;
    }
    for (const workloadId of workloads) {
      const replicas = this.readyReplicas(workloadId);
      for (;;) {
        const free = replicas.filter((r) => this.load(r.id) < this.deps.config.concurrencyPerReplica && this.sessionFor(r) !== undefined);
        const replica = balancer.pick(free, { exclude: new Set() }, clock.now());
        if (!replica) break;
        const job = store.jobs.claim(workloadId, replica.id);
        if (!job) break;
        void this.run(job, replica, this.sessionFor(replica)!);
      }
    }
  }

  /** Ready replicas of a workload whose worker is connected. A workload with none leaves its jobs queued. */
  private readyReplicas(workloadId: string): RoutableReplica[] {
    return this.deps.store.replicas
      .forWorkload(workloadId)
      .filter((r) => r.state === 'ready' && r.desired === 'run' && r.worker_id !== null && r.port !== null)
      .map((r) => ({ id: r.id, workerId: r.worker_id!, port: r.port!, generation: r.generation }));
  }

  private sessionFor(replica: RoutableReplica): AgentSession | undefined {
    const session = this.deps.sessions.get(replica.workerId);
    return session && session.openStreams < this.deps.config.maxStreamsPerAgent ? session : undefined;
  }

  private load(replicaId: string): number {
    return this.perReplica.get(replicaId) ?? 0;
  }

  private async run(job: ClaimedJob, replica: RoutableReplica, session: AgentSession): Promise<void> {
    const run: Run = { attempt: job.attempts, abort: undefined };
    this.running.set(job.id, run);
    this.perReplica.set(replica.id, this.load(replica.id) + 1);
    this.deps.balancer.started(replica.id);
    const load = this.deps.loads?.of(job.workload_id);
    load?.requestStarted();
    let outcome: RunOutcome;
    try {
      outcome = await this.execute(job, replica, session, run);
    } catch (err) {
      outcome = { kind: 'broken', reason: `${replica.id}: ${err instanceof Error ? err.message : String(err)}`, beforeResponse: false };
    } finally {
      const n = this.load(replica.id) - 1;
      if (n <= 0) this.perReplica.delete(replica.id);
      else this.perReplica.set(replica.id, n);
      this.deps.balancer.finished(replica.id);
      load?.requestEnded();
    }
    // After stop() the job was released (and the database may be closed): this run no longer owns it.
    if (this.stopped || this.running.get(job.id) !== run) return;
    this.running.delete(job.id);
    try {
      this.settle(job, replica, outcome);
    } catch (err) {
      this.deps.log.error({ err, jobId: job.id }, 'storing a job outcome failed');
    }
    this.kick();
  }

  private settle(job: ClaimedJob, replica: RoutableReplica, outcome: RunOutcome): void {
    const { store, clock, log } = this.deps;
    const decision = decideRun(outcome);
    const ctx = { jobId: job.id, replicaId: replica.id, attempt: job.attempts };
    if (decision.action === 'succeed') {
      if (!store.jobs.succeed(job.id, job.attempts, decision.result)) log.warn(ctx, 'a job run finished after it lost its claim; its result is dropped');
      return;
    }
    if (decision.action === 'fail') {
      store.jobs.fail(job.id, job.attempts, decision.error, decision.resultStatus);
      log.info({ ...ctx, code: decision.error.code }, 'job failed');
      return;
    }
    if (outcome.kind === 'broken' && outcome.beforeResponse) this.deps.balancer.eject(replica.id, clock.now() + EJECT_MS);
    const last = job.attempts >= job.max_attempts;
    const error = last ? finalError(decision.error, job.attempts) : decision.error;
    const status = store.jobs.retryOrFail(job.id, job.attempts, error, clock.now() + retryDelayMs(job.attempts), decision.resultStatus);
    log.warn({ ...ctx, status, reason: decision.error.message }, status === 'queued' ? 'job run failed; it is queued again' : 'job run failed; no attempts left');
  }

  /** One run: the stored request through the replica's tunnel, the whole answer collected (bounded). */
  private execute(job: ClaimedJob, replica: RoutableReplica, session: AgentSession, run: Run): Promise<RunOutcome> {
    const { config, clock } = this.deps;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: RunOutcome) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        resolve(outcome);
      };
      const timer = clock.setTimeout(() => {
        run.abort?.();
        finish({ kind: 'timeout', afterMs: config.requestTimeoutMs });
      }, config.requestTimeoutMs);
      const headers = forwardedHeaders(job.request_headers.flat(), replica.port, job.request_body, undefined);
      void attemptRelay({ pool: this.deps.pools.get(session, replica), method: job.method, path: `${upstreamPath(job.route)}${job.query}`, headers, body: job.request_body }).then((attempt) => {
        if (!attempt.ok) return finish({ kind: 'broken', reason: `${replica.id}: ${attempt.reason}`, beforeResponse: true });
        run.abort = attempt.abort;
        // Timed out (or stopped) while waiting for the headers: nobody wants this answer any more.
        if (settled || this.stopped) return attempt.abort();
        collectBody(attempt.response, config.maxResultBytes, attempt.abort, replica.id).then(finish, (err: unknown) =>
          finish({ kind: 'broken', reason: `${replica.id}: ${String(err)}`, beforeResponse: false }),
        );
      });
    });
  }

  private purge(): void {
    if (this.stopped) return;
    try {
      const cutoff = isoTime(this.deps.clock.now() - this.deps.config.retentionMs);
      const n = this.deps.store.jobs.purgeFinishedBefore(cutoff);
      if (n > 0) this.deps.log.info({ purged: n, before: cutoff }, 'purged finished jobs past their retention');
    } catch (err) {
      this.deps.log.error({ err }, 'purging finished jobs failed');
    }
    this.purgeTimer = this.deps.clock.setTimeout(() => this.purge(), PURGE_EVERY_MS);
    this.purgeTimer.unref?.();
  }
}

/** Reads a whole response, up to `limit` bytes; a connection that closes before the end is a broken run. */
function collectBody(response: IncomingMessage, limit: number, abort: () => void, replicaId: string): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const status = response.statusCode ?? 502;
    const contentType = typeof response.headers['content-type'] === 'string' ? response.headers['content-type'] : null;
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (outcome: RunOutcome) => {
      if (!done) (done = true), resolve(outcome);
    };
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      abort();
      return finish({ kind: 'too_large', status, limitBytes: limit });
    }
    response.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        abort();
        response.destroy();
        return finish({ kind: 'too_large', status, limitBytes: limit });
      }
      chunks.push(chunk);
    });
    response.once('end', () => finish({ kind: 'response', status, contentType, body: Buffer.concat(chunks, size) }));
    response.once('error', (err) => finish({ kind: 'broken', reason: `${replicaId}: the backend connection broke mid-answer: ${err.message}`, beforeResponse: false }));
    response.once('close', () => {
      if (!response.complete) finish({ kind: 'broken', reason: `${replicaId}: the backend connection closed before the answer was complete`, beforeResponse: false });
    });
  });
}
