// DataClient against a small OpenAI-shaped server standing in for the hub's data plane (an edge fake until the data plane exists).
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { AuthenticationError, DataClient, HubUnreachableError, IkHubError, NotFoundError, RateLimitError } from 'ikhub';

const KEY = 'ik_live_supportbotkey0000000000000000000000000';
const BILLING_KEY = 'ik_live_billingkey00000000000000000000000000000';

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: any;
}

const seen: Seen[] = [];
let server: Server;
let hubUrl: string;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function openAiError(res: ServerResponse, status: number, message: string, type: string, code: string | null, param: string | null = null, headers: Record<string, string> = {}) {
  send(res, status, { error: { message, type, code, param } }, headers);
}

/** Answers like the data plane will: OpenAI shapes, keys bound to one workload, errors in the OpenAI error shape. */
async function handle(req: IncomingMessage, res: ServerResponse) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  const body = raw ? JSON.parse(raw) : undefined;
  const path = req.url ?? '';
  seen.push({ method: req.method ?? '', path, authorization: req.headers.authorization, contentType: req.headers['content-type'], body });

  const m = /^\/endpoint\/([^/]+)\/([^/]+)\/v1\/(.+)$/.exec(path);
  if (!m) return openAiError(res, 404, `no route ${path}`, 'not_found_error', 'ROUTE_NOT_FOUND');
  const [, project, workload, route] = m;
  const keyFor: Record<string, string> = { 'support-bot': KEY, billing: BILLING_KEY, busy: KEY, picky: KEY };
  if (project !== 'acme' || !keyFor[workload!]) return openAiError(res, 404, `no workload ${project}/${workload}`, 'not_found_error', 'WORKLOAD_NOT_FOUND');
  if (req.headers.authorization !== `Bearer ${keyFor[workload!]}`) {
    return openAiError(res, 401, 'invalid data key: it does not serve this workload', 'authentication_error', 'UNAUTHORIZED');
  }
  if (workload === 'busy') return openAiError(res, 429, 'rate limit of 60 requests/minute reached', 'rate_limit_error', 'RATE_LIMITED', null, { 'retry-after': '7' });
  if (workload === 'picky') return openAiError(res, 400, "max_tokens must be at most 4096", 'invalid_request_error', null, 'max_tokens');

  if (route === 'chat/completions') {
    const last = body.messages[body.messages.length - 1];
    return send(res, 200, {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: `echo: ${last.content}` }, finish_reason: 'length' }],
      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
    });
  }
  if (route === 'embeddings') {
    const inputs: string[] = typeof body.input === 'string' ? [body.input] : body.input;
    // Out of order on purpose: the SDK must return vectors in input order.
    const data = inputs.map((text, index) => ({ object: 'embedding', index, embedding: [index, text.length, 0.5] })).reverse();
    return send(res, 200, { object: 'list', model: body.model, data, usage: { prompt_tokens: 6, total_tokens: 6 } });
  }
  return openAiError(res, 404, `route ${route} is not served`, 'not_found_error', 'ROUTE_NOT_FOUND');
}

before(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const lastSeen = () => seen[seen.length - 1]!;

describe('DataClient', () => {
  it('runs the EXAMPLES.md data-plane snippet as written', async () => {
    const saved = { IK_HUB_URL: process.env.IK_HUB_URL, IK_PROJECT: process.env.IK_PROJECT, SUPPORT_IK_LIVE: process.env.SUPPORT_IK_LIVE };
    process.env.IK_HUB_URL = hubUrl;
    process.env.SUPPORT_IK_LIVE = KEY;
    try {
      const data = DataClient.fromEnv({ project: 'acme' });
      const ep = data.endpoint('support-bot', { apiKey: process.env.SUPPORT_IK_LIVE });
      const out = await ep.generateText({ prompt: 'Hola, ¿cuál es mi saldo?', temperature: 0.2, maxTokens: 300 });
      assert.equal(out.text, 'echo: Hola, ¿cuál es mi saldo?');
      assert.equal(out.model, 'support-bot');
      const chat = lastSeen();
      assert.equal(chat.method, 'POST');
      assert.equal(chat.path, '/endpoint/acme/support-bot/v1/chat/completions');
      assert.equal(chat.authorization, `Bearer ${KEY}`);
      assert.match(chat.contentType ?? '', /^application\/json/);
      assert.deepEqual(chat.body, {
        model: 'support-bot',
        messages: [{ role: 'user', content: 'Hola, ¿cuál es mi saldo?' }],
        temperature: 0.2,
        max_tokens: 300,
      });

      const emb = await data.endpoint('billing', { apiKey: BILLING_KEY }).embed({ input: ['invoice #42', 'refund policy'] });
      assert.equal(emb.embeddings.length, 2);
      assert.equal(emb.model, 'billing');
      assert.equal(lastSeen().path, '/endpoint/acme/billing/v1/embeddings');
      assert.equal(lastSeen().authorization, `Bearer ${BILLING_KEY}`);
      assert.deepEqual(lastSeen().body, { model: 'billing', input: ['invoice #42', 'refund policy'] });
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('generateText parses the completion: text, model, finish reason and camelCase usage', async () => {
    const ep = new DataClient({ hubUrl, project: 'acme' }).endpoint('support-bot', { apiKey: KEY });
    const out = await ep.generateText({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'and now?' },
      ],
      system: 'be brief',
      model: 'my-lora',
      stop: ['\n\n'],
    });
    assert.deepEqual(out, { text: 'echo: and now?', model: 'my-lora', finishReason: 'length', usage: { promptTokens: 9, completionTokens: 3, totalTokens: 12 } });
    assert.deepEqual(lastSeen().body, {
      model: 'my-lora',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
        { role: 'user', content: 'and now?' },
      ],
      stop: ['\n\n'],
    });
  });

  it('embed returns one vector per input in input order, also for a single string', async () => {
    const ep = new DataClient({ hubUrl, project: 'acme' }).endpoint('billing', { apiKey: BILLING_KEY });
    const many = await ep.embed({ input: ['a', 'bbb', 'cc'] });
    assert.deepEqual(many.embeddings, [[0, 1, 0.5], [1, 3, 0.5], [2, 2, 0.5]]);
    assert.deepEqual(many.usage, { promptTokens: 6, totalTokens: 6 });
    const one = await ep.embed({ input: 'hello', model: 'BAAI/bge-large-en-v1.5' });
    assert.deepEqual(one.embeddings, [[0, 5, 0.5]]);
    assert.equal(one.model, 'BAAI/bge-large-en-v1.5');
  });

  it('baseUrl is the OpenAI base URL of the workload, with path parts encoded', () => {
    const data = new DataClient({ hubUrl: `${hubUrl}/`, project: 'acme' });
    assert.equal(data.endpoint('support-bot', { apiKey: KEY }).baseUrl, `${hubUrl}/endpoint/acme/support-bot/v1`);
    assert.equal(data.endpoint('a b/c', { apiKey: KEY }).baseUrl, `${hubUrl}/endpoint/acme/a%20b%2Fc/v1`);
  });

  it('turns an OpenAI-shaped error into IkHubError with its message, type, code and param', async () => {
    const ep = new DataClient({ hubUrl, project: 'acme' }).endpoint('picky', { apiKey: KEY });
    const err = await ep.generateText({ prompt: 'x', maxTokens: 100_000 }).then(
      () => assert.fail('expected an error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof IkHubError);
    assert.equal(err.status, 400);
    assert.equal(err.message, 'max_tokens must be at most 4096');
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.code, 'invalid_request_error', 'a null code falls back to the type');
    assert.equal(err.param, 'max_tokens');
  });

  it('maps statuses to typed errors: 401 → AuthenticationError, 404 → NotFoundError, 429 → RateLimitError with retryAfter', async () => {
    const data = new DataClient({ hubUrl, project: 'acme' });
    await assert.rejects(data.endpoint('support-bot', { apiKey: BILLING_KEY }).generateText({ prompt: 'x' }), (e: unknown) => {
      assert.ok(e instanceof AuthenticationError);
      assert.equal(e.status, 401);
      assert.equal(e.code, 'UNAUTHORIZED');
      assert.match(e.message, /does not serve this workload/);
      return true;
    });
    await assert.rejects(data.endpoint('nope', { apiKey: KEY }).embed({ input: 'x' }), (e: unknown) => {
      assert.ok(e instanceof NotFoundError);
      assert.equal(e.code, 'WORKLOAD_NOT_FOUND');
      return true;
    });
    await assert.rejects(data.endpoint('busy', { apiKey: KEY }).generateText({ prompt: 'x' }), (e: unknown) => {
      assert.ok(e instanceof RateLimitError);
      assert.equal(e.retryAfter, 7);
      assert.equal(e.message, 'rate limit of 60 requests/minute reached');
      return true;
    });
  });

  it('refuses an endpoint without a data key, naming what to pass', () => {
    const data = new DataClient({ hubUrl, project: 'acme' });
    assert.throws(() => data.endpoint('support-bot', { apiKey: undefined }), /no data key for endpoint acme\/support-bot: pass \{ apiKey/);
  });

  it('fromEnv names IK_HUB_URL when it is missing; an explicit hubUrl wins', () => {
    const saved = process.env.IK_HUB_URL;
    delete process.env.IK_HUB_URL;
    try {
      assert.throws(() => DataClient.fromEnv({ project: 'acme' }), /IK_HUB_URL is not set/);
      assert.equal(DataClient.fromEnv({ project: 'acme', hubUrl }).hubUrl, hubUrl);
    } finally {
      if (saved !== undefined) process.env.IK_HUB_URL = saved;
    }
  });

  it('an endpoint nobody answers on is HubUnreachableError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const ep = new DataClient({ hubUrl: `http://127.0.0.1:${port}`, project: 'acme' }).endpoint('support-bot', { apiKey: KEY });
    await assert.rejects(ep.generateText({ prompt: 'x' }), (e: unknown) => {
      assert.ok(e instanceof HubUnreachableError);
      assert.equal(e.code, 'HUB_UNREACHABLE');
      assert.equal(e.status, null);
      return true;
    });
  });
});
