// The async-job store over an in-memory database with a fake clock: enqueue, claim oldest first with attempts,
// results, retries with backoff, failure after the last attempt, requeue after a hub restart, retention purge.
import { beforeEach, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Db } from '../../../hub/db/open.ts';
import { createStore, type Store } from '../../../hub/store/index.ts';
import type { NewJob } from '../../../hub/store/jobs.ts';
import { FakeClock, isoTime } from '../../../shared/clock.ts';
import { parseWorkloadSpec } from '../../../shared/spec/workload-spec.ts';
import { testSecretBox } from '../../helpers/inventory.ts';

const replicaFailed = { message: 'rep_a: the backend connection failed', type: 'api_error', code: 'replica_failed' };

describe('job store', () => {
  let db: Db;
  let clock: FakeClock;
  let store: Store;
  let workloadId: string;
  let otherWorkloadId: string;

  const newJob = (over: Partial<NewJob> = {}): NewJob => ({
    projectId: store.projects.getBySlug('p')!.id,
    workloadId,
    keyPrefix: 'ik_live_abcd',
    route: 'rerank',
    method: 'POST',
    query: '',
    contentType: 'application/json',
    headers: [['content-type', 'application/json'], ['x-request-id', 'r1']],
    body: Buffer.from('{"query":"q","documents":["a"]}'),
    maxAttempts: 3,
    ...over,
  });

  beforeEach(() => {
    db = openDatabase(':memory:');
    clock = new FakeClock();
    store = createStore(db, clock, testSecretBox());
    const project = store.projects.create('p', 'P');
    const spec = (slug: string) => {
      const parsed = parseWorkloadSpec({ slug, model: 'BAAI/bge-reranker-v2-m3', backend: 'vllm', task_type: 'reranker', command: 'vllm serve BAAI/bge-reranker-v2-m3 --task score' });
      assert.ok(parsed.ok);
      return parsed.spec;
    };
    workloadId = store.workloads.insert(project.id, spec('rr')).id;
    otherWorkloadId = store.workloads.insert(project.id, spec('other')).id;
  });
  afterEach(() => db.close());

  it('enqueues a job as queued, with a job_ id, and reads it back by id', () => {
    const { id, created_at } = store.jobs.enqueue(newJob());
    assert.match(id, /^job_[A-Za-z0-9]{16}$/);
    assert.equal(created_at, isoTime(clock.now()));
    const job = store.jobs.get(id)!;
    assert.equal(job.status, 'queued');
    assert.equal(job.workload_id, workloadId);
    assert.equal(job.result_body, null);
    assert.equal(job.error, null);
    assert.equal(store.jobs.get('job_nope'), undefined);
    assert.deepEqual(store.jobs.workloadsWithQueued(), [workloadId]);
  });

  it('claims the oldest queued job of the workload first, counting the attempt and keeping the request', () => {
    const first = store.jobs.enqueue(newJob());
    clock.advance(10);
    const second = store.jobs.enqueue(newJob({ body: Buffer.from('{"second":true}') }));
    store.jobs.enqueue(newJob({ workloadId: otherWorkloadId }));
    const a = store.jobs.claim(workloadId, 'rep_a')!;
    assert.equal(a.id, first.id);
    assert.equal(a.attempts, 1);
    assert.equal(a.replica_id, 'rep_a');
    assert.deepEqual(a.request_headers, [['content-type', 'application/json'], ['x-request-id', 'r1']]);
    assert.equal(a.request_body.toString(), '{"query":"q","documents":["a"]}');
    assert.equal(store.jobs.get(first.id)!.status, 'running');
    const b = store.jobs.claim(workloadId, 'rep_b')!;
    assert.equal(b.id, second.id);
    assert.equal(b.request_body.toString(), '{"second":true}');
    assert.equal(store.jobs.claim(workloadId, 'rep_a'), undefined, 'nothing left for this workload');
    assert.deepEqual(store.jobs.workloadsWithQueued(), [otherWorkloadId]);
  });

  it('stores a result once: a run that lost its claim cannot write a second one', () => {
    const { id } = store.jobs.enqueue(newJob());
    const run = store.jobs.claim(workloadId, 'rep_a')!;
    clock.advance(250);
    const result = { status: 200, contentType: 'application/json', encoding: 'json' as const, body: Buffer.from('{"results":[]}') };
    assert.equal(store.jobs.succeed(id, run.attempts, result), true);
    assert.equal(store.jobs.succeed(id, run.attempts, result), false, 'already finished');
    const job = store.jobs.get(id)!;
    assert.equal(job.status, 'succeeded');
    assert.equal(job.result_body!.toString(), '{"results":[]}');
    assert.equal(job.result_encoding, 'json');
    assert.equal(job.completed_at, isoTime(clock.now()));
    // A stale run (attempt 1) after the job was requeued and claimed again (attempt 2) changes nothing.
    const other = store.jobs.enqueue(newJob());
    const r1 = store.jobs.claim(workloadId, 'rep_a')!;
    assert.equal(store.jobs.retryOrFail(other.id, r1.attempts, replicaFailed, clock.now()), 'queued');
    const r2 = store.jobs.claim(workloadId, 'rep_b')!;
    assert.equal(r2.attempts, 2);
    assert.equal(store.jobs.succeed(other.id, r1.attempts, result), false);
    assert.equal(store.jobs.get(other.id)!.status, 'running');
  });

  it('requeues a failed run after its backoff, and fails the job with the reason after max attempts', () => {
    const { id } = store.jobs.enqueue(newJob({ maxAttempts: 3 }));
    for (let attempt = 1; attempt <= 2; attempt++) {
      const run = store.jobs.claim(workloadId, 'rep_a')!;
      assert.equal(run.attempts, attempt);
      assert.equal(store.jobs.retryOrFail(id, attempt, replicaFailed, clock.now() + 1000), 'queued');
      assert.equal(store.jobs.get(id)!.status, 'queued');
      assert.equal(store.jobs.claim(workloadId, 'rep_a'), undefined, 'not due before its backoff');
      clock.advance(1000);
    }
    const last = store.jobs.claim(workloadId, 'rep_a')!;
    assert.equal(last.attempts, 3);
    const reason = { ...replicaFailed, message: 'gave up after 3 attempts: rep_a: the backend connection failed' };
    assert.equal(store.jobs.retryOrFail(id, 3, reason, clock.now() + 1000), 'failed');
    const job = store.jobs.get(id)!;
    assert.equal(job.status, 'failed');
    assert.deepEqual(job.error, reason);
    assert.ok(job.completed_at);
    assert.equal(store.jobs.claim(workloadId, 'rep_a'), undefined);
  });

  it('fails a job at once when no other run would do better', () => {
    const { id } = store.jobs.enqueue(newJob());
    const run = store.jobs.claim(workloadId, 'rep_a')!;
    const error = { message: 'the backend answered 400: query: Field required', type: 'invalid_request_error', code: 'backend_error' };
    assert.equal(store.jobs.fail(id, run.attempts, error, 400), true);
    assert.equal(store.jobs.get(id)!.status, 'failed');
    assert.deepEqual(store.jobs.get(id)!.error, error);
  });

  it('on hub start, jobs left running are queued again (their attempt counts); those out of attempts fail', () => {
    const a = store.jobs.enqueue(newJob({ maxAttempts: 3 }));
    clock.advance(1);
    const b = store.jobs.enqueue(newJob({ maxAttempts: 1 }));
    clock.advance(1);
    const c = store.jobs.enqueue(newJob());
    store.jobs.claim(workloadId, 'rep_a');
    store.jobs.claim(workloadId, 'rep_a');
    const reason = { message: 'the hub stopped while the job ran, and it had no attempts left', type: 'api_error', code: 'hub_restarted' };
    assert.deepEqual(store.jobs.requeueInterrupted(reason), { requeued: 1, failed: 1 });
    assert.equal(store.jobs.get(a.id)!.status, 'queued');
    assert.equal(store.jobs.get(b.id)!.status, 'failed');
    assert.deepEqual(store.jobs.get(b.id)!.error, reason);
    assert.equal(store.jobs.get(c.id)!.status, 'queued');
    const again = store.jobs.claim(workloadId, 'rep_b')!;
    assert.equal(again.id, a.id, 'the requeued job keeps its place: oldest first');
    assert.equal(again.attempts, 2);
  });

  it('a run the hub interrupts on shutdown is queued again without counting the attempt', () => {
    const { id } = store.jobs.enqueue(newJob());
    const run = store.jobs.claim(workloadId, 'rep_a')!;
    assert.equal(store.jobs.release(id, run.attempts), true);
    assert.equal(store.jobs.claim(workloadId, 'rep_a')!.attempts, 1);
  });

  it('purges finished jobs older than the retention, never queued or running ones', () => {
    const old = store.jobs.enqueue(newJob());
    const oldRun = store.jobs.claim(workloadId, 'rep_a')!;
    store.jobs.succeed(old.id, oldRun.attempts, { status: 200, contentType: 'application/json', encoding: 'json', body: Buffer.from('{}') });
    const waiting = store.jobs.enqueue(newJob());
    clock.advance(7 * 86_400_000);
    const recent = store.jobs.enqueue(newJob());
    const recentRun = store.jobs.claim(workloadId, 'rep_a')!;
    assert.equal(recentRun.id, waiting.id);
    store.jobs.fail(waiting.id, recentRun.attempts, replicaFailed);
    clock.advance(1);
    const cutoff = isoTime(clock.now() - 7 * 86_400_000);
    assert.equal(store.jobs.purgeFinishedBefore(cutoff, 1), 1);
    assert.equal(store.jobs.get(old.id), undefined);
    assert.equal(store.jobs.get(waiting.id)!.status, 'failed', 'finished within the retention: kept');
    assert.equal(store.jobs.get(recent.id)!.status, 'queued');
    clock.advance(7 * 86_400_000);
    assert.equal(store.jobs.purgeFinishedBefore(isoTime(clock.now() - 7 * 86_400_000), 1), 1);
    assert.equal(store.jobs.get(recent.id)!.status, 'queued', 'a queued job is never purged');
  });

  it('deleting a workload deletes its jobs', () => {
    const { id } = store.jobs.enqueue(newJob());
    store.workloads.delete(workloadId);
    assert.equal(store.jobs.get(id), undefined);
  });

  it('the poll is a primary-key read', () => {
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT id, status FROM jobs WHERE id = ?`).all('job_x') as Array<{ detail: string }>;
    assert.match(plan.map((p) => p.detail).join(' '), /USING INDEX sqlite_autoindex_jobs_1|USING PRIMARY KEY/);
    const claimPlan = db
      .prepare(`EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE status = 'queued' AND workload_id = ? AND run_after <= ? ORDER BY created_at, id LIMIT 1`)
      .all('wl', 'z') as Array<{ detail: string }>;
    assert.match(claimPlan.map((p) => p.detail).join(' '), /jobs_queue/);
  });
});
