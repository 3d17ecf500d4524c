// Integration: async jobs through a real hub, a real agent (process runtime) and the simulator. Submission and polls,
// the routes each task type serves, auth; a hub killed with -9 while jobs run loses none and finishes each once; a
// backend killed mid-job and an agent restart are retried; a backend that always answers 500 fails after its attempts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startAgent, startHub, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { allReady, backendGet, ensure, waitForReplicas, type ReplicaInfo } from '../helpers/workloads.ts';
import { DATABASE_FILE } from '../../hub/main.ts';

let hub: TestHub;
let agent: TestAgent;
const keys: Record<string, string> = {};

const RERANKER = 'BAAI/bge-reranker-v2-m3';
const rerankSpec = (slug: string, env: Record<string, string>) => ({
  slug,
  model: RERANKER,
  backend: 'vllm',
  task_type: 'reranker',
  // A small memory claim, so every workload of this file fits on the fake GPUs.
  command: `vllm serve ${RERANKER} --task score --gpu-memory-utilization 0.2`,
  env,
});
const rerankBody = (i = 0) => ({ model: RERANKER, query: `what is a GPU? (${i})`, documents: ['a graphics processor', 'a fruit', `document ${i}`] });

/** A data-plane call with a data key. */
const dp = (method: string, slug: string, path: string, body?: unknown, key = keys[slug]) => api(hub.url, key, method, `/endpoint/default/${slug}/v1/${path}`, body);

async function submit(slug: string, route: string, body: unknown): Promise<string> {
  const res = await dp('POST', slug, `async/${route}`, body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.request_id;
}

/** Polls the jobs until every one is finished; returns them by id. */
function waitFinished(slug: string, ids: string[], timeoutMs = 40_000): Promise<Map<string, any>> {
  const done = new Map<string, any>();
  return eventually(
    `${ids.length} jobs of ${slug} to finish`,
    async () => {
      for (const id of ids) {
        if (done.has(id)) continue;
        const res = await dp('GET', slug, `async/${id}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        if (res.body.status === 'succeeded' || res.body.status === 'failed') done.set(id, res.body);
      }
      return done.size === ids.length ? done : undefined;
    },
    timeoutMs,
    200,
  );
}

/** Each job's attempts, read from the hub's database (read-only, beside the running hub). */
function attemptsOf(ids: string[]): number[] {
  const db = new Database(join(hub.dataDir, DATABASE_FILE), { readonly: true });
  try {
    const rows = db.prepare(`SELECT attempts FROM jobs WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as Array<{ attempts: number }>;
    return rows.map((r) => r.attempts);
  } finally {
    db.close();
  }
}

/** Requests the simulator has completed (vllm:request_success_total, every finish reason). */
async function simServed(port: number): Promise<number> {
  const metrics = await backendGet(port, '/metrics');
  let total = 0;
  for (const m of String(metrics.body).matchAll(/^vllm:request_success_total\{[^}]*\} (\d+)/gm)) total += Number(m[1]);
  return total;
}

before(async () => {
  hub = await startHub();
  agent = startAgent({ hub, name: 'box', smi: 'h100-x2' });
  await waitForWorker(hub.url, hub.adminToken, 'box', (w) => w.state === 'ready');
  await ensure(hub, rerankSpec('rr', { IK_SIM_TTFT_MS: '250', IK_SIM_ACCESS_LOG: 'off' }));
  await ensure(hub, rerankSpec('rr-broken', { IK_SIM_FAIL: 'http500=1.0', IK_SIM_ACCESS_LOG: 'off' }));
  await ensure(hub, { slug: 'chat', model: 'Qwen/Qwen2.5-0.5B-Instruct', backend: 'vllm', command: 'vllm serve Qwen/Qwen2.5-0.5B-Instruct --gpu-memory-utilization 0.2' });
  for (const slug of ['rr', 'rr-broken', 'chat']) {
    const key = await api(hub.url, hub.adminToken, 'POST', `/api/v1/projects/default/workloads/${slug}/keys`, {});
    assert.equal(key.status, 201);
    keys[slug] = key.body.secret;
    await waitForReplicas(hub, slug, allReady(1));
  }
});
after(() => hub.stop());

test('a reranker takes POST async/rerank: 202 with response_location, then the rerank JSON as the result', async () => {
  const res = await dp('POST', 'rr', 'async/rerank', rerankBody());
  assert.equal(res.status, 202, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body).sort(), ['request_id', 'response_location', 'status']);
  assert.match(res.body.request_id, /^job_[A-Za-z0-9]+$/);
  assert.equal(res.body.status, 'queued');
  assert.equal(res.body.response_location, `${hub.url}/endpoint/default/rr/v1/async/${res.body.request_id}`);
  assert.equal(res.headers.get('location'), res.body.response_location);

  const job = await eventually(
    'the job to succeed',
    async () => {
      const poll = await api(hub.url, keys.rr, 'GET', new URL(res.body.response_location).pathname);
      assert.equal(poll.status, 200);
      assert.notEqual(poll.body.status, 'failed', JSON.stringify(poll.body));
      return poll.body.status === 'succeeded' ? poll.body : undefined;
    },
    20_000,
  );
  assert.equal(job.request_id, res.body.request_id);
  assert.equal(job.result.model, RERANKER);
  assert.equal(job.result.results.length, 3);
  assert.equal(typeof job.result.results[0].relevance_score, 'number');
  assert.ok(Date.parse(job.completed_at) >= Date.parse(job.created_at));
  assert.equal(job.error, undefined);

  // The submission is metered as one request-log row.
  await eventually('the request-log row of the submission', async () => {
    const log = await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/default/workloads/rr/requests?limit=50');
    return log.body.items?.find((r: { route: string; status: number }) => r.route === 'async:rerank' && r.status === 202);
  });
});

test('routes: a sync rerank is 404 listing the async routes; an unknown async route is 404; chat takes async chat/completions', async () => {
  const sync = await dp('POST', 'rr', 'rerank', rerankBody());
  assert.equal(sync.status, 404);
  assert.equal(sync.body.error.code, 'route_not_served');
  assert.match(sync.body.error.message, /POST async\/rerank/);

  const unknown = await dp('POST', 'rr', 'async/chat/completions', { messages: [] });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.error.type, 'not_found_error');
  assert.match(unknown.body.error.message, /it serves: POST async\/rerank, GET async\/\{request_id\}/);

  const streamed = await dp('POST', 'chat', 'async/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stream: true });
  assert.equal(streamed.status, 400);
  assert.equal(streamed.body.error.param, 'stream');

  const id = await submit('chat', 'chat/completions', { model: 'chat', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 5 });
  const [job] = [...(await waitFinished('chat', [id])).values()];
  assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.equal(job.result.object, 'chat.completion');
  assert.equal(job.result.model, 'Qwen/Qwen2.5-0.5B-Instruct', 'the slug alias became the model name');
  assert.equal(typeof job.result.choices[0].message.content, 'string');
});

test('polls: an unknown id is 404, another workload\'s key is 401, a job polled on another workload is 404', async () => {
  const missing = await dp('GET', 'rr', 'async/job_doesnotexist000');
  assert.equal(missing.status, 404);
  assert.deepEqual(Object.keys(missing.body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(missing.body.error.code, 'job_not_found');

  const id = await submit('rr', 'rerank', rerankBody());
  const otherKey = await dp('GET', 'rr', `async/${id}`, undefined, keys.chat);
  assert.equal(otherKey.status, 401);
  assert.equal(otherKey.body.error.type, 'authentication_error');
  const noKey = await api(hub.url, undefined, 'GET', `/endpoint/default/rr/v1/async/${id}`);
  assert.equal(noKey.status, 401);
  const elsewhere = await dp('GET', 'chat', `async/${id}`);
  assert.equal(elsewhere.status, 404);
  await waitFinished('rr', [id]);
});

test('a backend that always answers 500: the job is retried, then fails with the backend error', async () => {
  const id = await submit('rr-broken', 'rerank', rerankBody());
  const [job] = [...(await waitFinished('rr-broken', [id], 20_000)).values()];
  assert.equal(job.status, 'failed');
  assert.equal(job.result, undefined);
  assert.equal(job.error.type, 'api_error');
  assert.equal(job.error.code, 'backend_error');
  assert.match(job.error.message, /^gave up after 3 attempts: the backend answered 500: .*IK_SIM_FAIL/);
  assert.ok(job.completed_at);
});

test('kill -9 of the hub while 50 jobs run: after a restart on the same data dir each finishes exactly once', async () => {
  const [replica] = await waitForReplicas(hub, 'rr', allReady(1));
  const servedBefore = await simServed(replica!.port!);
  const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => submit('rr', 'rerank', rerankBody(i))));
  // 4 at a time, 250 ms each: kill while the first batches run and most are still queued.
  await eventually(
    'some jobs to finish and others to run',
    async () => {
      const states = await Promise.all(ids.slice(0, 12).map(async (id) => (await dp('GET', 'rr', `async/${id}`)).body.status));
      return states.includes('succeeded') && states.includes('running') ? true : undefined;
    },
    20_000,
    20,
  );
  await hub.stop('SIGKILL');
  hub = await hub.restart();

  const jobs = await waitFinished('rr', ids, 60_000);
  const statuses = [...jobs.values()].map((j) => j.status);
  assert.equal(statuses.filter((s) => s === 'succeeded').length, 50, statuses.join(','));
  for (const job of jobs.values()) assert.equal(job.result.results.length, 3);

  // In the database: one row each, succeeded once (a run interrupted by the kill was requeued, not duplicated).
  const db = new Database(join(hub.dataDir, DATABASE_FILE), { readonly: true });
  try {
    const rows = db.prepare(`SELECT id, status, attempts, result_body IS NOT NULL AS has_result FROM jobs WHERE id IN (${ids.map(() => '?').join(',')})`).all(...ids) as Array<{
      status: string;
      attempts: number;
      has_result: number;
    }>;
    assert.equal(rows.length, 50);
    assert.ok(rows.every((r) => r.status === 'succeeded' && r.has_result === 1));
    assert.ok(rows.some((r) => r.attempts === 2), 'some job was running when the hub died, and ran again');
  } finally {
    db.close();
  }
  // The simulator may have served a few twice (mid-flight when the hub died), never fewer than 50.
  const served = (await simServed(replica!.port!)) - servedBefore;
  assert.ok(served >= 50 && served <= 60, `the simulator served ${served}`);
});

test('the backend of the replica is killed while jobs run: they are retried and finish', async () => {
  const [replica] = await waitForReplicas(hub, 'rr', allReady(1));
  const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => submit('rr', 'rerank', rerankBody(100 + i))));
  await eventually('a job to run', async () => ((await dp('GET', 'rr', `async/${ids[0]}`)).body.status === 'running' ? true : undefined), 10_000, 20);
  process.kill(replica!.pid!, 'SIGKILL');
  const jobs = await waitFinished('rr', ids, 40_000);
  for (const job of jobs.values()) assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.ok(attemptsOf(ids).some((n) => n >= 2), 'the jobs that ran on the killed backend ran again');
  const [after] = await waitForReplicas(hub, 'rr', allReady(1));
  assert.ok(after!.restarts > replica!.restarts, 'the backend was restarted');
});

test('the agent restarts while jobs run: they are retried once it is back and finish', async () => {
  const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => submit('rr', 'rerank', rerankBody(200 + i))));
  await eventually('a job to run', async () => ((await dp('GET', 'rr', `async/${ids[0]}`)).body.status === 'running' ? true : undefined), 10_000, 20);
  await agent.child.kill('SIGKILL');
  agent = startAgent({ ...agent.options, dataDir: agent.dataDir, token: '' });
  const jobs = await waitFinished('rr', ids, 40_000);
  for (const job of jobs.values()) assert.equal(job.status, 'succeeded', JSON.stringify(job));
  assert.ok(attemptsOf(ids).some((n) => n >= 2), 'the jobs whose streams the dead agent took down ran again');
  const replicas: ReplicaInfo[] = await waitForReplicas(hub, 'rr', allReady(1));
  assert.equal(replicas.length, 1, 'adopted, not duplicated');
});
