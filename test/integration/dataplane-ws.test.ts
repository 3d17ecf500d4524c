// Integration: WebSocket clients of the data plane (DESIGN §4.7) against a real hub, a real agent and the simulator:
// the message protocol on /v1/ws (several requests in flight, cancel, auth, bad messages, a slow reader) and raw
// relaying of any other WebSocket path (the simulator's /v1/realtime echo).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startAgent, startHub, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { allReady, backendGet, ensure, vllmSpec, waitForReplicas } from '../helpers/workloads.ts';

const MODEL = 'Qwen/Qwen2.5-0.5B-Instruct';
/** A tenth of a GPU each, so both workloads fit on the one box. */
const CLAIM = '--gpu-memory-utilization 0.1';

let hub: TestHub;
const keys = { fast: '', slow: '' };
const ports = { fast: 0, slow: 0 };
const replicas = { fast: '', slow: '' };

before(async () => {
  hub = await startHub();
  startAgent({ hub, name: 'ws-box', smi: 'h100-x2' });
  await waitForWorker(hub.url, hub.adminToken, 'ws-box', (w) => w.state === 'ready');
  // fast: no delays and a long context (the slow-reader test streams a long answer); slow: 50 ms per token.
  await ensure(hub, vllmSpec('ws-fast', MODEL, { task_type: 'text2text', command: `vllm serve ${MODEL} ${CLAIM} --max-model-len 1000000` }));
  await ensure(hub, vllmSpec('ws-slow', MODEL, { task_type: 'text2text', command: `vllm serve ${MODEL} ${CLAIM}`, env: { IK_SIM_ITL_MS: '50' } }));
  for (const slug of ['fast', 'slow'] as const) {
    const [replica] = await waitForReplicas(hub, `ws-${slug}`, allReady(1));
    ports[slug] = replica!.port!;
    replicas[slug] = replica!.id;
    const key = await api(hub.url, hub.adminToken, 'POST', `/api/v1/projects/default/workloads/ws-${slug}/keys`, {});
    assert.equal(key.status, 201, JSON.stringify(key.body));
    keys[slug] = key.body.secret;
  }
});
after(() => hub.stop());

type Msg = { type: string; id: string | null; [k: string]: any };

/** A client of the message protocol that keeps every message, so tests can wait for the ones they expect. */
class MessageClient {
  readonly messages: Msg[] = [];
  private wake: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)));
      for (const w of this.wake.splice(0)) w();
    });
    ws.on('close', () => {
      for (const w of this.wake.splice(0)) w();
    });
  }

  static open(slug: string, opts: { key?: string; protocols?: string[] } = {}): Promise<MessageClient> {
    const ws = new WebSocket(`${wsUrl(slug)}/ws`, opts.protocols ?? [], { headers: opts.key ? { authorization: `Bearer ${opts.key}` } : {} });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new MessageClient(ws)));
      ws.once('error', reject);
    });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** The first message (from the start of the socket) that matches, waiting for it if need be. */
  async waitFor(pred: (m: Msg) => boolean, timeoutMs = 10_000): Promise<Msg> {
    const deadline = Date.now() + timeoutMs;
    for (let seen = 0; ; ) {
      for (; seen < this.messages.length; seen++) if (pred(this.messages[seen]!)) return this.messages[seen]!;
      if (this.ws.readyState !== WebSocket.OPEN) throw new Error(`socket closed; messages: ${JSON.stringify(this.messages).slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages).slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.wake.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Every message of one request, once its `end` or `error` arrived. */
  async finished(id: string, timeoutMs?: number): Promise<Msg[]> {
    await this.waitFor((m) => m.id === id && (m.type === 'end' || m.type === 'error'), timeoutMs);
    return this.messages.filter((m) => m.id === id);
  }

  /** Closes (a client that stopped reading is cut off after a moment). */
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => this.ws.terminate(), 2000);
      this.ws.once('close', () => (clearTimeout(t), resolve()));
      this.ws.resume();
      this.ws.close();
    });
  }
}

function wsUrl(slug: string): string {
  return `${hub.url.replace(/^http/, 'ws')}/endpoint/default/${slug}/v1`;
}

/** The same request over HTTP: the SSE data objects (a stream) or the JSON body. */
async function overHttp(slug: string, key: string, route: string, body: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${hub.url}/endpoint/default/${slug}/v1/${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  if (body.stream !== true) return JSON.parse(text);
  return text
    .split('\n\n')
    .map((e) => e.replace(/^data: /, ''))
    .filter((d) => d && d !== '[DONE]')
    .map((d) => JSON.parse(d));
}

/** What must match between two runs of a deterministic request: everything but the ids and timestamps. */
const content = (chunk: any) => ({ model: chunk.model, object: chunk.object, choices: chunk.choices, usage: chunk.usage });

/** The upgrade refused: its HTTP status and body. */
function refusedUpgrade(url: string, opts: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {} });
    ws.once('open', () => (ws.close(), reject(new Error('the upgrade was accepted'))));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        ws.terminate();
      });
    });
    ws.once('error', () => {});
  });
}

/** A value of the simulator's /metrics (the first series of that name). */
async function metric(port: number, name: string): Promise<number> {
  const metrics = await backendGet(port, '/metrics');
  const line = String(metrics.body).split('\n').find((l) => l.startsWith(name));
  return Number(line?.split(' ').pop());
}

const running = (port: number) => metric(port, 'vllm:num_requests_running');

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

test('several requests in flight on one socket each get start, chunks and end, as over HTTP', async () => {
  const client = await MessageClient.open('ws-slow', { key: keys.slow });
  try {
    const chat = { model: MODEL, messages: [{ role: 'user', content: 'tell me about rivers' }], max_tokens: 8, stream: true };
    const withUsage = { model: MODEL, prompt: 'a stone and a cloud', max_tokens: 6, stream: true, stream_options: { include_usage: true } };
    const plain = { model: MODEL, messages: [{ role: 'user', content: 'say something' }], max_tokens: 5 };
    client.send({ type: 'request', id: 'chat', route: 'chat/completions', body: chat });
    client.send({ type: 'request', id: 'usage', route: 'completions', body: withUsage });
    client.send({ type: 'request', id: 'plain', route: '/v1/chat/completions', body: plain });
    const [a, b, c] = await Promise.all([client.finished('chat'), client.finished('usage'), client.finished('plain')]);

    for (const msgs of [a, b, c]) {
      assert.deepEqual(msgs.map((m) => m.type).filter((t, i, all) => t !== all[i - 1]), ['start', 'chunk', 'end'], JSON.stringify(msgs));
      assert.equal(msgs[0]!.status, 200);
      assert.equal(msgs[0]!.replica, replicas.slow);
    }
    // In flight together: the streams' chunks interleave (each takes ~400 ms at 50 ms a token).
    const order = client.messages.filter((m) => m.type === 'chunk').map((m) => m.id);
    assert.ok(order.indexOf('usage') < order.lastIndexOf('chat') && order.indexOf('chat') < order.lastIndexOf('usage'), order.join(','));

    // Same content as over HTTP; the hub's own usage request leaves no usage-only chunk behind.
    const chatChunks = a.filter((m) => m.type === 'chunk').map((m) => m.data);
    assert.deepEqual(chatChunks.map(content), (await overHttp('ws-slow', keys.slow, 'chat/completions', chat)).map(content));
    assert.ok(chatChunks.every((d) => d.usage === undefined && d.choices.length > 0), 'no usage chunk the client did not ask for');
    const chatEnd = a.at(-1)!;
    assert.equal(chatEnd.usage.completion_tokens, 8);
    assert.ok(chatEnd.usage.prompt_tokens > 0);

    // The client asked for usage itself: it gets the usage chunk, and `end` repeats it.
    const usageChunks = b.filter((m) => m.type === 'chunk').map((m) => m.data);
    assert.deepEqual(usageChunks.map(content), (await overHttp('ws-slow', keys.slow, 'completions', withUsage)).map(content));
    assert.deepEqual(usageChunks.at(-1)!.choices, []);
    assert.deepEqual(b.at(-1)!.usage, usageChunks.at(-1)!.usage);

    // Not streamed: one chunk with the whole body.
    const plainChunks = c.filter((m) => m.type === 'chunk');
    assert.equal(plainChunks.length, 1);
    assert.equal(c[0]!.content_type, 'application/json');
    assert.deepEqual(content(plainChunks[0]!.data), content(await overHttp('ws-slow', keys.slow, 'chat/completions', plain)));
    assert.deepEqual(c.at(-1)!.usage, plainChunks[0]!.data.usage);

    // Metered like HTTP requests, under ws: routes.
    type Row = { route: string; status: number; completion_tokens: number | null; replica_id: string | null };
    const log = await eventually('request log rows', async () => {
      const res = await api<{ items: Row[] }>(hub.url, hub.adminToken, 'GET', '/api/v1/projects/default/workloads/ws-slow/requests?limit=50');
      const rows = res.body.items.filter((r) => r.route.startsWith('ws:'));
      return rows.length >= 3 ? rows : undefined;
    });
    const chatRow = log.find((r) => r.route === 'ws:chat/completions' && r.completion_tokens === 8);
    assert.ok(chatRow, JSON.stringify(log));
    assert.equal(chatRow.status, 200);
    assert.equal(chatRow.replica_id, replicas.slow);
    assert.ok(log.some((r) => r.route === 'ws:completions' && r.completion_tokens === 6));
  } finally {
    await client.close();
  }
});

test('cancel stops a request upstream: no more chunks, an error saying so, the backend stops generating', async () => {
  const client = await MessageClient.open('ws-slow', { key: keys.slow });
  try {
    const body = { model: MODEL, messages: [{ role: 'user', content: 'a long story' }], max_tokens: 200, stream: true };
    client.send({ type: 'request', id: 's1', route: 'chat/completions', body });
    await client.waitFor((m) => m.id === 's1' && m.type === 'chunk' && client.messages.filter((x) => x.id === 's1' && x.type === 'chunk').length >= 2);
    assert.equal(await running(ports.slow), 1);
    client.send({ type: 'cancel', id: 's1' });
    const cancelled = await client.waitFor((m) => m.id === 's1' && m.type === 'error');
    assert.equal(cancelled.error.code, 'cancelled');
    assert.equal(cancelled.status, 499);
    const at = client.messages.indexOf(cancelled);
    await eventually('the backend stops generating', async () => ((await running(ports.slow)) === 0 ? true : undefined), 1000, 50);
    // Nothing more for s1 (a token is 50 ms: any leak would show by now).
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(client.messages.slice(at + 1).filter((m) => m.id === 's1'), []);

    // A request cancelled before the backend answered (not streamed: headers come with the whole answer).
    client.send({ type: 'request', id: 'p1', route: 'chat/completions', body: { ...body, stream: false } });
    await eventually('the backend runs p1', async () => ((await running(ports.slow)) === 1 ? true : undefined), 5000, 20);
    client.send({ type: 'cancel', id: 'p1' });
    const p1 = await client.finished('p1');
    assert.deepEqual(p1.map((m) => [m.type, m.error?.code]), [['error', 'cancelled']]);
    await eventually('the backend drops p1', async () => ((await running(ports.slow)) === 0 ? true : undefined), 1000, 50);

    // A cancel for a request that is not in flight (it raced its end) is a quiet no-op; the socket carries on.
    client.send({ type: 'cancel', id: 'p1' });
    client.send({ type: 'request', id: 'after', route: 'completions', body: { model: MODEL, prompt: 'x', max_tokens: 2 } });
    assert.equal((await client.finished('after')).at(-1)!.type, 'end');
    assert.equal(client.messages.filter((m) => m.id === 'p1').length, 1);
  } finally {
    await client.close();
  }
});

test('auth: a key as header or as the ik.key. subprotocol; none or another workload\'s is a 401 before any upgrade', async () => {
  const none = await refusedUpgrade(`${wsUrl('ws-fast')}/ws`);
  assert.equal(none.status, 401);
  assert.equal(none.body.error.type, 'authentication_error');
  assert.match(none.body.error.message, /missing API key/);

  const other = await refusedUpgrade(`${wsUrl('ws-fast')}/ws`, { headers: { authorization: `Bearer ${keys.slow}` } });
  assert.equal(other.status, 401);
  assert.equal(other.body.error.code, 'invalid_api_key');
  const otherAsProtocol = await refusedUpgrade(`${wsUrl('ws-fast')}/ws`, { protocols: [`ik.key.${keys.slow}`] });
  assert.equal(otherAsProtocol.status, 401);
  // The raw relay checks the key the same way.
  assert.equal((await refusedUpgrade(`${wsUrl('ws-fast')}/realtime`)).status, 401);
  // A workload that does not exist answers like a wrong key.
  assert.equal((await refusedUpgrade(`${wsUrl('nope')}/ws`, { headers: { authorization: `Bearer ${keys.fast}` } })).status, 401);

  // As a browser sends it: the key as a subprotocol, which the hub selects.
  const protocol = `ik.key.${keys.fast}`;
  const browser = await MessageClient.open('ws-fast', { protocols: [protocol] });
  try {
    assert.equal(browser.ws.protocol, protocol);
    browser.send({ type: 'request', id: 'b', route: 'completions', body: { model: MODEL, prompt: 'hi', max_tokens: 3 } });
    const msgs = await browser.finished('b');
    assert.deepEqual(msgs.map((m) => m.type), ['start', 'chunk', 'end']);
  } finally {
    await browser.close();
  }
  // X-API-Key works as on HTTP.
  const viaHeader = new WebSocket(`${wsUrl('ws-fast')}/ws`, { headers: { 'x-api-key': keys.fast } });
  await new Promise((resolve, reject) => (viaHeader.once('open', resolve), viaHeader.once('error', reject)));
  viaHeader.close();
});

test('bad messages get error messages naming the problem, and the socket stays open', async () => {
  const client = await MessageClient.open('ws-slow', { key: keys.slow });
  try {
    const before = () => client.messages.length;
    const nextError = async (send: () => void) => {
      const n = before();
      send();
      return client.waitFor((m) => client.messages.indexOf(m) >= n && m.type === 'error');
    };
    const notJson = await nextError(() => client.send('{not json'));
    assert.deepEqual([notJson.id, notJson.status, notJson.error.code], [null, 400, 'invalid_json']);
    const unknown = await nextError(() => client.send({ type: 'subscribe', id: 'u1' }));
    assert.deepEqual([unknown.id, unknown.error.code], ['u1', 'unknown_message_type']);
    assert.match(unknown.error.message, /"subscribe"/);
    const noId = await nextError(() => client.send({ type: 'request', route: 'chat/completions', body: {} }));
    assert.deepEqual([noId.id, noId.error.code], [null, 'missing_id']);
    const noBody = await nextError(() => client.send({ type: 'request', id: 'nb', route: 'chat/completions' }));
    assert.deepEqual([noBody.id, noBody.error.code, noBody.error.param], ['nb', 'invalid_message', 'body']);
    const notServed = await nextError(() => client.send({ type: 'request', id: 'emb', route: 'embeddings', body: { input: 'x' } }));
    assert.deepEqual([notServed.id, notServed.status, notServed.error.code], ['emb', 404, 'route_not_served']);
    assert.match(notServed.error.message, /chat\/completions, completions/);
    const binary = await nextError(() => client.ws.send(Buffer.from([1, 2, 3])));
    assert.equal(binary.error.code, 'binary_message');
    // A backend's own refusal (the prompt is too long for the model) comes as start with its status, then error.
    const tooLong = await nextError(() => client.send({ type: 'request', id: 'long', route: 'completions', body: { model: MODEL, prompt: 'x', max_tokens: 100000 } }));
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.error.message, /maximum context length/);
    assert.deepEqual(client.messages.filter((m) => m.id === 'long').map((m) => m.type), ['start', 'error']);

    // A second request with the id of one in flight is refused; the first carries on.
    client.send({ type: 'request', id: 'dup', route: 'completions', body: { model: MODEL, prompt: 'one', max_tokens: 4, stream: true } });
    await client.waitFor((m) => m.id === 'dup' && m.type === 'start');
    const dup = await nextError(() => client.send({ type: 'request', id: 'dup', route: 'completions', body: { model: MODEL, prompt: 'two', max_tokens: 4 } }));
    // Not under the id itself: the client would take it for the end of the request in flight.
    assert.deepEqual([dup.id, dup.error.code, dup.error.param], [null, 'duplicate_id', 'id']);
    assert.match(dup.error.message, /"dup" is already in flight/);
    const first = await client.finished('dup');
    assert.equal(first.at(-1)!.type, 'end');
    assert.equal(first.filter((m) => m.type === 'start').length, 1);

    // At most 64 requests in flight on one socket: the 65th is refused, the others run.
    for (let i = 0; i <= 64; i++) client.send({ type: 'request', id: `m${i}`, route: 'completions', body: { model: MODEL, prompt: `n${i}`, max_tokens: 4 } });
    const tooMany = await client.waitFor((m) => m.id === 'm64');
    assert.deepEqual([tooMany.type, tooMany.status, tooMany.error.code], ['error', 429, 'too_many_in_flight']);
    for (let i = 0; i < 64; i++) assert.equal((await client.finished(`m${i}`)).at(-1)!.type, 'end');

    assert.equal(client.ws.readyState, WebSocket.OPEN);
  } finally {
    await client.close();
  }
});

test('any other WebSocket path is relayed frame for frame to the backend', async () => {
  const ws = new WebSocket(`${wsUrl('ws-fast')}/realtime?session=1`, ['echo.v1'], { headers: { authorization: `Bearer ${keys.fast}` } });
  const upgrade = new Promise<Record<string, unknown>>((resolve) => ws.once('upgrade', (res) => resolve(res.headers)));
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const headers = await upgrade;
  assert.equal(headers['x-ik-replica'], replicas.fast);
  assert.equal(headers['x-ik-sim-replica'], replicas.fast, 'the backend answered the upgrade');
  assert.equal(ws.protocol, 'echo.v1', "the backend's subprotocol choice passes through");

  const received: Array<{ data: Buffer; binary: boolean }> = [];
  ws.on('message', (data, binary) => received.push({ data: Buffer.from(data as Buffer), binary }));
  const text = 'hello ✓ realtime';
  const big = randomBytes(300 * 1024);
  const small = Buffer.from([0, 1, 2, 255]);
  ws.send(text);
  ws.send(big);
  ws.send(small);
  await eventually('three echoes', async () => (received.length === 3 ? true : undefined), 5000, 20);
  assert.deepEqual(received.map((r) => r.binary), [false, true, true]);
  assert.equal(received[0]!.data.toString('utf8'), text);
  assert.ok(received[1]!.data.equals(big));
  assert.ok(received[2]!.data.equals(small));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(4001, 'done');
  assert.equal(await closed, 4001, 'the close handshake passes through');

  // The key as the only subprotocol (a browser): the hub selects it, the backend never sees it.
  const protocol = `ik.key.${keys.fast}`;
  const browser = new WebSocket(`${wsUrl('ws-fast')}/realtime`, [protocol]);
  await new Promise((resolve, reject) => (browser.once('open', resolve), browser.once('error', reject)));
  assert.equal(browser.protocol, protocol);
  browser.send('ping');
  const echoed = await new Promise<string>((resolve) => browser.once('message', (d) => resolve(String(d))));
  assert.equal(echoed, 'ping');
  browser.close();

  // A path the backend does not serve: its refusal reaches the client as is.
  const refused = await refusedUpgrade(`${wsUrl('ws-fast')}/nope`, { headers: { authorization: `Bearer ${keys.fast}` } });
  assert.deepEqual(refused, { status: 404, body: { detail: 'Not Found' } });
  const escape = await refusedUpgrade(`${wsUrl('ws-fast')}/%2e%2e/metrics`, { headers: { authorization: `Bearer ${keys.fast}` } });
  assert.equal(escape.status, 404);
});

test('a client that reads slowly slows its stream; the hub does not buffer it', { timeout: 20_000 }, async () => {
  const client = await MessageClient.open('ws-fast', { key: keys.fast });
  try {
    // Warm the path up, then measure.
    client.send({ type: 'request', id: 'warm', route: 'completions', body: { model: MODEL, prompt: 'warm', max_tokens: 20_000, stream: true } });
    await client.finished('warm');
    const pid = hub.child.pid;
    const baseline = rssKiB(pid);
    const generatedBefore = await metric(ports.fast, 'vllm:generation_tokens_total');

    // ~22 MB of SSE, which the simulator writes at once: only the hub's bounds can hold it back.
    const tokens = 100_000;
    client.ws.pause();
    client.send({ type: 'request', id: 'big', route: 'completions', body: { model: MODEL, prompt: 'slow reader', max_tokens: tokens, stream: true } });
    const sentAt = Date.now();
    const boundMiB = 10;
    const growthMiB = () => (rssKiB(pid) - baseline) / 1024;
    let peak = 0;
    const sample = () => {
      peak = Math.max(peak, growthMiB());
      assert.ok(peak < boundMiB, `the hub grew by ${peak.toFixed(1)} MiB while its client did not read`);
    };
    while ((await metric(ports.fast, 'vllm:generation_tokens_total')) < generatedBefore + tokens) {
      sample();
      await new Promise((r) => setTimeout(r, 100));
    }
    // The tunnel moves bytes about as fast as the simulator makes them: in as long again, an unbounded hub would have
    // taken in most of the answer. This one keeps to its windows.
    for (const until = Date.now() + Math.max(2500, Date.now() - sentAt); Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      sample();
    }
    assert.ok(client.messages.filter((m) => m.id === 'big').length < 100, 'the client read nothing meanwhile');

    // Reading again, the client gets the stream where it stopped, in order.
    client.ws.resume();
    let got = 0;
    await client.waitFor((m) => m.id === 'big' && m.type === 'chunk' && ++got === 5000, 10_000);
    const text = client.messages.filter((m) => m.id === 'big' && m.type === 'chunk').map((m) => m.data.choices[0].text).join('');
    const http = await overHttp('ws-fast', keys.fast, 'completions', { model: MODEL, prompt: 'slow reader', max_tokens: 5000, stream: true });
    assert.ok(text.startsWith(http.map((c: any) => c.choices[0]?.text ?? '').join('')), 'the same tokens, none lost');
  } finally {
    // Closing the socket cancels the rest upstream.
    await client.close();
  }
});
