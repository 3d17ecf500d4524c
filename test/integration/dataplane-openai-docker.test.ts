// End to end with Docker: the official OpenAI client through the hub, the tunnel and the agent to ik-sim containers
// (IK_RUNTIME=docker, every backend mapped to ik-sim:dev, host network, fake GPUs): chat (plain and streamed) and
// embeddings; an autoscaling workload started from zero by its first request (a container per cold start) and back to
// zero when idle. Skipped without a Docker engine, except in CI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { waitForWorker } from '../helpers/api.ts';
import { allReady, ensure, events, getWorkload, waitForReplicas } from '../helpers/workloads.ts';
import { eventually } from '../helpers/api.ts';
import { dockerTestOptions, ensureSimImage, removeContainersOf, SIM_IMAGE_MAP } from '../helpers/docker.ts';
import { CHAT_MODEL, chatSpec, createKey, embeddingSpec, openaiFor, replicaIds } from '../helpers/dataplane.ts';

const options = dockerTestOptions();
const EMBED_MODEL = 'BAAI/bge-large-en-v1.5';

let hub: TestHub;
let agent: TestAgent;
let workerId = '';
const keys: Record<string, string> = {};
const replicas: Record<string, string[]> = {};

before(async () => {
  if (options.skip) return;
  ensureSimImage();
  hub = await startHub({ env: { IK_POLICY_TICK_MS: '200' } });
  agent = startAgent({
    hub,
    name: 'docker-openai-box',
    smi: 'h100-x2',
    env: { IK_RUNTIME: 'docker', IK_DOCKER_GPU_MODE: 'none', IK_IMAGE_MAP: SIM_IMAGE_MAP },
  });
  workerId = (await waitForWorker(hub.url, hub.adminToken, 'docker-openai-box', (w) => w.state === 'ready')).id;
  await ensure(hub, chatSpec('docker-chat'));
  await ensure(hub, embeddingSpec('docker-embed', EMBED_MODEL));
  await ensure(hub, chatSpec('docker-elastic', {}, { execution_policy: 'autoscaling', execution_policy_config: { min_workers: 0, max_workers: 1, scale_to_zero_delay_s: 2 } }));
  keys['docker-elastic'] = (await createKey(hub, 'docker-elastic')).secret;
  for (const slug of ['docker-chat', 'docker-embed']) {
    const ready = await waitForReplicas(hub, slug, allReady(1), 60_000);
    assert.ok(ready.every((r) => r.container_id), 'replicas run in containers');
    replicas[slug] = replicaIds(ready);
    keys[slug] = (await createKey(hub, slug)).secret;
  }
});
after(async () => {
  if (options.skip) return;
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
  if (workerId) removeContainersOf(workerId);
});

function assertServedBy(slug: string, headers: Headers): void {
  const replica = headers.get('x-ik-replica');
  assert.ok(replica && replicas[slug]!.includes(replica), `x-ik-replica ${replica} names a replica of ${slug}`);
}

test('chat completion through a container, not streamed', options, async () => {
  const client = openaiFor(hub, 'docker-chat', keys['docker-chat']!);
  const { data, response } = await client.chat.completions
    .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'Hola, ¿cuál es mi saldo?' }], max_tokens: 10 })
    .withResponse();
  assertServedBy('docker-chat', response.headers);
  assert.equal(data.model, CHAT_MODEL);
  assert.ok(data.choices[0]!.message.content!.length > 0);
  assert.equal(data.usage?.completion_tokens, 10);
});

test('chat completion through a container, streamed (with and without the usage chunk)', options, async () => {
  const client = openaiFor(hub, 'docker-chat', keys['docker-chat']!);
  const withUsage = await client.chat.completions
    .create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'count to ten' }], max_tokens: 6, stream: true, stream_options: { include_usage: true } })
    .withResponse();
  assertServedBy('docker-chat', withUsage.response.headers);
  const chunks = [];
  for await (const chunk of withUsage.data) chunks.push(chunk);
  assert.equal(chunks.filter((c) => c.choices.length > 0).length, 7, 'the role chunk and six tokens');
  assert.equal(chunks[chunks.length - 1]!.usage?.completion_tokens, 6);

  const plain = await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'count to ten' }], max_tokens: 6, stream: true });
  let text = '';
  let usageChunks = 0;
  for await (const chunk of plain) {
    text += chunk.choices[0]?.delta.content ?? '';
    if (chunk.usage) usageChunks++;
  }
  assert.ok(text.length > 0);
  assert.equal(usageChunks, 0, 'no usage chunk the client did not ask for');
});

test('embeddings through a container', options, async () => {
  const client = openaiFor(hub, 'docker-embed', keys['docker-embed']!);
  const { data, response } = await client.embeddings.create({ model: EMBED_MODEL, input: ['invoice #42', 'refund policy'], dimensions: 16 }).withResponse();
  assertServedBy('docker-embed', response.headers);
  assert.equal(data.data.length, 2);
  assert.ok(data.data.every((d) => d.embedding.length === 16));
});

test('scale from zero over Docker: the first request starts a container and says so; idle, it goes back to zero', options, async () => {
  assert.equal((await getWorkload(hub, 'docker-elastic')).replicas.length, 0, 'nothing runs before the first request');
  const client = openaiFor(hub, 'docker-elastic', keys['docker-elastic']!);
  const { data, response } = await client.chat.completions.create({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'cold?' }], max_tokens: 4 }).withResponse();
  assert.equal(response.headers.get('x-ik-cold-start'), '1');
  assert.equal(data.model, CHAT_MODEL);
  const served = (await getWorkload(hub, 'docker-elastic')).replicas.find((r: { id: string }) => r.id === response.headers.get('x-ik-replica'));
  assert.ok(served?.container_id, 'the cold start ran a container');
  await eventually('docker-elastic back at zero', async () => {
    const w = await getWorkload(hub, 'docker-elastic');
    return w.desired_replicas === 0 && w.replicas.every((r: { state: string }) => r.state === 'stopped') ? w : undefined;
  }, 30_000, 250);
  const scaled = (await events(hub, 'workload=docker-elastic')).filter((e) => e.kind === 'workload.scaled').map((e) => e.message);
  assert.ok(scaled.some((m) => /0→1: a request arrived/.test(m)) && scaled.some((m) => /1→0: idle for/.test(m)), scaled.join(' | '));
});
