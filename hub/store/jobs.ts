// Async jobs: the queue the dispatcher claims from and the record clients poll. Every transition is a
// compare-and-swap on (status, attempts), so a run that lost its claim (the hub restarted, the job was requeued)
// can never write a second result.
import { z } from 'zod';
import type { Db } from '../db/open.ts';
import { newId } from '../../shared/secrets.ts';
import { isoTime, type Clock } from '../../shared/clock.ts';
import { readJson, writeJson } from './json-column.ts';

export const jobStatuses = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobStatus = (typeof jobStatuses)[number];

export const jobErrorSchema = z.object({ message: z.string(), type: z.string(), code: z.string() });
/** The OpenAI-shaped error of a failed job (also kept on a queued job: why its last attempt failed). */
export type JobError = z.infer<typeof jobErrorSchema>;

const headersSchema = z.array(z.tuple([z.string(), z.string()]));
const statusSchema = z.enum(jobStatuses);
const encodingSchema = z.enum(['json', 'base64']).nullable();

export interface NewJob {
  projectId: string;
  workloadId: string;
  keyPrefix: string | null;
  route: string;
  method: string;
  query: string;
  contentType: string | null;
  /** Request headers worth replaying (no credentials, no hop-by-hop headers). */
  headers: Array<[string, string]>;
  body: Buffer;
  maxAttempts: number;
}

/** What a poll reads: no request body. */
export interface JobView {
  id: string;
  workload_id: string;
  status: JobStatus;
  result_content_type: string | null;
  result_encoding: 'json' | 'base64' | null;
  result_body: Buffer | null;
  error: JobError | null;
  created_at: string;
  completed_at: string | null;
}

/** A job the dispatcher claimed: everything it needs to replay the request. `attempts` is this run's number. */
export interface ClaimedJob {
  id: string;
  project_id: string;
  workload_id: string;
  route: string;
  method: string;
  query: string;
  request_content_type: string | null;
  request_headers: Array<[string, string]>;
  request_body: Buffer;
  attempts: number;
  max_attempts: number;
  replica_id: string;
}

export interface JobResult {
  status: number;
  contentType: string | null;
  encoding: 'json' | 'base64';
  body: Buffer;
}

interface ViewDbRow extends Omit<JobView, 'status' | 'result_encoding' | 'error'> {
  status: string;
  result_encoding: string | null;
  error: string | null;
}

interface ClaimDbRow extends Omit<ClaimedJob, 'request_headers'> {
  request_headers: string;
}

export function createJobStore(db: Db, clock: Clock) {
  const insert = db.prepare(
    `INSERT INTO jobs (id, project_id, workload_id, key_prefix, route, method, query, request_content_type, request_headers, request_body,
                       status, attempts, max_attempts, run_after, created_at, updated_at)
     VALUES (@id, @project_id, @workload_id, @key_prefix, @route, @method, @query, @content_type, @headers, @body,
             'queued', 0, @max_attempts, @at, @at, @at)`,
  );
  const view = db.prepare<[string], ViewDbRow>(
    `SELECT id, workload_id, status, result_content_type, result_encoding, result_body, error, created_at, completed_at FROM jobs WHERE id = ?`,
  );
  const queuedWorkloads = db.prepare<[], { workload_id: string }>(`SELECT DISTINCT workload_id FROM jobs WHERE status = 'queued'`);
  // One statement: the oldest due job of the workload becomes this run's, or nothing changes.
  const claim = db.prepare<[string, string, string, string, string], ClaimDbRow>(
    `UPDATE jobs SET status = 'running', attempts = attempts + 1, replica_id = ?, started_at = ?, updated_at = ?
     WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND workload_id = ? AND run_after <= ? ORDER BY created_at, id LIMIT 1)
     RETURNING id, project_id, workload_id, route, method, query, request_content_type, request_headers, request_body, attempts, max_attempts, replica_id`,
  );
  const succeed = db.prepare(
    `UPDATE jobs SET status = 'succeeded', result_status = @status, result_content_type = @content_type, result_encoding = @encoding,
            result_body = @body, error = NULL, completed_at = @at, updated_at = @at
     WHERE id = @id AND status = 'running' AND attempts = @attempt`,
  );
  const fail = db.prepare(
    `UPDATE jobs SET status = 'failed', error = @error, result_status = @result_status, completed_at = @at, updated_at = @at
     WHERE id = @id AND status = 'running' AND attempts = @attempt`,
  );
  const requeue = db.prepare(
    `UPDATE jobs SET status = 'queued', error = @error, run_after = @run_after, updated_at = @at
     WHERE id = @id AND status = 'running' AND attempts = @attempt AND attempts < max_attempts`,
  );
  const release = db.prepare<[string, string, number]>(
    `UPDATE jobs SET status = 'queued', attempts = attempts - 1, updated_at = ? WHERE id = ? AND status = 'running' AND attempts = ?`,
  );
  const requeueRunning = db.prepare<[string, string]>(
    `UPDATE jobs SET status = 'queued', run_after = ?, updated_at = ? WHERE status = 'running' AND attempts < max_attempts`,
  );
  const failRunning = db.prepare<[string, string, string]>(
    `UPDATE jobs SET status = 'failed', error = ?, completed_at = ?, updated_at = ? WHERE status = 'running'`,
  );
  const purge = db.prepare<[string, number]>(
    `DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE completed_at IS NOT NULL AND completed_at < ? LIMIT ?)`,
  );
  const countByStatus = db.prepare<[string], { status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM jobs WHERE workload_id = ? GROUP BY status`);

  const now = () => isoTime(clock.now());

  return {
    /** Stores a submitted job (one INSERT: once it returns, the job survives a crash of the hub). */
    enqueue(job: NewJob): { id: string; created_at: string } {
      const id = newId('job');
      const at = now();
      insert.run({
        id,
        project_id: job.projectId,
        workload_id: job.workloadId,
        key_prefix: job.keyPrefix,
        route: job.route,
        method: job.method,
        query: job.query,
        content_type: job.contentType,
        headers: writeJson(job.headers),
        body: job.body,
        max_attempts: job.maxAttempts,
        at,
      });
      return { id, created_at: at };
    },
    /** The poll: one primary-key read, without the request body. */
    get(id: string): JobView | undefined {
      const row = view.get(id);
      if (!row) return undefined;
      return {
        ...row,
        status: statusSchema.parse(row.status),
        result_encoding: encodingSchema.parse(row.result_encoding),
        error: row.error === null ? null : readJson(jobErrorSchema, row.error, 'jobs.error'),
      };
    },
    /** Workloads that have queued jobs (due or not). */
    workloadsWithQueued(): string[] {
      return queuedWorkloads.all().map((r) => r.workload_id);
    },
    /** Claims the workload's oldest due job for a run on `replicaId`; its attempts count up. */
    claim(workloadId: string, replicaId: string): ClaimedJob | undefined {
      const at = now();
      const row = claim.get(replicaId, at, at, workloadId, at);
      return row && { ...row, request_headers: readJson(headersSchema, row.request_headers, 'jobs.request_headers') };
    },
    /** The run `attempt` produced the job's result. False when the run had lost its claim. */
    succeed(id: string, attempt: number, result: JobResult): boolean {
      const at = now();
      return succeed.run({ id, attempt, at, status: result.status, content_type: result.contentType, encoding: result.encoding, body: result.body }).changes === 1;
    },
    /** The run `attempt` failed for good (a bad request, a result too large, no attempts left). */
    fail(id: string, attempt: number, error: JobError, resultStatus: number | null = null): boolean {
      return fail.run({ id, attempt, at: now(), error: writeJson(error), result_status: resultStatus }).changes === 1;
    },
    /**
     * The run `attempt` failed in a way another run may not: back to the queue until `runAfter` while attempts remain,
     * else failed with `error`. Returns the job's new status, or undefined when the run had lost its claim.
     */
    retryOrFail(id: string, attempt: number, error: JobError, runAfterMs: number, resultStatus: number | null = null): 'queued' | 'failed' | undefined {
      const at = now();
      if (requeue.run({ id, attempt, at, error: writeJson(error), run_after: isoTime(runAfterMs) }).changes === 1) return 'queued';
      return this.fail(id, attempt, error, resultStatus) ? 'failed' : undefined;
    },
    /** A run the hub itself interrupted (shutdown): back to the queue, and the attempt does not count. */
    release(id: string, attempt: number): boolean {
      return release.run(now(), id, attempt).changes === 1;
    },
    /**
     * At hub start: jobs left running died with the previous process. Their attempt counts; those with attempts left
     * are queued again at once, the others fail with `error`.
     */
    requeueInterrupted(error: JobError): { requeued: number; failed: number } {
      return db
        .transaction(() => {
          const at = now();
          const requeued = requeueRunning.run(at, at).changes;
          const failed = failRunning.run(writeJson(error), at, at).changes;
          return { requeued, failed };
        })
        .immediate();
    },
    /** Forgets finished jobs completed before the cutoff, in batches (short write transactions). */
    purgeFinishedBefore(iso: string, batch = 1000): number {
      let total = 0;
      for (;;) {
        const n = purge.run(iso, batch).changes;
        total += n;
        if (n < batch) return total;
      }
    },
    countByStatus(workloadId: string): Record<JobStatus, number> {
      const counts: Record<JobStatus, number> = { queued: 0, running: 0, succeeded: 0, failed: 0 };
      for (const r of countByStatus.all(workloadId)) counts[statusSchema.parse(r.status)] = r.n;
      return counts;
    },
  };
}

export type JobStore = ReturnType<typeof createJobStore>;
