// LoRA adapters end to end (hub → tunnel → agent → ik-sim, process runtime): PUT loads an adapter on every ready
// replica (vLLM's /v1/load_lora_adapter), GET models lists it, a request naming it is served by a replica that has it,
// a replica started later gets it too (reactivation restores adapters), DELETE unloads it; a source the backend cannot
// load is an event; task types and backends without LoRA get a clear 400.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { allReady, backendGet, ensure, events, getWorkload, waitForReplicas, type ReplicaInfo } from '../helpers/workloads.ts';
import { CHAT_MODEL, chatSpec, createKey, embeddingSpec, endpointUrl, openaiFor } from '../helpers/dataplane.ts';

let hub: TestHub;
let agent: TestAgent;
let key: string;
const base = '/api/v1/projects/default/workloads';

before(async () => {
  hub = await startHub();
  agent = startAgent({ hub, name: 'lora-box', smi: 'h100-x2' });
  await waitForWorker(hub.url, hub.adminToken, 'lora-box', (w) => w.state === 'ready');
  await ensure(hub, chatSpec('tuned', {}, { execution_policy: 'fixed', execution_policy_config: { replicas: 2 } }));
  await ensure(hub, embeddingSpec('vectors'));
  key = (await createKey(hub, 'tuned')).secret;
});
after(async () => {
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
});

/** The adapters a replica's backend itself lists (its /v1/models, children of the base model). */
async function loadedOn(replica: ReplicaInfo): Promise<string[]> {
  const res = await backendGet(replica.port!, '/v1/models');
  return (res.body.data as Array<{ id: string; parent: string | null }>).filter((m) => m.parent !== null).map((m) => m.id).sort();
}

function readyReplicas(): Promise<ReplicaInfo[]> {
  return waitForReplicas(hub, 'tuned', allReady(2), 30_000);
}

test('an adapter is loaded on every replica, listed, routed by model, restored on reactivation, unloaded on delete', { timeout: 90_000 }, async () => {
  const replicas = await readyReplicas();
  const put = await api(hub.url, hub.adminToken, 'PUT', `${base}/tuned/adapters/sql`, { source: 'org/sql-lora' });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal(put.body.name, 'sql');
  assert.equal((await api(hub.url, hub.adminToken, 'PUT', `${base}/tuned/adapters/sql`, { source: 'org/sql-lora' })).status, 200, 'idempotent');
  for (const r of replicas) await eventually(`sql loaded on ${r.id}`, async () => ((await loadedOn(r)).includes('sql') ? true : undefined), 10_000, 100);

  const models = await openaiFor(hub, 'tuned', key).models.list();
  assert.deepEqual(models.data.map((m) => m.id), [CHAT_MODEL, 'sql']);
  const { data, response } = await openaiFor(hub, 'tuned', key).chat.completions.create({ model: 'sql', messages: [{ role: 'user', content: 'SELECT?' }], max_tokens: 4 }).withResponse();
  assert.equal(data.model, 'sql', 'the backend served the adapter');
  assert.ok(replicas.some((r) => r.id === response.headers.get('x-ik-replica')));
  assert.equal((await getWorkload(hub, 'tuned')).adapters[0].source, 'org/sql-lora');

  // Deactivated and activated again: new replicas, and the adapter comes back on them.
  for (const action of ['deactivate', 'activate']) assert.equal((await api(hub.url, hub.adminToken, 'POST', `${base}/tuned/${action}`)).status, 200);
  const fresh = await waitForReplicas(hub, 'tuned', (rs) => rs.filter((r) => r.state === 'ready' && !replicas.some((o) => o.id === r.id)).length === 2, 30_000);
  for (const r of fresh.filter((x) => x.state === 'ready')) await eventually(`sql restored on ${r.id}`, async () => ((await loadedOn(r)).includes('sql') ? true : undefined), 10_000, 100);
  const again = await openaiFor(hub, 'tuned', key).chat.completions.create({ model: 'sql', messages: [{ role: 'user', content: 'again' }], max_tokens: 4 });
  assert.equal(again.model, 'sql');

  assert.equal((await api(hub.url, hub.adminToken, 'DELETE', `${base}/tuned/adapters/sql`)).status, 204);
  for (const r of fresh.filter((x) => x.state === 'ready')) await eventually(`sql unloaded from ${r.id}`, async () => ((await loadedOn(r)).length === 0 ? true : undefined), 10_000, 100);
  const after = await fetch(`${endpointUrl(hub, 'tuned')}/models`, { headers: { authorization: `Bearer ${key}` } });
  assert.deepEqual(((await after.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id), [CHAT_MODEL]);
  assert.equal((await api(hub.url, hub.adminToken, 'DELETE', `${base}/tuned/adapters/sql`)).status, 404);
});

test('a source the backend cannot load is an event with its message; the adapter stays desired', async () => {
  await readyReplicas();
  assert.equal((await api(hub.url, hub.adminToken, 'PUT', `${base}/tuned/adapters/broken`, { source: '/nonexistent/lora' })).status, 201);
  const failed = await eventually('adapter.load_failed', async () => (await events(hub, 'workload=tuned')).find((e) => e.kind === 'adapter.load_failed'), 10_000, 100);
  assert.match(failed.message, /broken/);
  assert.match(failed.message, /No adapter found for \/nonexistent\/lora/);
  assert.equal((await api(hub.url, hub.adminToken, 'DELETE', `${base}/tuned/adapters/broken`)).status, 204);
});

test('bad adapter requests get a clear 4xx and change nothing', async () => {
  const embed = await api(hub.url, hub.adminToken, 'PUT', `${base}/vectors/adapters/x`, { source: 'org/x' });
  assert.equal(embed.status, 400);
  assert.match(JSON.stringify(embed.body), /text2text/);
  const badName = await api(hub.url, hub.adminToken, 'PUT', `${base}/tuned/adapters/${encodeURIComponent('bad name')}`, { source: 'org/x' });
  assert.equal(badName.status, 400);
  const noSource = await api(hub.url, hub.adminToken, 'PUT', `${base}/tuned/adapters/ok`, {});
  assert.equal(noSource.status, 400);
  const list = await api(hub.url, hub.adminToken, 'GET', `${base}/tuned/adapters`);
  assert.deepEqual(list.body.items, []);
});
