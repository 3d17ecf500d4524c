// End to end with the official OpenAI client: hub → tunnel → agent (process runtime) → ik-sim, one workload per task
// type (chat and completions, embeddings, images, speech, transcription); the SDK's DataClient against the same hub;
// every answer names the replica that served it (x-ik-replica).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { toFile } from 'openai';
import { DataClient } from 'ikhub';
import { startHub, startAgent, tempDir, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { waitForWorker } from '../helpers/api.ts';
import { allReady, ensure, waitForReplicas } from '../helpers/workloads.ts';
import { CHAT_MODEL, chatSpec, createKey, embeddingSpec, makeTestWav, omniSpec, openaiFor, PNG_SIGNATURE, replicaIds } from '../helpers/dataplane.ts';

const IMAGE_MODEL = 'stabilityai/stable-diffusion-3.5-large';
const SPEECH_MODEL = 'hexgrad/Kokoro-82M';
const STT_MODEL = 'openai/whisper-large-v3';
const EMBED_MODEL = 'BAAI/bge-large-en-v1.5';

let hub: TestHub;
let agent: TestAgent;
const keys: Record<string, string> = {};
const replicas: Record<string, string[]> = {};

const workloads: Array<[string, Record<string, unknown>]> = [
  ['chat', chatSpec('chat')],
  ['embed', embeddingSpec('embed', EMBED_MODEL)],
  ['poster', omniSpec('poster', IMAGE_MODEL, 'text2image')],
  ['voice', omniSpec('voice', SPEECH_MODEL, 'text2audio')],
  ['stt', omniSpec('stt', STT_MODEL, 'audio2text')],
];

before(async () => {
  hub = await startHub();
  agent = startAgent({ hub, name: 'openai-box', smi: 'h100-x2' });
  await waitForWorker(hub.url, hub.adminToken, 'openai-box', (w) => w.state === 'ready');
  for (const [slug, spec] of workloads) await ensure(hub, spec);
  for (const [slug] of workloads) {
    replicas[slug] = replicaIds(await waitForReplicas(hub, slug, allReady(1)));
    keys[slug] = (await createKey(hub, slug)).secret;
  }
});
after(async () => {
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
});

function assertServedBy(slug: string, headers: Headers): void {
  const replica = headers.get('x-ik-replica');
  assert.ok(replica, `x-ik-replica on the answer for ${slug}`);
  assert.ok(replicas[slug]!.includes(replica), `${replica} is a replica of ${slug} (${replicas[slug]!.join(', ')})`);
}

test('chat completion, not streamed: the answer, the usage, and the replica that served it', async () => {
  const client = openaiFor(hub, 'chat', keys.chat!);
  const { data, response } = await client.chat.completions
    .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'Hola, ¿cuál es mi saldo?' }], max_tokens: 12 })
    .withResponse();
  assert.equal(response.status, 200);
  assertServedBy('chat', response.headers);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, CHAT_MODEL);
  assert.equal(data.choices.length, 1);
  assert.ok(data.choices[0]!.message.content!.length > 0);
  assert.equal(data.choices[0]!.finish_reason, 'length');
  assert.equal(data.usage?.completion_tokens, 12);
  assert.ok((data.usage?.prompt_tokens ?? 0) > 0);
});

test('chat completion streamed with include_usage: chunks arrive and the usage chunk comes last', async () => {
  const client = openaiFor(hub, 'chat', keys.chat!);
  const { data: stream, response } = await client.chat.completions
    .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'count to ten' }], max_tokens: 8, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  assertServedBy('chat', response.headers);
  assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
  let text = '';
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta.content ?? '';
  }
  assert.ok(text.length > 0);
  const last = chunks[chunks.length - 1]!;
  assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
  assert.equal(last.usage?.completion_tokens, 8);
  assert.ok((last.usage?.prompt_tokens ?? 0) > 0);
  assert.equal(chunks.filter((c) => c.usage).length, 1, 'exactly one usage chunk');
  // Content chunks: the role chunk plus one per token.
  assert.equal(chunks.filter((c) => c.choices.length > 0).length, 9);
});

test('chat completion streamed without include_usage: no usage-only chunk reaches the client', async () => {
  const client = openaiFor(hub, 'chat', keys.chat!);
  const { data: stream, response } = await client.chat.completions
    .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'count to five' }], max_tokens: 5, stream: true })
    .withResponse();
  assertServedBy('chat', response.headers);
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 6, 'the role chunk and five tokens');
  for (const c of chunks) {
    assert.equal(c.choices.length, 1, 'every chunk carries a choice');
    assert.ok(c.usage === undefined || c.usage === null, `no usage in ${JSON.stringify(c)}`);
  }
  assert.equal(chunks[chunks.length - 1]!.choices[0]!.finish_reason, 'length');
});

test('completions (legacy route)', async () => {
  const client = openaiFor(hub, 'chat', keys.chat!);
  const { data, response } = await client.completions.create({ model: CHAT_MODEL, prompt: 'Once upon a time', max_tokens: 6 }).withResponse();
  assertServedBy('chat', response.headers);
  assert.equal(data.object, 'text_completion');
  assert.ok(data.choices[0]!.text.length > 0);
  assert.equal(data.usage?.completion_tokens, 6);
});

test('embeddings: one vector per input, of the requested dimensions', async () => {
  const client = openaiFor(hub, 'embed', keys.embed!);
  const { data, response } = await client.embeddings.create({ model: EMBED_MODEL, input: ['invoice #42', 'refund policy'], dimensions: 32 }).withResponse();
  assertServedBy('embed', response.headers);
  assert.equal(data.model, EMBED_MODEL);
  assert.equal(data.data.length, 2);
  for (const [i, d] of data.data.entries()) {
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, 32);
    assert.ok(d.embedding.every((x) => Number.isFinite(x)));
  }
  assert.notDeepEqual(data.data[0]!.embedding, data.data[1]!.embedding);
  // Floats on the wire as well as base64 (the client's default).
  const floats = await client.embeddings.create({ model: EMBED_MODEL, input: 'invoice #42', encoding_format: 'float' });
  assert.equal(floats.data[0]!.embedding.length, 64, "the backend's default dimensions");
});

test('images: b64_json decodes to a PNG', async () => {
  const client = openaiFor(hub, 'poster', keys.poster!);
  const { data, response } = await client.images.generate({ model: IMAGE_MODEL, prompt: 'a poster of a lighthouse at dawn', size: '1024x1024' }).withResponse();
  assertServedBy('poster', response.headers);
  assert.equal(data.data?.length, 1);
  const png = Buffer.from(data.data![0]!.b64_json!, 'base64');
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  assert.equal(png.toString('ascii', 12, 16), 'IHDR');
});

test('speech: the binary body streams to a file and is a valid WAV', async () => {
  const client = openaiFor(hub, 'voice', keys.voice!);
  const response = await client.audio.speech.create({ model: SPEECH_MODEL, voice: 'af_heart', input: 'Your order has shipped and will arrive on Monday.' });
  assert.equal(response.status, 200);
  assertServedBy('voice', response.headers);
  assert.match(response.headers.get('content-type') ?? '', /audio\/wav/);
  const file = join(tempDir('ik-speech-'), 'speech.wav');
  await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(file));
  const wav = readFileSync(file);
  assert.ok(wav.length > 44, `${wav.length} bytes`);
  assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
  assert.equal(wav.readUInt32LE(4), wav.length - 8, 'the RIFF size covers the file');
  assert.equal(wav.toString('ascii', 8, 12), 'WAVE');
  assert.equal(wav.toString('ascii', 12, 16), 'fmt ');
  assert.equal(wav.toString('ascii', 36, 40), 'data');
  assert.equal(wav.readUInt32LE(40), wav.length - 44);
});

test('transcription: a multipart upload of a WAV', async () => {
  const client = openaiFor(hub, 'stt', keys.stt!);
  const file = await toFile(makeTestWav(0.5), 'hello.wav', { type: 'audio/wav' });
  const { data, response } = await client.audio.transcriptions.create({ model: STT_MODEL, file }).withResponse();
  assertServedBy('stt', response.headers);
  assert.equal(typeof data.text, 'string');
  assert.ok(data.text.trim().split(/\s+/).length >= 4, data.text);
  // The same upload gives the same text (the backend saw the same bytes).
  const again = await client.audio.transcriptions.create({ model: STT_MODEL, file: await toFile(makeTestWav(0.5), 'hello.wav', { type: 'audio/wav' }) });
  assert.equal(again.text, data.text);
});

test('the SDK: generateText and embed against the hub, the workload slug standing for its model', async () => {
  const saved = process.env.IK_HUB_URL;
  process.env.IK_HUB_URL = hub.url;
  try {
    const data = DataClient.fromEnv({ project: 'default' });
    const out = await data.endpoint('chat', { apiKey: keys.chat }).generateText({ prompt: 'Hola, ¿cuál es mi saldo?', temperature: 0.2, maxTokens: 30 });
    assert.ok(out.text.length > 0);
    assert.equal(out.model, CHAT_MODEL, 'the slug as model is mapped to the workload model');
    assert.equal(out.usage?.completionTokens, 30);
    assert.equal(out.finishReason, 'length');

    const emb = await data.endpoint('embed', { apiKey: keys.embed }).embed({ input: ['invoice #42', 'refund policy'] });
    assert.equal(emb.embeddings.length, 2);
    assert.equal(emb.model, EMBED_MODEL);
    assert.ok(emb.embeddings.every((v) => v.length === 64));
  } finally {
    if (saved === undefined) delete process.env.IK_HUB_URL;
    else process.env.IK_HUB_URL = saved;
  }
});
