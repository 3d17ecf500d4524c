// The simulator in its vLLM flavour, as a process: OpenAI routes in shape, SSE framing, models, LoRA, errors, determinism.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { makeTestWav, metric, postJson, sseEvents, startSim, type SimProcess } from './harness.ts';

type Json = Record<string, any>;

describe('ik-sim vllm', () => {
  let sim: SimProcess; // served as "base" and "alias", LoRA on, runtime updates allowed
  let plain: SimProcess; // `vllm serve base`, no LoRA flags, runtime updates allowed by env
  let noEnv: SimProcess; // --enable-lora but VLLM_ALLOW_RUNTIME_LORA_UPDATING unset
  before(async () => {
    [sim, plain, noEnv] = await Promise.all([
      startSim(['vllm', 'serve', 'org/Base-7B', '--served-model-name', 'base', 'alias', '--enable-lora', '--max-loras', '2', '-tp', '2', '--dtype', 'bfloat16', '--some-unknown-flag', 'x'], {
        IK_REPLICA_ID: 'rep-1',
        VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True',
      }),
      startSim(['vllm', 'serve', 'base'], { VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1' }),
      startSim(['vllm', 'serve', 'base', '--enable-lora'], { VLLM_ALLOW_RUNTIME_LORA_UPDATING: '' }),
    ]);
  });
  const chat = (s: SimProcess, body: Json) => postJson(`${s.url}/v1/chat/completions`, body);
  const messages = [{ role: 'user', content: 'Say hello' }];

  test('health, version, startup line and the replica header on every answer', async () => {
    const health = await fetch(`${sim.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(health.headers.get('x-ik-sim-replica'), 'rep-1');
    assert.equal((await fetch(`${plain.url}/health`)).headers.get('x-ik-sim-replica'), 'sim');
    const missing = await fetch(`${sim.url}/no/such/route`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { detail: 'Not Found' });
    assert.equal(missing.headers.get('x-ik-sim-replica'), 'rep-1');
    assert.match(((await (await fetch(`${sim.url}/version`)).json()) as Json).version, /^\d+\.\d+/);
    assert.match(sim.output(), new RegExp(`INFO: +Uvicorn running on http://127\\.0\\.0\\.1:${sim.port}`));
    assert.match(sim.output(), /"GET \/health HTTP\/1.1" 200 OK/);
  });

  test('/v1/models lists every served name', async () => {
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as Json;
    assert.equal(models.object, 'list');
    assert.deepEqual(models.data.map((m: Json) => m.id), ['base', 'alias']);
    const m = models.data[0];
    assert.equal(m.object, 'model');
    assert.equal(m.root, 'org/Base-7B');
    assert.equal(m.parent, null);
    assert.equal(m.owned_by, 'vllm');
    assert.equal(typeof m.created, 'number');
    assert.equal(m.max_model_len, 4096);
  });

  test('chat completion: shape, usage, echoed model, max_tokens, determinism', async () => {
    const a = (await (await chat(sim, { model: 'alias', messages, max_tokens: 5 })).json()) as Json;
    assert.match(a.id, /^chatcmpl-/);
    assert.equal(a.object, 'chat.completion');
    assert.equal(a.model, 'alias');
    assert.equal(a.choices[0].message.role, 'assistant');
    assert.equal(a.choices[0].finish_reason, 'length');
    assert.equal(a.choices[0].message.content.split(' ').length, 5);
    assert.equal(a.usage.completion_tokens, 5);
    assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + 5);
    // Same request → same text, on this replica, under the other name, and in another process serving "base".
    const again = (await (await chat(sim, { model: 'base', messages, max_tokens: 5 })).json()) as Json;
    const elsewhere = (await (await chat(plain, { model: 'base', messages, max_tokens: 5 })).json()) as Json;
    assert.equal(again.choices[0].message.content, a.choices[0].message.content);
    assert.equal(elsewhere.choices[0].message.content, a.choices[0].message.content);
    const other = (await (await chat(sim, { model: 'base', messages: [{ role: 'user', content: 'Something else' }], max_tokens: 5 })).json()) as Json;
    assert.notEqual(other.choices[0].message.content, a.choices[0].message.content);
    const dflt = (await (await chat(sim, { messages })).json()) as Json;
    assert.equal(dflt.model, 'base');
    assert.equal(dflt.usage.completion_tokens, 16);
    assert.equal(dflt.choices[0].finish_reason, 'stop');
  });

  test('chat streaming: SSE framing, role first, finish on the last token, include_usage chunk, [DONE]', async () => {
    const res = await chat(sim, { model: 'base', messages, max_tokens: 4, stream: true, stream_options: { include_usage: true } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const events = sseEvents(await res.text());
    assert.equal(events.at(-1), '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Json);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'base' && c.id === chunks[0]!.id));
    assert.deepEqual(chunks[0]!.choices[0].delta, { role: 'assistant', content: '' });
    const tokens = chunks.slice(1, -1);
    assert.equal(tokens.length, 4);
    assert.deepEqual(tokens.map((c) => c.choices[0].finish_reason), [null, null, null, 'length']);
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage.completion_tokens, 4);
    // The streamed text is the non-streamed text.
    const whole = (await (await chat(sim, { model: 'base', messages, max_tokens: 4 })).json()) as Json;
    assert.equal(tokens.map((c) => c.choices[0].delta.content).join(''), whole.choices[0].message.content);
    // Without include_usage there is no usage chunk.
    const plainEvents = sseEvents(await (await chat(sim, { model: 'base', messages, max_tokens: 2, stream: true })).text());
    assert.equal(plainEvents.length, 1 + 2 + 1);
  });

  test('completions: non-streamed, streamed, prompt lists', async () => {
    const res = (await (await postJson(`${sim.url}/v1/completions`, { model: 'base', prompt: 'Once upon', max_tokens: 3 })).json()) as Json;
    assert.equal(res.object, 'text_completion');
    assert.equal(res.choices[0].text.split(' ').length, 3);
    const events = sseEvents(await (await postJson(`${sim.url}/v1/completions`, { model: 'base', prompt: 'Once upon', max_tokens: 3, stream: true })).text());
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Json);
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), res.choices[0].text);
    assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'length');
    const batch = (await (await postJson(`${sim.url}/v1/completions`, { prompt: ['a', 'b'], max_tokens: 2 })).json()) as Json;
    assert.deepEqual(batch.choices.map((c: Json) => c.index), [0, 1]);
  });

  test('errors: unknown model 404 in the OpenAI shape, bad JSON and bad max_tokens 400', async () => {
    const res = await chat(sim, { model: 'nope', messages });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { message: 'The model `nope` does not exist.', type: 'NotFoundError', param: 'model', code: 404 } });
    const bad = await fetch(`${sim.url}/v1/chat/completions`, { method: 'POST', body: '{not json' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as Json).error.code, 400);
    assert.equal((await chat(sim, { model: 'base', messages, max_tokens: 0 })).status, 400);
    assert.equal((await chat(sim, { model: 'base', messages, max_tokens: 5000 })).status, 400);
  });

  test('embeddings: deterministic unit vectors, dimensions honoured, base64 encoding', async () => {
    const url = `${sim.url}/v1/embeddings`;
    const a = (await (await postJson(url, { model: 'base', input: ['hello', 'world'] })).json()) as Json;
    assert.equal(a.object, 'list');
    assert.equal(a.data.length, 2);
    assert.equal(a.data[0].object, 'embedding');
    assert.equal(a.data[0].embedding.length, 64);
    const norm = Math.hypot(...(a.data[0].embedding as number[]));
    assert.ok(Math.abs(norm - 1) < 1e-5);
    const b = (await (await postJson(url, { model: 'base', input: 'hello' })).json()) as Json;
    assert.deepEqual(b.data[0].embedding, a.data[0].embedding);
    assert.notDeepEqual(a.data[1].embedding, a.data[0].embedding);
    const d = (await (await postJson(url, { input: 'hello', dimensions: 8 })).json()) as Json;
    assert.equal(d.data[0].embedding.length, 8);
    const b64 = (await (await postJson(url, { input: 'hello', encoding_format: 'base64' })).json()) as Json;
    const floats = new Float32Array(new Uint8Array(Buffer.from(b64.data[0].embedding, 'base64')).buffer);
    assert.deepEqual([...floats], a.data[0].embedding);
  });

  test('images: generations and multipart edits answer b64 PNGs', async () => {
    const gen = (await (await postJson(`${sim.url}/v1/images/generations`, { model: 'base', prompt: 'a cat', n: 2, size: '16x16' })).json()) as Json;
    assert.equal(gen.data.length, 2);
    const png = Buffer.from(gen.data[0].b64_json, 'base64');
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.equal(png.readUInt32BE(16), 16);
    const form = new FormData();
    form.append('model', 'base');
    form.append('prompt', 'make it blue');
    form.append('image', new Blob([png], { type: 'image/png' }), 'cat.png');
    const edit = await fetch(`${sim.url}/v1/images/edits`, { method: 'POST', body: form });
    assert.equal(edit.status, 200);
    assert.equal(Buffer.from(((await edit.json()) as Json).data[0].b64_json, 'base64').toString('ascii', 1, 4), 'PNG');
  });

  test('audio: speech is binary WAV; transcriptions and translations read a multipart upload', async () => {
    const speech = await postJson(`${sim.url}/v1/audio/speech`, { model: 'base', input: 'hello there', voice: 'alloy' });
    assert.equal(speech.headers.get('content-type'), 'audio/wav');
    const wav = Buffer.from(await speech.arrayBuffer());
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.toString('ascii', 8, 12), 'WAVE');
    const upload = async (route: string, format?: string) => {
      const form = new FormData();
      form.append('model', 'base');
      form.append('file', new Blob([makeTestWav(0.25)], { type: 'audio/wav' }), 'clip.wav');
      if (format) form.append('response_format', format);
      return fetch(`${sim.url}/v1/audio/${route}`, { method: 'POST', body: form });
    };
    const t1 = (await (await upload('transcriptions')).json()) as Json;
    const t2 = (await (await upload('transcriptions')).json()) as Json;
    assert.ok(t1.text.length > 0);
    assert.equal(t2.text, t1.text);
    assert.equal(await (await upload('transcriptions', 'text')).text(), t1.text);
    const tr = (await (await upload('translations')).json()) as Json;
    assert.ok(typeof tr.text === 'string' && tr.text !== t1.text);
    const noFile = await fetch(`${sim.url}/v1/audio/transcriptions`, { method: 'POST', body: new FormData() });
    assert.equal(noFile.status, 400);
  });

  test('rerank on three paths, score, classify, pooling', async () => {
    const body = { model: 'base', query: 'capital of France', documents: ['Paris', 'Berlin', { text: 'Rome' }], top_n: 2 };
    const [a, b, c] = await Promise.all(['/rerank', '/v1/rerank', '/v2/rerank'].map(async (p) => (await (await postJson(sim.url + p, body)).json()) as Json));
    assert.deepEqual(b!.results, a!.results);
    assert.deepEqual(c!.results, a!.results);
    const r = a!.results as Json[];
    assert.equal(r.length, 2);
    assert.ok(r[0]!.relevance_score >= r[1]!.relevance_score);
    assert.equal(typeof r[0]!.document.text, 'string');
    const score = (await (await postJson(`${sim.url}/v1/score`, { model: 'base', text_1: 'q', text_2: ['a', 'b'] })).json()) as Json;
    assert.deepEqual(score.data.map((d: Json) => [d.index, d.object]), [[0, 'score'], [1, 'score']]);
    const cls = (await (await postJson(`${sim.url}/classify`, { model: 'base', input: ['good', 'bad'] })).json()) as Json;
    assert.equal(cls.data[0].num_classes, 2);
    assert.equal(cls.data[0].probs.length, 2);
    const pool = (await (await postJson(`${sim.url}/pooling`, { model: 'base', input: 'reward me' })).json()) as Json;
    assert.equal(pool.data[0].object, 'pooling');
  });

  test('metrics: vllm:* names with the model_name label', async () => {
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prompt_tokens_total', 'vllm:generation_tokens_total']) {
      assert.equal(typeof metric(text, name, 'model_name="base"'), 'number', name);
    }
    assert.ok(metric(text, 'vllm:generation_tokens_total') > 0);
    assert.match(text, /# TYPE vllm:time_to_first_token_seconds histogram/);
    assert.match(text, /vllm:time_to_first_token_seconds_bucket\{le="\+Inf",model_name="base"\} \d/);
  });

  test('LoRA: load, list, route, refuse a duplicate, unload', async () => {
    const load = await postJson(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: '/adapters/sql' });
    assert.equal(load.status, 200);
    assert.equal(await load.text(), "Success: LoRA adapter 'sql' added successfully.");
    const again = await postJson(`${sim.url}/v1/load_lora_adapter`, { lora_name: 'sql', lora_path: '/adapters/sql' });
    assert.equal(again.status, 400);
    assert.match(((await again.json()) as Json).error.message, /has already been loaded/);
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as Json;
    const card = models.data.find((m: Json) => m.id === 'sql');
    assert.deepEqual([card.root, card.parent], ['/adapters/sql', 'base']);
    const viaAdapter = (await (await chat(sim, { model: 'sql', messages, max_tokens: 6 })).json()) as Json;
    const viaBase = (await (await chat(sim, { model: 'base', messages, max_tokens: 6 })).json()) as Json;
    assert.equal(viaAdapter.model, 'sql');
    assert.notEqual(viaAdapter.choices[0].message.content, viaBase.choices[0].message.content);
    const unload = await postJson(`${sim.url}/v1/unload_lora_adapter`, { lora_name: 'sql' });
    assert.equal(await unload.text(), "Success: LoRA adapter 'sql' removed successfully.");
    assert.equal((await chat(sim, { model: 'sql', messages })).status, 404);
    const gone = await postJson(`${sim.url}/v1/unload_lora_adapter`, { lora_name: 'sql' });
    assert.equal(gone.status, 404);
    assert.match(((await gone.json()) as Json).error.message, /cannot be found/);
  });

  test('LoRA refused without --enable-lora (400), absent without VLLM_ALLOW_RUNTIME_LORA_UPDATING (404)', async () => {
    const refused = await postJson(`${plain.url}/v1/load_lora_adapter`, { lora_name: 'x', lora_path: '/a' });
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as Json).error.message, 'LoRA is not enabled. Use --enable-lora to enable LoRA.');
    const absent = await postJson(`${noEnv.url}/v1/load_lora_adapter`, { lora_name: 'x', lora_path: '/a' });
    assert.equal(absent.status, 404);
    assert.deepEqual(await absent.json(), { detail: 'Not Found' });
  });
});
