// Execution policies end to end (hub → tunnel → agent → ik-sim, process runtime): an autoscaling workload starts
// from zero on its first request (x-ik-cold-start), grows under a bounded load of streamed requests and returns to
// zero with none failed; a fixed workload's inactive timeout deactivates it and the next request wakes it; one
// deactivated by hand stays off; a cold-start queue that is full and a cold start that times out answer 503.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { ensure, events, getWorkload } from '../helpers/workloads.ts';
import { CHAT_MODEL, chatSpec, createKey, expectOpenAiError, openaiFor, postData } from '../helpers/dataplane.ts';

let hub: TestHub;
let agent: TestAgent;
const keys: Record<string, string> = {};

const autoscaling = (config: Record<string, unknown>) => ({ execution_policy: 'autoscaling', execution_policy_config: config });

before(async () => {
  hub = await startHub({ env: { IK_POLICY_TICK_MS: '200', IK_COLD_START_TIMEOUT_S: '3' } });
  agent = startAgent({ hub, name: 'policy-box', smi: 'h100-x2' });
  await waitForWorker(hub.url, hub.adminToken, 'policy-box', (w) => w.state === 'ready');
  const specs = [
    // 0‥3 replicas, 4 requests in flight each: 24 concurrent streams need 3 (a panic); idle 2 s → zero.
    chatSpec('elastic', { IK_SIM_ITL_MS: '25' }, autoscaling({ min_workers: 0, max_workers: 3, target: 4, scale_to_zero_delay_s: 2, downscale_delay_s: 0 })),
    // A replica that takes 1.5 s to start: the cold-start header and the queue bound are seen on it.
    chatSpec('coldish', { IK_SIM_STARTUP_MS: '1500' }, autoscaling({ min_workers: 0, max_workers: 1, scale_to_zero_delay_s: 600, max_queue: 2 })),
    // A replica that never becomes ready within the cold-start timeout (3 s).
    chatSpec('glacial', { IK_SIM_STARTUP_MS: '60000' }, autoscaling({ min_workers: 0, max_workers: 1, cold_start_timeout_s: 2 })),
    // Slow streams (30 tokens, 100 ms apart): deactivated mid-stream, the replica drains rather than cuts.
    chatSpec('steady', { IK_SIM_ITL_MS: '100' }),
    // Scales on the backend's queue (vllm:num_requests_waiting, read from /metrics by the agent): one sequence at a time.
    chatSpec('queued', { IK_SIM_ITL_MS: '50', IK_SIM_MAX_NUM_SEQS: '1' }, autoscaling({ min_workers: 1, max_workers: 2, metric: 'backend', target: 2 })),
    // fixed, deactivated after 2 s without a request.
    chatSpec('dozy', {}, { execution_policy: 'fixed', execution_policy_config: { replicas: 1, inactive_timeout_s: 2 } }),
  ];
  for (const spec of specs) {
    await ensure(hub, spec);
    keys[spec.slug as string] = (await createKey(hub, spec.slug as string)).secret;
  }
});
after(async () => {
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
});

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ model: CHAT_MODEL, messages: [{ role: 'user' as const, content }], max_tokens: 4, ...extra });

/** Reads a streamed chat completion to its end; returns the content chunks and whether [DONE] came. */
async function readStream(res: Response): Promise<{ chunks: number; done: boolean }> {
  const text = await res.text();
  const lines = text.split('\n').filter((l) => l.startsWith('data: '));
  const events = lines.filter((l) => l !== 'data: [DONE]').map((l) => JSON.parse(l.slice(6)));
  return { chunks: events.filter((e) => e.choices?.[0]?.delta?.content).length, done: lines.at(-1) === 'data: [DONE]' };
}

test('an autoscaling workload at zero starts on its first request, which carries x-ik-cold-start', async () => {
  const w = await getWorkload(hub, 'coldish');
  assert.equal(w.desired_replicas, 0);
  assert.equal(w.replicas.length, 0, 'nothing runs before the first request');
  const started = Date.now();
  const openai = openaiFor(hub, 'coldish', keys.coldish!);
  const { data, response } = await openai.chat.completions.create(chat('wake up')).withResponse();
  assert.ok(Date.now() - started >= 1400, 'the request waited for the replica to start');
  assert.equal(response.headers.get('x-ik-cold-start'), '1');
  assert.equal(data.choices[0]!.message.role, 'assistant');
  const scaled = await events(hub, 'workload=coldish');
  assert.ok(scaled.some((e) => e.kind === 'workload.scaled' && /scale 0→1: a request arrived/.test(e.message)), JSON.stringify(scaled.map((e) => e.message)));
  // Warm now: no header.
  const warm = await postData(hub, 'coldish', 'chat/completions', { key: keys.coldish!, body: chat('again') });
  assert.equal(warm.status, 200);
  assert.equal(warm.headers.get('x-ik-cold-start'), null);
  assert.equal((await getWorkload(hub, 'coldish')).state, 'active');
});

test('0 → N → 0: 200 streamed requests grow the workload in a panic, none fails, and it returns to zero', { timeout: 90_000 }, async () => {
  const before = await getWorkload(hub, 'elastic');
  assert.equal(before.replicas.length, 0);
  const results: Array<{ status: number; chunks: number; done: boolean }> = [];
  let next = 0;
  let peak = 0;
  const sampler = setInterval(async () => {
    const w = await getWorkload(hub, 'elastic').catch(() => undefined);
    if (w) peak = Math.max(peak, w.replicas.filter((r: { state: string }) => r.state === 'ready').length);
  }, 200);
  // 24 clients, 200 streamed requests of 32 tokens 25 ms apart (~0.8 s each): about 7 s of load at 24 in flight.
  const client = async () => {
    while (next < 200) {
      next++;
      const res = await postData(hub, 'elastic', 'chat/completions', { key: keys.elastic!, body: chat(`load ${next}`, { stream: true, max_tokens: 32 }) });
      results.push({ status: res.status, ...(await readStream(res)) });
    }
  };
  await Promise.all(Array.from({ length: 24 }, client));
  clearInterval(sampler);
  assert.equal(results.length, 200);
  assert.deepEqual(results.filter((r) => r.status !== 200 || !r.done || r.chunks !== 32), [], 'every request succeeded in full');
  assert.ok(peak >= 2, `the load grew the workload past one replica (peak ${peak})`);
  const scaled = (await events(hub, 'workload=elastic')).filter((e) => e.kind === 'workload.scaled');
  assert.ok(scaled.some((e) => /in-flight [\d.]+ over 6 s \(panic\), target 4/.test(e.message)), JSON.stringify(scaled.map((e) => e.message)));
  // Idle for scale_to_zero_delay_s (2 s): back to zero, every replica stopped, the workload still active.
  await eventually('elastic back at zero', async () => {
    const w = await getWorkload(hub, 'elastic');
    return w.desired_replicas === 0 && w.replicas.every((r: { state: string }) => r.state === 'stopped') ? w : undefined;
  }, 20_000, 200);
  const last = (await events(hub, 'workload=elastic')).find((e) => e.kind === 'workload.scaled');
  assert.match(last!.message, /→0: idle for [\d.]+ s/);
  assert.equal((await getWorkload(hub, 'elastic')).state, 'active', 'a workload autoscaled to zero is still active');
});

test('a full cold-start queue answers 503 with Retry-After; the queued requests are served', async () => {
  // coldish has max_queue 2; scale it back to zero first by deactivating and activating it.
  for (const action of ['deactivate', 'activate']) assert.equal((await api(hub.url, hub.adminToken, 'POST', `/api/v1/projects/default/workloads/coldish/${action}`)).status, 200);
  await eventually('coldish at zero', async () => ((await getWorkload(hub, 'coldish')).replicas.every((r: { state: string }) => r.state === 'stopped') ? true : undefined), 15_000, 100);
  const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => postData(hub, 'coldish', 'chat/completions', { key: keys.coldish!, body: chat(`q${i}`) })));
  const statuses = answers.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 503, 503]);
  for (const r of answers.filter((a) => a.status === 503)) {
    const e = await expectOpenAiError(r, 503, 'api_error');
    assert.equal(e.code, 'cold_start_queue_full');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
  }
  for (const r of answers.filter((a) => a.status === 200)) assert.equal(r.headers.get('x-ik-cold-start'), '1');
});

test('a replica that does not start within cold_start_timeout_s: 503 cold_start_timeout with Retry-After', async () => {
  const started = Date.now();
  const res = await postData(hub, 'glacial', 'chat/completions', { key: keys.glacial!, body: chat('hello?') });
  const e = await expectOpenAiError(res, 503, 'api_error');
  assert.equal(e.code, 'cold_start_timeout');
  assert.match(e.message, /cold-start timeout \(2 s/);
  assert.ok(Date.now() - started >= 1900, 'it waited the timeout out');
  assert.ok(Number(res.headers.get('retry-after')) > 0);
});

test('the inactive timeout deactivates a fixed workload; the next request wakes it; by hand it stays off', { timeout: 60_000 }, async () => {
  const w = await eventually('dozy deactivated by its timeout', async () => {
    const w = await getWorkload(hub, 'dozy');
    return w.state === 'inactive' ? w : undefined;
  }, 20_000, 200);
  assert.equal(w.deactivated_by, 'timeout');
  assert.equal(w.desired_replicas, 0);
  const deactivated = (await events(hub, 'workload=dozy')).find((e) => e.kind === 'workload.deactivated');
  assert.match(deactivated!.message, /no request for \d+ s \(inactive_timeout_s 2\); the next request wakes it/);
  await eventually('dozy compute released', async () => ((await getWorkload(hub, 'dozy')).replicas.every((r: { state: string }) => r.state === 'stopped') ? true : undefined), 15_000, 100);

  const res = await postData(hub, 'dozy', 'chat/completions', { key: keys.dozy!, body: chat('wake') });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-ik-cold-start'), '1');
  const woken = await getWorkload(hub, 'dozy');
  assert.equal(woken.desired_state, 'active');
  assert.equal(woken.state, 'active');
  assert.ok((await events(hub, 'workload=dozy')).some((e) => e.kind === 'workload.woken'));

  // Deactivated by hand: 503 at once, no wake.
  assert.equal((await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects/default/workloads/dozy/deactivate')).status, 200);
  const off = await postData(hub, 'dozy', 'chat/completions', { key: keys.dozy!, body: chat('still there?') });
  const e = await expectOpenAiError(off, 503, 'api_error');
  assert.equal(e.code, 'workload_inactive');
  const after = await getWorkload(hub, 'dozy');
  assert.equal(after.deactivated_by, 'hand');
  assert.equal(after.desired_state, 'inactive');
});

test('a replica taken out with a stream in flight drains: the stream runs to its end, then the replica stops', { timeout: 60_000 }, async () => {
  await eventually('steady ready', async () => ((await getWorkload(hub, 'steady')).replicas.some((r: { state: string }) => r.state === 'ready') ? true : undefined), 20_000, 100);
  const stream = postData(hub, 'steady', 'chat/completions', { key: keys.steady!, body: chat('a long answer', { stream: true, max_tokens: 30 }) });
  const res = await stream;
  assert.equal(res.status, 200);
  const replicaId = res.headers.get('x-ik-replica');
  const reading = readStream(res);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects/default/workloads/steady/deactivate')).status, 200);
  const during = await eventually('steady draining', async () => {
    const r = (await getWorkload(hub, 'steady')).replicas.find((x: { id: string }) => x.id === replicaId);
    return r?.state === 'draining' ? r : undefined;
  }, 5000, 50);
  assert.equal(during.state, 'draining', 'out of rotation while its stream runs');
  const { chunks, done } = await reading;
  assert.equal(chunks, 30, 'every token of the stream arrived');
  assert.ok(done, 'the stream ended with [DONE]');
  await eventually('the drained replica stopped', async () => {
    const r = (await getWorkload(hub, 'steady')).replicas.find((x: { id: string }) => x.id === replicaId);
    return r === undefined || r.state === 'stopped' ? true : undefined;
  }, 15_000, 100);
});

test('metric "backend": the queue the agent reads from the replica\'s /metrics scales the workload', { timeout: 60_000 }, async () => {
  await eventually('queued ready', async () => ((await getWorkload(hub, 'queued')).replicas.some((r: { state: string }) => r.state === 'ready') ? true : undefined), 20_000, 100);
  // 8 streams of 40 tokens 50 ms apart on one sequence slot: 7 wait at first, for ~14 s.
  const load = Array.from({ length: 8 }, (_, i) => postData(hub, 'queued', 'chat/completions', { key: keys.queued!, body: chat(`queue ${i}`, { stream: true, max_tokens: 40 }) }).then(readStream));
  const grown = await eventually('a second replica ready', async () => {
    const w = await getWorkload(hub, 'queued');
    return w.replicas.filter((r: { state: string }) => r.state === 'ready').length === 2 ? w : undefined;
  }, 20_000, 200);
  assert.equal(grown.desired_replicas, 2);
  const scaled = (await events(hub, 'workload=queued')).filter((e) => e.kind === 'workload.scaled').map((e) => e.message);
  assert.ok(scaled.some((m) => /scale 1→2: vllm:num_requests_waiting [\d.]+ over \d+ s( \(panic\))?, target 2/.test(m)), scaled.join(' | '));
  for (const r of await Promise.all(load)) assert.ok(r.done, 'every queued stream completed');
});
