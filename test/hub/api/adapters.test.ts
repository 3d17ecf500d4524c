// The adapter routes: put/list/delete with their rules and events; then through a running hub: OpenAPI, the SDK, the CLI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { ManagementClient, NotFoundError } from 'ikhub';
import { openDatabase } from '../../../hub/db/open.ts';
import { createStore, type Store } from '../../../hub/store/index.ts';
import { ApiRouter } from '../../../hub/api/route.ts';
import { registerAdapterRoutes } from '../../../hub/api/adapters.ts';
import type { ApiDeps } from '../../../hub/api/deps.ts';
import { loadHubConfig } from '../../../hub/config.ts';
import { startHub, type RunningHub } from '../../../hub/main.ts';
import { AppError } from '../../../shared/errors.ts';
import { FakeClock } from '../../../shared/clock.ts';
import { parseWorkloadSpec } from '../../../shared/spec/workload-spec.ts';
import { testSecretBox } from '../../helpers/inventory.ts';
import { runIk } from '../../helpers/processes.ts';

describe('adapter routes', () => {
  let clock: FakeClock;
  let store: Store;
  let app: FastifyInstance;
  let changed: string[];
  let chatId: string;
  const base = '/api/v1/projects/default/workloads';

  beforeEach(async () => {
    clock = new FakeClock();
    store = createStore(openDatabase(':memory:'), clock, testSecretBox());
    const project = store.projects.ensure('default', 'Default');
    const add = (fields: Record<string, unknown>) => {
      const parsed = parseWorkloadSpec(fields);
      assert.ok(parsed.ok, JSON.stringify(parsed));
      return store.workloads.insert(project.id, parsed.spec).id;
    };
    chatId = add({ slug: 'chat', model: 'base-model', backend: 'vllm', command: 'vllm serve base-model' });
    add({ slug: 'embed', model: 'org/E5', backend: 'vllm', task_type: 'embedding', command: 'vllm serve org/E5' });
    add({ slug: 'local', model: 'llama3.2', backend: 'ollama' });
    add({ slug: 'rank', model: 'org/Reranker', backend: 'sglang', task_type: 'reranker' });
    changed = [];
    app = Fastify();
    app.setErrorHandler((err, _req, reply) => {
      if (err instanceof AppError) return reply.code(err.status).send(err.toBody());
      return reply.code(500).send({ error: { code: 'INTERNAL', message: String(err) } });
    });
    const deps = { store, clock, onAdaptersChanged: (id: string) => changed.push(id) } as unknown as ApiDeps;
    registerAdapterRoutes(new ApiRouter(app, () => ({ kind: 'admin', tokenId: 't' })), deps);
    await app.ready();
  });

  const put = (slug: string, name: string, body: unknown) =>
    app.inject({ method: 'PUT', url: `${base}/${slug}/adapters/${encodeURIComponent(name)}`, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const list = async (slug = 'chat') => (await app.inject({ method: 'GET', url: `${base}/${slug}/adapters` })).json();
  const events = () => store.events.list({ limit: 100 }).filter((e) => e.kind.startsWith('adapter.')).reverse();

  it('PUT creates (201), is idempotent (200, nothing recorded), and changes the source (200)', async () => {
    const created = await put('chat', 'sql', { source: 'org/sql-lora' });
    assert.equal(created.statusCode, 201);
    const at = new Date(clock.now()).toISOString();
    assert.deepEqual(created.json(), { name: 'sql', source: 'org/sql-lora', workload: 'chat', created_at: at, updated_at: at });
    assert.deepEqual(changed, [chatId]);

    clock.advance(60_000);
    const again = await put('chat', 'sql', { source: 'org/sql-lora' });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), created.json(), 'unchanged, updated_at included');
    assert.deepEqual(changed, [chatId], 'no change, no sync');

    const moved = await put('chat', 'sql', { source: '/models/loras/sql-v2' });
    assert.equal(moved.statusCode, 200);
    assert.equal(moved.json().source, '/models/loras/sql-v2');
    assert.equal(moved.json().created_at, at);
    assert.notEqual(moved.json().updated_at, at);
    assert.deepEqual(changed, [chatId, chatId]);

    assert.deepEqual(
      events().map((e) => [e.kind, e.workload, e.message, e.data]),
      [
        ['adapter.put', 'chat', 'adapter sql added (loads org/sql-lora)', { name: 'sql', source: 'org/sql-lora' }],
        ['adapter.put', 'chat', 'adapter sql now loads /models/loras/sql-v2 (was org/sql-lora)', { name: 'sql', source: '/models/loras/sql-v2', previous_source: 'org/sql-lora' }],
      ],
    );
  });

  it('GET lists the adapters by name; DELETE removes (204), then 404 ADAPTER_NOT_FOUND', async () => {
    await put('chat', 'summary', { source: 'org/summary-lora' });
    await put('chat', 'Sql.v2_x', { source: 'org/sql-lora' });
    const listed = await list();
    assert.deepEqual(listed.next, null);
    assert.deepEqual(listed.items.map((a: { name: string }) => a.name), ['Sql.v2_x', 'summary']);

    const deleted = await app.inject({ method: 'DELETE', url: `${base}/chat/adapters/summary` });
    assert.equal(deleted.statusCode, 204);
    assert.equal(deleted.body, '');
    assert.deepEqual((await list()).items.map((a: { name: string }) => a.name), ['Sql.v2_x']);
    assert.deepEqual(changed, [chatId, chatId, chatId]);
    assert.deepEqual(events().at(-1)?.kind, 'adapter.deleted');
    assert.deepEqual(events().at(-1)?.data, { name: 'summary', source: 'org/summary-lora' });

    const again = await app.inject({ method: 'DELETE', url: `${base}/chat/adapters/summary` });
    assert.equal(again.statusCode, 404);
    assert.equal(again.json().error.code, 'ADAPTER_NOT_FOUND');
    assert.match(again.json().error.message, /no adapter "summary" on workload chat: see `ik adapters list chat`/);
    assert.equal(changed.length, 3);
  });

  it('refuses bad input with what was wrong, and changes nothing', async () => {
    await put('chat', 'keep', { source: 'org/keep' });
    const before = { adapters: await list(), events: events().length, changed: changed.length };
    const cases: Array<[string, string, unknown, number, RegExp]> = [
      ['chat', '-dash-first', { source: 'org/x' }, 400, /path\.name: an adapter name is 1–64 letters/],
      ['chat', 'x'.repeat(65), { source: 'org/x' }, 400, /path\.name/],
      ['chat', 'has space', { source: 'org/x' }, 400, /path\.name/],
      ['chat', 'base-model', { source: 'org/x' }, 400, /is the workload's base model base-model.*pick another name/],
      ['chat', 'chat', { source: 'org/x' }, 400, /is the workload's slug.*pick another name/],
      ['chat', 'ok', { source: '' }, 400, /body\.source: source is empty: give a Hugging Face repo id/],
      ['chat', 'ok', { source: 'a'.repeat(1025) }, 400, /longer than 1024/],
      ['chat', 'ok', { source: 'org/x\nrm -rf' }, 400, /control characters/],
      ['chat', 'ok', { source: ' org/x' }, 400, /start or end with spaces/],
      ['chat', 'ok', { source: 'org/x', extra: 1 }, 400, /body.*extra/],
      ['chat', 'ok', {}, 400, /body\.source/],
      ['chat', 'ok', { source: 42 }, 400, /body\.source/],
      ['embed', 'ok', { source: 'org/x' }, 400, /serves embedding on vllm, which cannot load adapters: adapters work on task types text2text, classification, reranker, score with backends vllm or sglang/],
      ['local', 'ok', { source: 'org/x' }, 400, /serves text2text on ollama, which cannot load adapters/],
      ['missing', 'ok', { source: 'org/x' }, 404, /no workload "missing"/],
    ];
    for (const [slug, name, body, status, message] of cases) {
      const res = await put(slug, name, body);
      assert.equal(res.statusCode, status, `${slug}/${name} ${JSON.stringify(body)}: ${res.body}`);
      assert.equal(res.json().error.code, status === 404 ? 'WORKLOAD_NOT_FOUND' : 'VALIDATION_FAILED');
      assert.match(res.json().error.message, message);
    }
    assert.deepEqual({ adapters: await list(), events: events().length, changed: changed.length }, before);
  });

  it('takes adapters on SGLang reranker-like scoring too', async () => {
    const res = await put('rank', 'domain', { source: '/models/loras/domain' });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().workload, 'rank');
  });
});

describe('adapters through a running hub', () => {
  let dataDir: string;
  let hub: RunningHub;
  let mgmt: ManagementClient;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'ik-adapters-'));
    hub = await startHub(loadHubConfig({ IK_PORT: '0', IK_HOST: '127.0.0.1', IK_DATA_DIR: dataDir, IK_LOG_LEVEL: 'silent' }));
    mgmt = new ManagementClient({ hubUrl: hub.url, token: hub.secrets.adminToken });
    // Never placed (no worker): adapters are desired state, kept whether or not replicas run.
    await mgmt.ensure({ slug: 'chat', model: 'org/Base-7B', backend: 'vllm', command: 'vllm serve org/Base-7B' });
    env = { IK_HUB_URL: hub.url, IK_TOKEN: hub.secrets.adminToken };
  });
  after(async () => {
    await hub?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the OpenAPI document lists the three operations', async () => {
    const doc = (await (await fetch(`${hub.url}/api/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>> };
    assert.equal(doc.paths['/api/v1/projects/{p}/workloads/{slug}/adapters']?.get?.operationId, 'listAdapters');
    const one = doc.paths['/api/v1/projects/{p}/workloads/{slug}/adapters/{name}'];
    assert.equal(one?.put?.operationId, 'putAdapter');
    assert.deepEqual(Object.keys(one?.put?.responses ?? {}).sort(), ['200', '201', '4XX']);
    assert.equal(one?.delete?.operationId, 'deleteAdapter');
  });

  it('the SDK puts, lists and deletes adapters', async () => {
    const created = await mgmt.putAdapter('chat', 'sdk-sql', 'org/sql-lora');
    assert.deepEqual([created.name, created.source, created.workload], ['sdk-sql', 'org/sql-lora', 'chat']);
    assert.equal(typeof created.createdAt, 'string');
    assert.equal((await mgmt.putAdapter('chat', 'sdk-sql', 'org/sql-lora-2')).source, 'org/sql-lora-2');
    assert.deepEqual((await mgmt.listAdapters('chat')).map((a) => [a.name, a.source]), [['sdk-sql', 'org/sql-lora-2']]);
    await mgmt.deleteAdapter('chat', 'sdk-sql');
    assert.deepEqual(await mgmt.listAdapters('chat'), []);
    await assert.rejects(mgmt.deleteAdapter('chat', 'sdk-sql'), (err: unknown) => err instanceof NotFoundError && err.code === 'ADAPTER_NOT_FOUND');
  });

  it('the CLI: ik adapters put, list and delete, with --json', async () => {
    const put = await runIk(['adapters', 'put', 'chat', 'cli-sql', '--source', '/models/loras/sql'], env);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /adapter cli-sql on chat created: loads \/models\/loras\/sql/);
    const putJson = await runIk(['adapters', 'put', 'chat', 'cli-sql', '--source', '/models/loras/sql', '--json'], env);
    assert.equal(JSON.parse(putJson.stdout).source, '/models/loras/sql');

    const table = await runIk(['adapters', 'list', 'chat'], env);
    assert.match(table.stdout, /^NAME\s+SOURCE\s+UPDATED\ncli-sql\s+\/models\/loras\/sql\s+\S+/);
    const json = await runIk(['adapters', 'list', 'chat', '--json'], env);
    assert.deepEqual(JSON.parse(json.stdout).items.map((a: { name: string }) => a.name), ['cli-sql']);

    const refused = await runIk(['adapters', 'put', 'chat', 'chat', '--source', 'org/x'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ik: error: adapter name "chat" is the workload's slug/);
    const noSource = await runIk(['adapters', 'put', 'chat', 'x'], env);
    assert.equal(noSource.code, 2);
    assert.match(noSource.stderr, /needs --source/);

    const del = await runIk(['adapters', 'delete', 'chat', 'cli-sql', '--json'], env);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(JSON.parse(del.stdout), { workload: 'chat', name: 'cli-sql', deleted: true });
    const gone = await runIk(['adapters', 'delete', 'chat', 'cli-sql'], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no adapter "cli-sql" on workload chat/);
    const empty = await runIk(['adapters', 'ls', 'chat'], env);
    assert.match(empty.stdout, /no adapters on chat yet/);
  });
});
