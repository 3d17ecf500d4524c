// A scheduled workload end to end, on a hub whose schedule clock is shifted (IK_SCHEDULE_CLOCK_OFFSET_S) so that a
// cron run opens about 20 s after the hub starts and lasts 12 s: created outside its time it is `scheduled` with no
// replica; a sync request gets 503 with Retry-After and the next start; an async job waits in the queue; the run
// opens, the job and sync requests are served; the run ends, and the replicas go.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { ensure, events, getWorkload } from '../helpers/workloads.ts';
import { CHAT_MODEL, chatSpec, createKey, expectOpenAiError, postData } from '../helpers/dataplane.ts';

/** The run: every day at 08:00 UTC for 12 s; the hub's schedule clock reads 07:59:40 when it starts. */
const OPENS = Date.UTC(2030, 0, 7, 8, 0, 0);
const LEAD_MS = 20_000;
let hub: TestHub;
let agent: TestAgent;
let key: string;
let offsetMs: number;
const scheduleNow = () => Date.now() + offsetMs;

before(async () => {
  const offsetS = Math.round((OPENS - LEAD_MS - Date.now()) / 1000);
  offsetMs = offsetS * 1000;
  hub = await startHub({ env: { IK_POLICY_TICK_MS: '200', IK_SCHEDULE_CLOCK_OFFSET_S: String(offsetS) } });
  agent = startAgent({ hub, name: 'schedule-box', smi: 'h100-x1' });
  await waitForWorker(hub.url, hub.adminToken, 'schedule-box', (w) => w.state === 'ready');
  await ensure(hub, chatSpec('nightly', {}, { execution_policy: 'scheduled', execution_policy_config: { cron: '0 8 * * *', duration_s: 12, timezone: 'UTC', replicas: 1 } }));
  key = (await createKey(hub, 'nightly')).secret;
});
after(async () => {
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
});

const chat = (content: string) => ({ model: CHAT_MODEL, messages: [{ role: 'user', content }], max_tokens: 4 });

test('closed, then open, then closed again: 503 with the next start, a queued job, served inside, gone after', { timeout: 90_000 }, async () => {
  assert.ok(scheduleNow() < OPENS - 5000, 'the test starts well before the run opens');
  const w = await getWorkload(hub, 'nightly');
  assert.equal(w.state, 'scheduled', 'a spec created outside its time starts scheduled');
  assert.equal(w.desired_replicas, 0);
  assert.deepEqual(w.schedule, { open: false, opens_at: new Date(OPENS).toISOString(), closes_at: new Date(OPENS + 12_000).toISOString() });
  assert.equal(w.replicas.length, 0);

  const refused = await postData(hub, 'nightly', 'chat/completions', { key, body: chat('too early') });
  const e = await expectOpenAiError(refused, 503, 'api_error');
  assert.equal(e.code, 'workload_scheduled');
  assert.match(e.message, new RegExp(`next starts at ${new Date(OPENS).toISOString().replace(/\./g, '\\.')}`));
  const retryAfter = Number(refused.headers.get('retry-after'));
  const expected = Math.ceil((OPENS - scheduleNow()) / 1000);
  assert.ok(Math.abs(retryAfter - expected) <= 2, `Retry-After ${retryAfter} ≈ ${expected} s until the start`);
  assert.equal(refused.headers.get('x-ik-next-start'), new Date(OPENS).toISOString());

  const job = await api(hub.url, key, 'POST', '/endpoint/default/nightly/v1/async/chat/completions', chat('queued for the night'));
  assert.equal(job.status, 202, JSON.stringify(job.body));
  const jobId = job.body.request_id as string;
  assert.equal((await api(hub.url, key, 'GET', `/endpoint/default/nightly/v1/async/${jobId}`)).body.status, 'queued');

  // The run opens: a replica starts, the queued job runs, sync requests are served.
  const done = await eventually('the queued job to succeed once the run opens', async () => {
    const res = await api(hub.url, key, 'GET', `/endpoint/default/nightly/v1/async/${jobId}`);
    return res.body.status === 'succeeded' ? res.body : undefined;
  }, LEAD_MS + 20_000, 250);
  assert.ok(scheduleNow() >= OPENS, 'the job ran only inside the run');
  assert.equal(done.status, 'succeeded');
  const inside = await postData(hub, 'nightly', 'chat/completions', { key, body: chat('inside the run') });
  assert.equal(inside.status, 200);
  assert.equal((await getWorkload(hub, 'nightly')).state, 'active');

  // The run ends: back to scheduled, replicas stopped, the next start is tomorrow.
  const closed = await eventually('the run to end', async () => {
    const w = await getWorkload(hub, 'nightly');
    return w.state === 'scheduled' && w.replicas.every((r: { state: string }) => r.state === 'stopped') ? w : undefined;
  }, 30_000, 250);
  assert.equal(closed.schedule.opens_at, new Date(OPENS + 86_400_000).toISOString());
  const kinds = (await events(hub, 'workload=nightly')).map((e) => e.kind);
  assert.ok(kinds.includes('workload.schedule_opened') && kinds.includes('workload.schedule_closed'), kinds.join(', '));
});
