// Integration: a project token never sees or changes another project's things; not yours answers 404, like missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';

let hub: TestHub;
const tok: Record<'a' | 'b', string> = { a: '', b: '' };
const ids = { bToken: '', bKey: '', aKey: '', bJoin: '', bWorker: '', sharedWorker: '', aWorker: '' };

before(async () => {
  hub = await startHub();
  const admin = (method: string, path: string, body?: unknown) => api(hub.url, hub.adminToken, method, path, body);
  for (const p of ['team-a', 'team-b']) {
    assert.equal((await admin('POST', '/api/v1/projects', { slug: p })).status, 201);
  }
  tok.a = (await admin('POST', '/api/v1/projects/team-a/tokens', { name: 'a' })).body.secret;
  const bTok = await admin('POST', '/api/v1/projects/team-b/tokens', { name: 'b' });
  tok.b = bTok.body.secret;
  ids.bToken = bTok.body.id;

  const spec = (slug: string) => ({ slug, model: 'llama3.2', backend: 'ollama' });
  assert.equal((await api(hub.url, tok.a, 'PUT', '/api/v1/projects/team-a/workloads/alpha', spec('alpha'))).status, 201);
  assert.equal((await api(hub.url, tok.b, 'PUT', '/api/v1/projects/team-b/workloads/beta', spec('beta'))).status, 201);
  ids.aKey = (await api(hub.url, tok.a, 'POST', '/api/v1/projects/team-a/workloads/alpha/keys', {})).body.id;
  ids.bKey = (await api(hub.url, tok.b, 'POST', '/api/v1/projects/team-b/workloads/beta/keys', {})).body.id;
  const bJoin = await api(hub.url, tok.b, 'POST', '/api/v1/join-tokens', {});
  assert.equal(bJoin.body.project, 'team-b', 'a project token creates join tokens for its own project');
  ids.bJoin = bJoin.body.id;
  const aJoin = await api(hub.url, tok.a, 'POST', '/api/v1/join-tokens', {});

  startAgent({ hub, name: 'b-private', token: bJoin.body.secret });
  startAgent({ hub, name: 'a-private', token: aJoin.body.secret });
  startAgent({ hub, name: 'shared' });
  ids.bWorker = (await waitForWorker(hub.url, hub.adminToken, 'b-private', (w) => w.state === 'ready')).id;
  ids.aWorker = (await waitForWorker(hub.url, hub.adminToken, 'a-private', (w) => w.state === 'ready')).id;
  ids.sharedWorker = (await waitForWorker(hub.url, hub.adminToken, 'shared', (w) => w.state === 'ready')).id;
});
after(() => hub.stop());

test("project A's token gets 404 on every route of project B", async () => {
  const b = '/api/v1/projects/team-b';
  const cases: Array<[string, string, unknown?]> = [
    ['GET', b],
    ['GET', `${b}/workloads`],
    ['GET', `${b}/workloads/beta`],
    ['PUT', `${b}/workloads/beta`, { slug: 'beta', model: 'llama3.2', backend: 'ollama', env: { X: '1' } }],
    ['PUT', `${b}/workloads/new-one`, { slug: 'new-one', model: 'llama3.2', backend: 'ollama' }],
    ['DELETE', `${b}/workloads/beta`],
    ['POST', `${b}/workloads/beta/deactivate`],
    ['POST', `${b}/workloads/beta/keys`, {}],
    ['GET', `${b}/workloads/beta/keys`],
    ['DELETE', `${b}/workloads/beta/keys/${ids.bKey}`],
    ['POST', `${b}/tokens`, {}],
    ['GET', `${b}/tokens`],
    ['DELETE', `${b}/tokens/${ids.bToken}`],
    ['GET', '/api/v1/events?project=team-b'],
    ['GET', '/api/v1/workers?project=team-b'],
    ['GET', `/api/v1/workers/${ids.bWorker}`],
    ['POST', `/api/v1/workers/${ids.bWorker}/cordon`],
    ['PATCH', `/api/v1/workers/${ids.bWorker}`, { labels: { x: 'y' } }],
    ['DELETE', `/api/v1/workers/${ids.bWorker}`],
    ['POST', '/api/v1/join-tokens', { project: 'team-b' }],
    ['DELETE', `/api/v1/join-tokens/${ids.bJoin}`],
    // Another project's ids through one's own paths are not found either.
    ['DELETE', `/api/v1/projects/team-a/tokens/${ids.bToken}`],
    ['DELETE', `/api/v1/projects/team-a/workloads/alpha/keys/${ids.bKey}`],
  ];
  for (const [method, path, body] of cases) {
    const res = await api(hub.url, tok.a, method, path, body);
    assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
  }
  // Nothing of B changed.
  const beta = await api(hub.url, tok.b, 'GET', '/api/v1/projects/team-b/workloads/beta');
  assert.deepEqual([beta.body.generation, beta.body.desired_state, beta.body.env], [1, 'active', undefined]);
  assert.equal((await api(hub.url, tok.b, 'GET', '/api/v1/projects/team-b/workloads/beta/keys')).body.items[0].revoked_at, null);
  assert.equal((await api(hub.url, tok.b, 'GET', '/api/v1/projects/team-b/workloads')).body.items.length, 1);
  assert.equal((await api(hub.url, hub.adminToken, 'GET', `/api/v1/workers/${ids.bWorker}`)).body.cordoned, false);
});

test('listings show only what is yours; the shared pool is visible but only the admin changes it', async () => {
  const projects = await api(hub.url, tok.a, 'GET', '/api/v1/projects');
  assert.deepEqual(projects.body.items.map((p: { slug: string }) => p.slug), ['team-a']);
  const workers = await api(hub.url, tok.a, 'GET', '/api/v1/workers');
  assert.deepEqual(workers.body.items.map((w: { name: string }) => w.name).sort(), ['a-private', 'shared']);
  const joins = await api(hub.url, tok.a, 'GET', '/api/v1/join-tokens');
  assert.ok(joins.body.items.every((t: { project: string }) => t.project === 'team-a'));
  const tokens = await api(hub.url, tok.a, 'GET', '/api/v1/projects/team-a/tokens');
  assert.deepEqual(tokens.body.items.map((t: { name: string }) => t.name), ['a']);
  const events = await api(hub.url, tok.a, 'GET', '/api/v1/events');
  const text = JSON.stringify(events.body.items);
  assert.ok(!text.includes('team-b') && !text.includes('beta') && !text.includes(ids.bWorker), 'no event of B leaks');
  assert.ok(events.body.items.some((e: { workload: string | null }) => e.workload === 'alpha'));

  assert.equal((await api(hub.url, tok.a, 'POST', `/api/v1/workers/${ids.sharedWorker}/cordon`)).status, 403);
  assert.equal((await api(hub.url, tok.a, 'POST', `/api/v1/workers/${ids.aWorker}/cordon`)).status, 200, 'its own private worker');
  assert.equal((await api(hub.url, tok.a, 'POST', '/api/v1/projects', { slug: 'team-c' })).status, 403);
});

test('a workload may pin only workers its project can use', async () => {
  const spec = (workerId: string) => ({ slug: 'pinned', model: 'llama3.2', backend: 'ollama', worker_id: workerId });
  const other = await api(hub.url, tok.a, 'PUT', '/api/v1/projects/team-a/workloads/pinned', spec(ids.bWorker));
  assert.equal(other.status, 422);
  assert.equal(other.body.error.details[0].path, 'worker_id');
  assert.equal((await api(hub.url, tok.a, 'PUT', '/api/v1/projects/team-a/workloads/pinned', spec(ids.sharedWorker))).status, 201);
  const priv = await api(hub.url, tok.a, 'PUT', '/api/v1/projects/team-a/workloads/private-auto', {
    slug: 'private-auto',
    model: 'llama3.2',
    backend: 'ollama',
    execution_policy: 'autoscaling',
    execution_policy_config: { min_workers: 0, max_workers: 2, workers: { source: 'private', private_worker_ids: [ids.aWorker, ids.sharedWorker, ids.bWorker] } },
  });
  assert.equal(priv.status, 422);
  assert.deepEqual(priv.body.error.details.map((d: { path: string }) => d.path), [
    'execution_policy_config.workers.private_worker_ids[1]',
    'execution_policy_config.workers.private_worker_ids[2]',
  ]);
});

test('data keys and agent credentials cannot call the admin API; revoked tokens stop working at once', async () => {
  const key = await api(hub.url, tok.a, 'POST', '/api/v1/projects/team-a/workloads/alpha/keys', { rate_limit_per_minute: 60 });
  assert.match(key.body.secret, /^ik_live_/);
  assert.equal(key.body.rate_limit_per_minute, 60);
  for (const path of ['/api/v1/projects/team-a/workloads', '/api/v1/workers', '/api/v1/projects']) {
    const res = await api(hub.url, key.body.secret, 'GET', path);
    assert.equal(res.status, 401);
    assert.match(res.body.error.message, /data key/);
  }
  const fresh = await api(hub.url, tok.a, 'POST', '/api/v1/projects/team-a/tokens', { name: 'temporary' });
  assert.equal((await api(hub.url, fresh.body.secret, 'GET', '/api/v1/projects/team-a/workloads')).status, 200);
  await eventually('last_used_at of the token', async () => {
    const list = await api(hub.url, tok.a, 'GET', '/api/v1/projects/team-a/tokens');
    return list.body.items.find((t: { id: string; last_used_at: string | null }) => t.id === fresh.body.id && t.last_used_at) ? true : undefined;
  });
  assert.equal((await api(hub.url, tok.a, 'DELETE', `/api/v1/projects/team-a/tokens/${fresh.body.id}`)).status, 200);
  const after = await api(hub.url, fresh.body.secret, 'GET', '/api/v1/projects/team-a/workloads');
  assert.equal(after.status, 401);
  assert.match(after.body.error.message, /revoked/);
  const listed = await api(hub.url, tok.a, 'GET', '/api/v1/projects/team-a/tokens');
  assert.ok(!JSON.stringify(listed.body).includes(fresh.body.secret), 'tokens are listed masked');
});
