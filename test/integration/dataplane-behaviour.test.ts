// The data plane's behaviour end to end (hub → tunnel → agent → ik-sim, process runtime): a client that leaves cancels
// the backend's work (streamed or not); a replica dying mid-burst costs no request that had not started; keys work for
// their workload only; a slow reader cannot make the hub buffer a fast stream; multi-byte text crosses the relay
// intact; bad input gets the OpenAI error shape and a fitting status without disturbing other requests; requests are
// metered (log, rate limit, Prometheus); similar prompts stick to one replica while different ones spread.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { RateLimitError } from 'openai';
import { startHub, startAgent, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { allReady, ensure, getWorkload, vllmSpec, waitForReplicas, type ReplicaInfo } from '../helpers/workloads.ts';
import {
  CHAT_MODEL,
  chatSpec,
  createKey,
  endpointUrl,
  expectOpenAiError,
  openaiFor,
  postData,
  rssKiB,
  simMetric,
  SMALL_CLAIM,
  waitForSimMetric,
  warnLines,
  type DataKey,
} from '../helpers/dataplane.ts';

/** The hub's body limit for this file: small, so a 413 needs no 64 MiB upload. */
const BODY_LIMIT = 1024 * 1024;
/** The hub's request timeout for this file (s): longer than any request here but the one that must time out. */
const REQUEST_TIMEOUT_S = 8;
/** A model name of three-byte UTF-8 characters: a chunk boundary almost always falls inside one. */
const UNICODE_MODEL = `acme/${'模型'.repeat(60)}`;

let hub: TestHub;
let agent: TestAgent;
const keys: Record<string, DataKey> = {};
const ready: Record<string, ReplicaInfo[]> = {};

before(async () => {
  // A replica that dies stays out for a minute (no quick restart), so "leaves rotation" is observable.
  hub = await startHub({
    env: { IK_DATAPLANE_BODY_LIMIT_BYTES: String(BODY_LIMIT), IK_RESTART_BACKOFF_BASE_MS: '60000', IK_REQUEST_TIMEOUT_S: String(REQUEST_TIMEOUT_S) },
  });
  agent = startAgent({ hub, name: 'behaviour-box', smi: 'h100-x2' });
  await waitForWorker(hub.url, hub.adminToken, 'behaviour-box', (w) => w.state === 'ready');
  const specs: Record<string, Record<string, unknown>> = {
    // healthy, fast: metering, isolation, the healthy neighbour of bad requests
    meter: chatSpec('meter'),
    // slow streams: cancellation; 'fragile' is killed mid-stream
    slow: chatSpec('slow', { IK_SIM_ITL_MS: '50' }),
    fragile: chatSpec('fragile', { IK_SIM_ITL_MS: '50' }),
    // two replicas, each request takes a while: affinity, then retries
    pair: chatSpec('pair', { IK_SIM_TTFT_MS: '300' }, { execution_policy: 'fixed', execution_policy_config: { replicas: 2 } }),
    // a backend that produces as fast as it can, for the memory test
    firehose: chatSpec('firehose', { IK_SIM_ITL_MS: '0' }, { command: `vllm serve ${CHAT_MODEL} ${SMALL_CLAIM} --max-model-len 1000000` }),
    // streams whose every event carries multi-byte characters (the model name is echoed in each)
    unicode: vllmSpec('unicode', UNICODE_MODEL, { command: `vllm serve ${UNICODE_MODEL} ${SMALL_CLAIM} --max-model-len 100000`, env: { IK_SIM_ITL_MS: '0' } }),
    // served once, then deactivated
    sleepy: chatSpec('sleepy'),
    // fits on no GPU here: its replica stays pending
    pending: vllmSpec('pending', 'meta-llama/Llama-3.1-405B-Instruct'),
  };
  for (const spec of Object.values(specs)) await ensure(hub, spec);
  for (const slug of Object.keys(specs)) {
    if (slug !== 'pending') ready[slug] = await waitForReplicas(hub, slug, allReady(slug === 'pair' ? 2 : 1));
    keys[slug] = await createKey(hub, slug);
  }
});
after(async () => {
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
});

const chatBody = (content: string, extra: Record<string, unknown> = {}) => ({ model: CHAT_MODEL, messages: [{ role: 'user', content }], max_tokens: 4, ...extra });

/** Reads an SSE response to its end; returns the data payloads (without [DONE]) and whether [DONE] came. */
async function readSse(res: Response): Promise<{ events: any[]; done: boolean }> {
  const text = await res.text();
  const datas = text
    .split('\n\n')
    .map((e) => e.split('\n').find((l) => l.startsWith('data:'))?.slice(5).trim())
    .filter((d): d is string => d !== undefined && d.length > 0);
  return { events: datas.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)), done: datas.includes('[DONE]') };
}

test('a key works for its own workload only: elsewhere 401, also on a workload that does not exist', { timeout: 30_000 }, async () => {
  const ok = await postData(hub, 'meter', 'chat/completions', { body: chatBody('hi'), headers: { 'x-api-key': keys.meter!.secret } });
  assert.equal(ok.status, 200, 'X-API-Key works as well as the bearer token');
  await ok.arrayBuffer();

  const elsewhere = await postData(hub, 'slow', 'chat/completions', { key: keys.meter!.secret, body: chatBody('hi') });
  await expectOpenAiError(elsewhere, 401, 'authentication_error');
  const backwards = await postData(hub, 'meter', 'chat/completions', { key: keys.slow!.secret, body: chatBody('hi') });
  await expectOpenAiError(backwards, 401, 'authentication_error');
  const nowhere = await postData(hub, 'no-such-workload', 'chat/completions', { key: keys.meter!.secret, body: chatBody('hi') });
  await expectOpenAiError(nowhere, 401, 'authentication_error');
  const noProject = await fetch(`${hub.url}/endpoint/no-such-project/meter/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keys.meter!.secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(chatBody('hi')),
  });
  await expectOpenAiError(noProject, 401, 'authentication_error');
});

test(
  'a revoked key is refused at once',
  { timeout: 30_000 },
  async () => {
    const key = await createKey(hub, 'meter', { name: 'to-revoke' });
    const before = await postData(hub, 'meter', 'chat/completions', { key: key.secret, body: chatBody('hi') });
    assert.equal(before.status, 200);
    await before.arrayBuffer();
    assert.equal((await api(hub.url, hub.adminToken, 'DELETE', `/api/v1/projects/default/workloads/meter/keys/${key.id}`)).status, 200);
    const after = await postData(hub, 'meter', 'chat/completions', { key: key.secret, body: chatBody('hi') });
    await expectOpenAiError(after, 401, 'authentication_error');
  },
);

test('bad input gets the OpenAI error shape and a fitting status, and a concurrent healthy request is untouched', { timeout: 30_000 }, async () => {
  // A healthy stream (20 tokens, 50 ms apart) runs through all of it.
  const healthy = postData(hub, 'slow', 'chat/completions', { key: keys.slow!.secret, body: chatBody('keep going', { max_tokens: 20, stream: true }) });
  const key = keys.meter!.secret;

  const [malformed, unknownRoute, nonsenseRoute, tooLarge, missingKey, wrongKey, controlToken, pending] = await Promise.all([
    postData(hub, 'meter', 'chat/completions', { key, body: '{"model": "x", "messages": [' }),
    postData(hub, 'meter', 'embeddings', { key, body: { model: CHAT_MODEL, input: 'x' } }),
    postData(hub, 'meter', 'nope/nothing', { key, body: {} }),
    postData(hub, 'meter', 'chat/completions', { key, body: JSON.stringify({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'x'.repeat(BODY_LIMIT * 2) }] }) }),
    postData(hub, 'meter', 'chat/completions', { body: chatBody('hi') }),
    postData(hub, 'meter', 'chat/completions', { key: `ik_live_${randomBytes(24).toString('hex')}`, body: chatBody('hi') }),
    postData(hub, 'meter', 'chat/completions', { key: hub.adminToken, body: chatBody('hi') }),
    postData(hub, 'pending', 'chat/completions', { key: keys.pending!.secret, body: chatBody('hi') }),
  ]);

  const e400 = await expectOpenAiError(malformed, 400, 'invalid_request_error');
  assert.match(e400.message, /JSON/);
  const e404 = await expectOpenAiError(unknownRoute, 404, 'not_found_error');
  assert.match(e404.message, /chat\/completions/, 'the 404 lists the routes the workload serves');
  assert.match(e404.message, /\bcompletions\b.*GET models/);
  const e404b = await expectOpenAiError(nonsenseRoute, 404, 'not_found_error');
  assert.match(e404b.message, /chat\/completions/);
  const e413 = await expectOpenAiError(tooLarge, 413, 'invalid_request_error');
  assert.match(e413.message, /IK_DATAPLANE_BODY_LIMIT_BYTES/);
  await expectOpenAiError(missingKey, 401, 'authentication_error');
  await expectOpenAiError(wrongKey, 401, 'authentication_error');
  await expectOpenAiError(controlToken, 401, 'authentication_error');
  const e503 = await expectOpenAiError(pending, 503);
  assert.match(e503.message, /no ready replica/);
  assert.ok(Number(pending.headers.get('retry-after')) > 0, 'Retry-After on 503');

  const stream = await healthy;
  assert.equal(stream.status, 200);
  const { events, done } = await readSse(stream);
  assert.ok(done, 'the healthy stream ran to [DONE]');
  assert.equal(events.filter((e) => e.choices?.[0]?.delta?.content).length, 20);

  // The models route of the workload still answers, and a good request right after the bad ones is served.
  const models = await fetch(`${endpointUrl(hub, 'meter')}/models`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(models.status, 200);
  assert.equal(((await models.json()) as any).data[0].id, CHAT_MODEL);
  const after = await postData(hub, 'meter', 'chat/completions', { key, body: chatBody('hi') });
  assert.equal(after.status, 200);
  await after.arrayBuffer();
});

test('a deactivated workload answers 503 with Retry-After', { timeout: 30_000 }, async () => {
  const key = keys.sleepy!.secret;
  const served = await postData(hub, 'sleepy', 'chat/completions', { key, body: chatBody('hi') });
  assert.equal(served.status, 200);
  await served.arrayBuffer();
  assert.equal((await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects/default/workloads/sleepy/deactivate')).status, 200);
  const res = await eventually(
    'the deactivation to reach the data plane',
    async () => {
      const r = await postData(hub, 'sleepy', 'chat/completions', { key, body: chatBody('hi') });
      if (r.status === 503) return r;
      await r.arrayBuffer();
      return undefined;
    },
    5000,
  );
  const err = await expectOpenAiError(res, 503);
  assert.match(err.message, /deactivated/);
  assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After on 503');
});

test('a backend that dies mid-stream: the client sees the stream end early, the hub logs it, a concurrent request is served', { timeout: 30_000 }, async () => {
  const [replica] = ready.fragile!;
  const controller = new AbortController();
  const res = await postData(hub, 'fragile', 'chat/completions', { key: keys.fragile!.secret, body: chatBody('a long story', { max_tokens: 400, stream: true }), signal: controller.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let received = '';
  while ((received.match(/\n\n/g) ?? []).length < 3) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'the stream has started');
    received += Buffer.from(value).toString('utf8');
  }
  const neighbour = postData(hub, 'slow', 'chat/completions', { key: keys.slow!.secret, body: chatBody('still here?', { max_tokens: 10 }) });
  process.kill(replica!.pid!, 'SIGKILL');
  let outcome: 'error' | 'end';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += Buffer.from(value).toString('utf8');
    }
    outcome = 'end';
  } catch {
    outcome = 'error';
  }
  controller.abort();
  assert.doesNotMatch(received, /\[DONE\]/, 'the stream did not look complete');
  assert.doesNotMatch(received, /"finish_reason":"length"/);
  assert.equal(outcome, 'error', 'a cut stream reaches the client as a terminated response, not as a clean end');

  const ok = await neighbour;
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as any).usage.completion_tokens, 10);
  await eventually('the hub to log the broken backend connection', async () => (warnLines(hub.child.output, 'mid-response').length > 0 ? true : undefined), 5000);
});

test('a client that goes away cancels the backend request within a second', { timeout: 30_000 }, async () => {
  const [replica] = ready.slow!;
  const client = openaiFor(hub, 'slow', keys.slow!.secret);
  const abortsBefore = await finishedCount(replica!.port!, 'abort');
  const stream = await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'tell me everything' }], max_tokens: 400, stream: true });
  let chunks = 0;
  let running = -1;
  for await (const _chunk of stream) {
    if (++chunks === 2) {
      // Read while the stream is open: leaving the loop ends it (the client's iterator aborts on return).
      running = await simMetric(replica!.port!, 'vllm:num_requests_running');
      break;
    }
  }
  assert.equal(running, 1, 'the backend was generating');
  stream.controller.abort();
  const started = Date.now();
  await waitForSimMetric(replica!.port!, 'vllm:num_requests_running', (v) => v === 0, 5000);
  const took = Date.now() - started;
  assert.ok(took < 1000, `the backend stopped ${took} ms after the client left`);
  assert.equal(await finishedCount(replica!.port!, 'abort'), abortsBefore + 1, 'the backend counted an aborted request');
});

test('a client that goes away before the answer starts (not streamed) cancels the backend request within a second', { timeout: 30_000 }, async () => {
  const [replica] = ready.slow!;
  const controller = new AbortController();
  // 400 tokens 50 ms apart: the answer would come in 20 s.
  const pending = postData(hub, 'slow', 'chat/completions', { key: keys.slow!.secret, body: chatBody('a long answer, please', { max_tokens: 400 }), signal: controller.signal });
  await waitForSimMetric(replica!.port!, 'vllm:num_requests_running', (v) => v === 1, 5000);
  controller.abort();
  await assert.rejects(pending);
  const took = await waitForSimMetric(replica!.port!, 'vllm:num_requests_running', (v) => v === 0, 5000);
  assert.ok(took < 1000, `the backend stopped ${took} ms after the client left`);
});

test('multi-byte UTF-8 crosses the relay intact, whatever the chunk boundaries', { timeout: 30_000 }, async () => {
  const res = await postData(hub, 'unicode', 'chat/completions', {
    key: keys.unicode!.secret,
    body: { model: UNICODE_MODEL, messages: [{ role: 'user', content: '¿Qué tal? 模型 🚀' }], max_tokens: 5000, stream: true },
  });
  assert.equal(res.status, 200);
  const bytes = Buffer.from(await res.arrayBuffer());
  // ~3 MB written at once by the backend: it crosses the tunnel in many frames, split at arbitrary bytes.
  assert.ok(bytes.length > 2_000_000, `${bytes.length} bytes`);
  const text = bytes.toString('utf8');
  assert.equal(text.includes('\uFFFD'), false, 'no replacement character: no character was cut in two');
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]');
  assert.equal(events.length, 5001, 'the role chunk and 5000 tokens');
  for (const e of events) assert.equal(JSON.parse(e.slice(6)).model, UNICODE_MODEL);
  assert.ok(text.endsWith('data: [DONE]\n\n'));
});

test(
  'a backend that does not answer within the request timeout: 504 in the OpenAI shape, and the backend request is cancelled',
  { timeout: 30_000 },
  async () => {
    const [replica] = ready.slow!;
    const started = Date.now();
    // Not streamed, 400 tokens 50 ms apart: the backend's headers would come after 20 s.
    const res = await postData(hub, 'slow', 'chat/completions', {
      key: keys.slow!.secret,
      body: chatBody('take your time', { max_tokens: 400 }),
      signal: AbortSignal.timeout((REQUEST_TIMEOUT_S + 3) * 1000),
    }).catch((err: unknown) => err);
    assert.ok(res instanceof Response, `an answer within the request timeout (${REQUEST_TIMEOUT_S} s), not ${String(res)}`);
    const err = await expectOpenAiError(res, 504, 'timeout_error');
    assert.match(err.message, /timeout/);
    assert.ok(Date.now() - started < (REQUEST_TIMEOUT_S + 2) * 1000);
    await waitForSimMetric(replica!.port!, 'vllm:num_requests_running', (v) => v === 0, 2000);
  },
);

/** vllm:request_success_total for one finished_reason, from the simulator's /metrics. */
async function finishedCount(port: number, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('vllm:request_success_total{') && l.includes(`finished_reason="${reason}"`));
  assert.ok(line);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A streamed request read slowly by a plain node:http client: one read, a pause, another read… */
function slowReader(url: string, key: string, body: unknown): Promise<{ res: IncomingMessage; received: () => number; first: () => string; closed: () => boolean; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req: ClientRequest = httpRequest(url, { method: 'POST', agent: false, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': payload.length } });
    req.once('error', reject);
    req.once('response', (res) => {
      let received = 0;
      let first = '';
      let stopped = false;
      let closed = false;
      let timer: NodeJS.Timeout | undefined;
      res.on('data', (d: Buffer) => {
        received += d.length;
        if (first.length < 4096) first += d.toString('utf8');
        // Stop reading (the socket is paused too), and read again a while later.
        res.pause();
        if (!stopped) timer = setTimeout(() => res.resume(), 200);
      });
      res.on('error', () => {});
      res.once('close', () => (closed = true));
      const stop = () => {
        stopped = true;
        clearTimeout(timer);
        req.destroy();
      };
      resolve({ res, received: () => received, first: () => first, closed: () => closed, stop });
    });
    req.end(payload);
  });
}

test('a slow reader of a fast stream: the hub holds about a window per stream, not the stream', { timeout: 20_000 }, async (t) => {
  const [replica] = ready.firehose!;
  const key = keys.firehose!.secret;
  const url = `${endpointUrl(hub, 'firehose')}/chat/completions`;
  // Warm the relay path up, so the baseline includes what any streamed request costs.
  for (let i = 0; i < 3; i++) {
    const r = await postData(hub, 'firehose', 'chat/completions', { key, body: chatBody('warm up', { max_tokens: 2000, stream: true }) });
    await r.arrayBuffer();
  }
  const pid = hub.child.pid;
  const baseline = rssKiB(pid);
  const STREAMS = 3;
  const TOKENS = 150_000;
  /** What the hub may grow by: window (256 KiB) × streams is under 1 MiB; the rest is allowance for the allocator and the GC. */
  const BOUND_MIB = 24;
  const tokensBefore = await simMetric(replica!.port!, 'vllm:generation_tokens_total');
  const readers = await Promise.all(
    Array.from({ length: STREAMS }, (_, i) => slowReader(url, key, chatBody(`stream ${i}: as much as you can`, { max_tokens: TOKENS, stream: true }))),
  );
  try {
    for (const r of readers) assert.equal(r.res.statusCode, 200);
    // The backend produces everything at once (no inter-token latency): all of it is on its way to the hub.
    await waitForSimMetric(replica!.port!, 'vllm:generation_tokens_total', (v) => v >= tokensBefore + STREAMS * TOKENS, 10_000);
    let peak = baseline;
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 200));
      peak = Math.max(peak, rssKiB(pid));
    }
    assert.ok(readers.every((r) => !r.closed()), 'every stream was still open while the hub was measured');
    // Bytes per token event, from what the client did read (the role chunk aside).
    const sample = readers[0]!.first();
    const events = sample.split('\n\n').slice(1, -1);
    assert.ok(events.length >= 2, 'the client read some events');
    const eventBytes = Math.min(...events.map((e) => Buffer.byteLength(e) + 2));
    const producedMiB = (STREAMS * TOKENS * eventBytes) / 2 ** 20;
    const readMiB = readers.reduce((s, r) => s + r.received(), 0) / 2 ** 20;
    const growthMiB = (peak - baseline) / 1024;
    t.diagnostic(`hub RSS ${(baseline / 1024).toFixed(0)} MiB, peak ${(peak / 1024).toFixed(0)} MiB; the backend produced ${producedMiB.toFixed(0)} MiB, the client read ${(readMiB * 1024).toFixed(0)} KiB`);
    assert.ok(producedMiB > 3 * BOUND_MIB, `the backend produced ${producedMiB.toFixed(0)} MiB, far more than the bound`);
    assert.ok(readMiB < producedMiB / 10, 'the client really is slow');
    assert.ok(growthMiB < BOUND_MIB, `the hub grew by ${growthMiB.toFixed(1)} MiB while ${(producedMiB - readMiB).toFixed(0)} MiB waited upstream`);
  } finally {
    for (const r of readers) r.stop();
  }
  await waitForSimMetric(replica!.port!, 'vllm:num_requests_running', (v) => v === 0, 5000);
});

test('metering: request-log rows newest first, a rate-limited key gets 429 with Retry-After, Prometheus series', { timeout: 30_000 }, async () => {
  const key = await createKey(hub, 'meter', { name: 'metered' });
  const client = openaiFor(hub, 'meter', key.secret);
  const [replica] = ready.meter!;

  const plain = await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'one' }], max_tokens: 7 });
  const stream = await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'two' }], max_tokens: 5, stream: true });
  for await (const _ of stream);
  await client.completions.create({ model: CHAT_MODEL, prompt: 'three', max_tokens: 3 });

  const rows = await eventually(
    'three request-log rows',
    async () => {
      const res = await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/default/workloads/meter/requests?limit=100');
      assert.equal(res.status, 200);
      const mine = (res.body.items as any[]).filter((r) => r.key_prefix === key.prefix);
      return mine.length === 3 ? mine : undefined;
    },
    5000,
  );
  assert.deepEqual(rows.map((r) => r.route), ['completions', 'chat/completions', 'chat/completions'], 'newest first');
  assert.ok(rows[0].id > rows[1].id && rows[1].id > rows[2].id);
  assert.ok(rows[0].at >= rows[1].at && rows[1].at >= rows[2].at);
  for (const r of rows) {
    assert.equal(r.status, 200);
    assert.equal(r.replica_id, replica!.id);
    assert.ok(typeof r.latency_ms === 'number' && r.latency_ms >= 0);
    assert.ok(r.prompt_tokens > 0, 'prompt tokens from the backend usage');
  }
  assert.deepEqual(rows.map((r) => r.completion_tokens), [3, 5, 7], "completion tokens from the backend's usage (the stream's too)");
  assert.equal(rows[2].prompt_tokens, plain.usage!.prompt_tokens);
  assert.ok(typeof rows[1].ttft_ms === 'number' && rows[1].ttft_ms >= 0 && rows[1].ttft_ms <= rows[1].latency_ms, 'the stream has a TTFT');

  // 3 requests a minute: the fourth gets 429 in the OpenAI shape, with Retry-After.
  const limited = await createKey(hub, 'meter', { name: 'limited', rate_limit_per_minute: 3 });
  for (let i = 0; i < 3; i++) {
    const r = await postData(hub, 'meter', 'chat/completions', { key: limited.secret, body: chatBody(`${i}`) });
    assert.equal(r.status, 200, `request ${i + 1} of 3`);
    await r.arrayBuffer();
  }
  const fourth = await postData(hub, 'meter', 'chat/completions', { key: limited.secret, body: chatBody('4') });
  const e429 = await expectOpenAiError(fourth, 429, 'rate_limit_error');
  assert.match(e429.message, /rate limit/);
  const retryAfter = Number(fourth.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${fourth.headers.get('retry-after')}`);
  await assert.rejects(
    openaiFor(hub, 'meter', limited.secret).chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: '5' }] }),
    (err: unknown) => err instanceof RateLimitError && err.status === 429 && err.type === 'rate_limit_error',
  );

  // Prometheus: admin token required; the workload's series are there.
  const unauthenticated = await fetch(`${hub.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  assert.equal(unauthenticated.status, 401);
  await unauthenticated.arrayBuffer();
  const metrics = await scrape();
  const series = (name: string, ...labels: string[]) =>
    metrics.split('\n').filter((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
  const value = (line: string) => Number(line.slice(line.lastIndexOf(' ') + 1));
  const ok = series('ik_requests_total', 'workload="meter"', 'route="chat/completions"', 'status="200"');
  assert.equal(ok.length, 1, metrics);
  assert.ok(value(ok[0]!) >= 5);
  assert.ok(series('ik_request_duration_seconds_bucket', 'workload="meter"', 'route="completions"').length > 0);
  assert.ok(value(series('ik_request_duration_seconds_count', 'workload="meter"', 'route="chat/completions"')[0]!) >= 5);
  assert.ok(value(series('ik_time_to_first_byte_seconds_count', 'workload="meter"', 'route="chat/completions"')[0]!) >= 5);
  const completionTokens = series('ik_tokens_total', 'workload="meter"', 'kind="completion"');
  assert.ok(completionTokens.length === 1 && value(completionTokens[0]!) >= 15);
  assert.ok(series('ik_tokens_total', 'workload="meter"', 'kind="prompt"').length === 1);
});

test('prefix affinity: one long prefix sticks to one replica, different prompts spread over both', { timeout: 30_000 }, async () => {
  const client = openaiFor(hub, 'pair', keys.pair!.secret);
  const ids = new Set(ready.pair!.map((r) => r.id));
  const system = `You are the support assistant of ACME. ${'Policies: refunds within 30 days, shipping in 2 days, warranty 2 years. '.repeat(12)}`;
  const sticky: string[] = [];
  for (let i = 0; i < 10; i++) {
    const { response } = await client.chat.completions
      .create({ model: CHAT_MODEL, messages: [{ role: 'system', content: system }, { role: 'user', content: `question ${i}` }], max_tokens: 2 })
      .withResponse();
    sticky.push(response.headers.get('x-ik-replica')!);
  }
  assert.ok(ids.has(sticky[0]!));
  assert.deepEqual(new Set(sticky).size, 1, `one replica for one prefix: ${sticky.join(', ')}`);

  const spread: string[] = [];
  for (let i = 0; i < 12; i++) {
    const { response } = await client.chat.completions
      .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: `${i}: ${randomBytes(8).toString('hex')} something else entirely` }], max_tokens: 2 })
      .withResponse();
    spread.push(response.headers.get('x-ik-replica')!);
  }
  assert.deepEqual(new Set(spread), ids, `different prompts use both replicas: ${spread.join(', ')}`);
});

test('a replica dying during a burst: every request is answered 200 by the other, and the dead one leaves rotation', { timeout: 30_000 }, async () => {
  const key = keys.pair!.secret;
  const [victim, survivor] = ready.pair!;
  const burst = Array.from({ length: 40 }, (_, i) =>
    postData(hub, 'pair', 'chat/completions', { key, body: chatBody(`burst request ${i} ${randomBytes(4).toString('hex')}`) }).then(async (res) => ({
      status: res.status,
      replica: res.headers.get('x-ik-replica'),
      body: await res.text(),
    })),
  );
  // Kill the victim while it holds requests (each waits 300 ms for its first token).
  await waitForSimMetric(victim!.port!, 'vllm:num_requests_running', (v) => v >= 1, 5000);
  const inFlight = await simMetric(victim!.port!, 'vllm:num_requests_running');
  process.kill(victim!.pid!, 'SIGKILL');
  const answers = await Promise.all(burst);
  for (const a of answers) assert.equal(a.status, 200, a.body);
  assert.ok(inFlight >= 1);
  const onSurvivor = answers.filter((a) => a.replica === survivor!.id).length;
  assert.ok(onSurvivor >= inFlight, `${onSurvivor} answers from the survivor, ${inFlight} were in flight on the victim`);
  assert.ok(warnLines(hub.child.output, 'trying another replica').some((l) => l.includes(victim!.id)), 'the hub logged the retries');

  await eventually('the dead replica to leave the ready set', async () => {
    const w = await getWorkload(hub, 'pair');
    const v = w.replicas.find((r: ReplicaInfo) => r.id === victim!.id);
    return v === undefined || v.state !== 'ready' ? true : undefined;
  }, 10_000);
  const next = await Promise.all(
    Array.from({ length: 10 }, (_, i) => postData(hub, 'pair', 'chat/completions', { key, body: chatBody(`after ${i}`) }).then(async (res) => {
      await res.arrayBuffer();
      return [res.status, res.headers.get('x-ik-replica')] as const;
    })),
  );
  assert.deepEqual(next, Array.from({ length: 10 }, () => [200, survivor!.id]));
});

/** The hub's /metrics with the admin token. */
async function scrape(): Promise<string> {
  const res = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.adminToken}` }, signal: AbortSignal.timeout(10_000) });
  assert.equal(res.status, 200);
  return res.text();
}

test(
  'a rate-limited key: its 429s are in the request log and in ik_requests_total',
  {},
  async () => {
    const limited = await createKey(hub, 'meter', { name: 'limited-metered', rate_limit_per_minute: 1 });
    for (let i = 0; i < 3; i++) await (await postData(hub, 'meter', 'chat/completions', { key: limited.secret, body: chatBody(`${i}`) })).arrayBuffer();
    const list = async () => {
      const res = await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/default/workloads/meter/requests?limit=200');
      return (res.body.items as any[]).filter((r) => r.key_prefix === limited.prefix);
    };
    // The three were answered within a few milliseconds: the log writes them in one batch.
    await eventually('the request log to be written', async () => ((await list()).length > 0 ? true : undefined), 5000);
    const rows = await list();
    assert.deepEqual(rows.map((r: { status: number }) => r.status), [429, 429, 200], 'the throttled requests are in the request log');
    const metrics = await scrape();
    assert.ok(metrics.split('\n').some((l) => l.startsWith('ik_requests_total{') && l.includes('workload="meter"') && l.includes('status="429"')), 'ik_requests_total counts the 429s');
  },
);
