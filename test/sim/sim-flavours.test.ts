// The simulator's SGLang, vLLM-omni and Ollama flavours: their launch commands, routes, metrics, LoRA and pull flows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metric, postJson, sseEvents, startSim, type SimProcess } from './harness.ts';

type Json = Record<string, any>;
const messages = [{ role: 'user', content: 'hello' }];

describe('ik-sim sglang', () => {
  let sim: SimProcess;
  let bare: SimProcess;
  before(async () => {
    [sim, bare] = await Promise.all([
      startSim(['python3', '-m', 'sglang.launch_server', '--model-path', 'org/S-8B', '--served-model-name', 's', '--tp-size', '2', '--mem-fraction-static', '0.8', '--enable-metrics', '--enable-lora']),
      startSim(['sglang', '--model-path', 'org/S-8B']),
    ]);
  });
  after(() => Promise.all([sim.stop(), bare.stop()]));

  test('serves the OpenAI routes under its served name, with SGLang\'s ready line', async () => {
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as Json;
    assert.deepEqual(models.data.map((m: Json) => [m.id, m.owned_by, m.root]), [['s', 'sglang', 'org/S-8B']]);
    const res = (await (await postJson(`${sim.url}/v1/chat/completions`, { model: 's', messages, max_tokens: 3 })).json()) as Json;
    assert.equal(res.model, 's');
    assert.equal(res.usage.completion_tokens, 3);
    assert.match(sim.output(), /The server is fired up and ready to roll!/);
    assert.deepEqual(((await (await fetch(`${sim.url}/get_model_info`)).json()) as Json).model_path, 'org/S-8B');
  });

  test('metrics: sglang:* names with --enable-metrics, 404 without', async () => {
    const text = await (await fetch(`${sim.url}/metrics`)).text();
    for (const name of ['sglang:num_running_reqs', 'sglang:num_queue_reqs', 'sglang:token_usage', 'sglang:generation_tokens_total']) {
      assert.equal(typeof metric(text, name, 'model_name="s"'), 'number', name);
    }
    assert.equal((await fetch(`${bare.url}/metrics`)).status, 404);
  });

  test('LoRA through /load_lora_adapter and /unload_lora_adapter, SGLang\'s answers', async () => {
    const load = await postJson(`${sim.url}/load_lora_adapter`, { lora_name: 'sum', lora_path: '/adapters/sum' });
    assert.equal(load.status, 200);
    assert.deepEqual(await load.json(), { success: true, error_message: null, loaded_adapters: { sum: '/adapters/sum' } });
    const res = (await (await postJson(`${sim.url}/v1/chat/completions`, { model: 'sum', messages })).json()) as Json;
    assert.equal(res.model, 'sum');
    assert.equal((await postJson(`${sim.url}/v1/chat/completions`, { model: 's:sum', messages })).status, 200);
    const unload = await postJson(`${sim.url}/unload_lora_adapter`, { lora_name: 'sum' });
    assert.deepEqual(await unload.json(), { success: true, error_message: null, loaded_adapters: {} });
    const refused = await postJson(`${bare.url}/load_lora_adapter`, { lora_name: 'x', lora_path: '/a' });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as Json).error_message, /LoRA is not enabled/);
  });
});

describe('ik-sim vllm-omni', () => {
  test('`vllm serve M --omni` and `vllm-omni serve M` both serve images and speech', async () => {
    const sims = await Promise.all([startSim(['vllm', 'serve', 'omni/Img', '--omni']), startSim(['vllm-omni', 'serve', 'omni/Img'])]);
    try {
      for (const sim of sims) {
        assert.match(sim.output(), /ik-sim, omni/);
        const img = (await (await postJson(`${sim.url}/v1/images/generations`, { model: 'omni/Img', prompt: 'a boat' })).json()) as Json;
        assert.equal(Buffer.from(img.data[0].b64_json, 'base64').toString('ascii', 1, 4), 'PNG');
        const wav = await postJson(`${sim.url}/v1/audio/speech`, { model: 'omni/Img', input: 'hi' });
        assert.equal(wav.headers.get('content-type'), 'audio/wav');
      }
    } finally {
      await Promise.all(sims.map((s) => s.stop()));
    }
  });
});

describe('ik-sim ollama', () => {
  let sim: SimProcess;
  before(async () => {
    sim = await startSim(['ollama', 'serve'], { IK_SIM_OLLAMA_PULL_MS: '100', IK_SIM_OLLAMA_MODELS: 'nomic-embed-text' });
  });
  after(() => sim.stop());

  test('version, root and the pre-pulled model in /api/tags', async () => {
    assert.match(((await (await fetch(`${sim.url}/api/version`)).json()) as Json).version, /^\d+\.\d+/);
    assert.equal(await (await fetch(`${sim.url}/`)).text(), 'Ollama is running');
    const tags = (await (await fetch(`${sim.url}/api/tags`)).json()) as Json;
    assert.deepEqual(tags.models.map((m: Json) => m.name), ['nomic-embed-text:latest']);
    assert.match(tags.models[0].digest, /^[0-9a-f]{64}$/);
    assert.match(sim.output(), new RegExp(`Listening on 127\\.0\\.0\\.1:${sim.port}`));
  });

  test('a model not pulled yet is a 404 like Ollama\'s', async () => {
    const res = await postJson(`${sim.url}/api/chat`, { model: 'llama3.2', messages, stream: false });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: 'model "llama3.2" not found, try pulling it first' });
    const compat = await postJson(`${sim.url}/v1/chat/completions`, { model: 'llama3.2', messages });
    assert.equal(compat.status, 404);
    assert.match(((await compat.json()) as Json).error.message, /not found, try pulling it first/);
  });

  test('pull streams NDJSON progress, then the model is listed and served', async () => {
    const res = await postJson(`${sim.url}/api/pull`, { model: 'llama3.2' });
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l) as Json);
    assert.deepEqual(lines[0], { status: 'pulling manifest' });
    assert.deepEqual(lines.at(-1), { status: 'success' });
    const progress = lines.filter((l) => l.total !== undefined);
    assert.ok(progress.length >= 5);
    assert.ok(progress.every((l) => /^pulling [0-9a-f]{12}$/.test(l.status) && /^sha256:/.test(l.digest) && l.completed <= l.total));
    const weights = progress.filter((l) => l.digest === progress[0]!.digest).map((l) => l.completed);
    assert.deepEqual(weights, [...weights].sort((a, b) => a - b));
    const tags = (await (await fetch(`${sim.url}/api/tags`)).json()) as Json;
    assert.ok(tags.models.some((m: Json) => m.name === 'llama3.2:latest'));
    assert.deepEqual(await (await postJson(`${sim.url}/api/pull`, { name: 'llama3.2', stream: false })).json(), { status: 'success' });
    const missing = (await (await postJson(`${sim.url}/api/pull`, { model: 'missing-model' })).text()).trimEnd().split('\n');
    assert.ok(JSON.parse(missing.at(-1)!).error);
  });

  test('chat and generate stream NDJSON by default; embed; the OpenAI-compatible routes', async () => {
    const lines = (await (await postJson(`${sim.url}/api/chat`, { model: 'llama3.2', messages, options: { num_predict: 3 } })).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Json);
    assert.equal(lines.length, 4);
    assert.ok(lines.slice(0, 3).every((l) => l.done === false && l.message.role === 'assistant' && l.model === 'llama3.2'));
    assert.equal(lines[3]!.done, true);
    assert.equal(lines[3]!.done_reason, 'length');
    assert.equal(lines[3]!.eval_count, 3);
    const whole = (await (await postJson(`${sim.url}/api/chat`, { model: 'llama3.2:latest', messages, stream: false, options: { num_predict: 3 } })).json()) as Json;
    assert.equal(whole.message.content, lines.slice(0, 3).map((l) => l.message.content).join(''));
    const gen = (await (await postJson(`${sim.url}/api/generate`, { model: 'llama3.2', prompt: 'why', stream: false })).json()) as Json;
    assert.equal(gen.done, true);
    assert.ok(gen.response.length > 0);
    const emb = (await (await postJson(`${sim.url}/api/embed`, { model: 'nomic-embed-text', input: ['a', 'b'] })).json()) as Json;
    assert.equal(emb.embeddings.length, 2);
    const events = sseEvents(await (await postJson(`${sim.url}/v1/chat/completions`, { model: 'llama3.2', messages, stream: true, max_tokens: 2 })).text());
    assert.equal(events.at(-1), '[DONE]');
    const v1emb = (await (await postJson(`${sim.url}/v1/embeddings`, { model: 'nomic-embed-text', input: 'a' })).json()) as Json;
    assert.deepEqual(v1emb.data[0].embedding, emb.embeddings[0]);
    const models = (await (await fetch(`${sim.url}/v1/models`)).json()) as Json;
    assert.deepEqual(models.data.map((m: Json) => m.id).sort(), ['llama3.2:latest', 'nomic-embed-text:latest']);
  });
});
