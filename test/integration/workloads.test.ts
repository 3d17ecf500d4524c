// Integration: ensure() over HTTP against a real hub: the documented specs, drift modes, bad input, concurrency.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestHub } from '../helpers/processes.ts';
import { api, waitForWorker } from '../helpers/api.ts';
import { exampleSpecs } from '../fixtures/specs/examples.ts';

let hub: TestHub;
let workerId: string;
const acme = '/api/v1/projects/acme';

before(async () => {
  hub = await startHub();
  assert.equal((await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects', { slug: 'acme', name: 'Acme' })).status, 201);
  const join = await api(hub.url, hub.adminToken, 'POST', '/api/v1/join-tokens', { project: 'acme' });
  startAgent({ hub, name: 'acme-box', token: join.body.secret, smi: 'h100-x1' });
  workerId = (await waitForWorker(hub.url, hub.adminToken, 'acme-box', (w) => w.state === 'ready')).id;
});
after(() => hub.stop());

const put = (slug: string, spec: unknown, onDrift?: string, headers?: Record<string, string>) =>
  api(hub.url, hub.adminToken, 'PUT', `${acme}/workloads/${slug}${onDrift ? `?on_drift=${onDrift}` : ''}`, spec, headers);

test('every documented spec and variation is accepted as written, with defaults shown back', async () => {
  for (const { title, spec } of exampleSpecs(workerId)) {
    const res = await put(String(spec.slug), spec);
    assert.equal(res.status, 201, `${title}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.generation, 1, title);
    assert.equal(res.body.project, 'acme', title);
    assert.equal(res.body.state, 'creating', title);
  }
  const defaults = await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads/support-bot-defaults`);
  assert.equal(defaults.body.execution_policy_config.min_workers, 0);
  assert.equal(defaults.body.execution_policy_config.max_workers, 1);
  const list = await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads`);
  assert.equal(list.body.items.length, exampleSpecs(workerId).length);
});

test('ensure is idempotent; reconcile bumps the generation, fail names the fields, ignore keeps the stored spec', async () => {
  const base = { slug: 'drifty', model: 'Qwen/Qwen2.5-0.5B-Instruct', backend: 'vllm', command: 'vllm serve Qwen/Qwen2.5-0.5B-Instruct' };
  const created = await put('drifty', base);
  assert.equal(created.status, 201);
  assert.deepEqual([created.body.task_type, created.body.execution_policy, created.body.execution_policy_config.replicas, created.body.name], ['text2text', 'fixed', 1, 'drifty']);

  assert.equal(created.headers.get('x-ik-ensure'), 'created');
  const same = await put('drifty', base);
  assert.equal(same.status, 200);
  assert.equal(same.headers.get('x-ik-ensure'), 'unchanged');
  assert.equal(same.body.generation, 1);
  // Defaults written out explicitly are the same spec.
  const explicit = await put('drifty', { ...base, name: 'drifty', task_type: 'text2text', execution_policy: 'fixed', execution_policy_config: { replicas: 1 } });
  assert.equal(explicit.body.generation, 1);

  const changed = { ...base, execution_policy_config: { replicas: 3 }, command: `${base.command} --max-model-len 4096` };
  const failed = await put('drifty', changed, 'fail');
  assert.equal(failed.status, 409);
  assert.equal(failed.body.error.code, 'WORKLOAD_DRIFT');
  assert.deepEqual(failed.body.error.details.map((d: { path: string }) => d.path).sort(), ['command', 'execution_policy_config.replicas']);
  assert.equal((await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads/drifty`)).body.generation, 1, 'fail changes nothing');

  const ignored = await put('drifty', changed, 'ignore');
  assert.equal(ignored.status, 200);
  assert.equal(ignored.headers.get('x-ik-ensure'), 'ignored');
  assert.equal(ignored.body.generation, 1);
  assert.equal(ignored.body.execution_policy_config.replicas, 1);

  const reconciled = await put('drifty', changed);
  assert.equal(reconciled.status, 200);
  assert.equal(reconciled.headers.get('x-ik-ensure'), 'reconciled');
  assert.equal(reconciled.body.generation, 2);
  assert.equal(reconciled.body.execution_policy_config.replicas, 3);
  assert.equal((await put('drifty', changed, 'reconcile')).body.generation, 2);

  const events = await api(hub.url, hub.adminToken, 'GET', '/api/v1/events?project=acme&workload=drifty');
  const specEvents = events.body.items.filter((e: { kind: string }) => e.kind === 'workload.created' || e.kind === 'workload.updated');
  assert.deepEqual(specEvents.map((e: { kind: string }) => e.kind), ['workload.updated', 'workload.created']);
  assert.match(specEvents[0].message, /generation 2: (command, execution_policy_config\.replicas|execution_policy_config\.replicas, command)/);
});

test('env values are sealed: masked on GET, and a masked value sent back keeps the stored one', async () => {
  const spec = { slug: 'secretive', model: 'Qwen/Qwen2.5-0.5B-Instruct', backend: 'vllm', command: 'vllm serve Qwen/Qwen2.5-0.5B-Instruct', env: { HF_TOKEN: 'hf_supersecret', LOG: 'debug' } };
  await put('secretive', spec);
  const shown = await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads/secretive`);
  assert.deepEqual(shown.body.env, { HF_TOKEN: '********', LOG: '********' });
  assert.ok(!JSON.stringify(shown.body).includes('hf_supersecret'));
  // GET, edit, PUT back: the masked values keep what is stored, so nothing drifts.
  const { project: _p, state: _s, desired_state: _d, generation: _g, desired_replicas: _r, deactivated_by: _db, adapters: _ad, replicas: _x, placement: _pl, created_at: _c, updated_at: _u, ...roundTrip } = shown.body;
  assert.equal((await put('secretive', roundTrip, 'fail')).status, 200);
  const rotated = await put('secretive', { ...spec, env: { HF_TOKEN: 'hf_rotated', LOG: 'debug' } }, 'fail');
  assert.equal(rotated.status, 409);
  assert.deepEqual(rotated.body.error.details.map((d: { path: string }) => d.path), ['env.HF_TOKEN']);
  assert.ok(!JSON.stringify(rotated.body).includes('hf_'), 'drift details never show env values');
  const unknownMask = await put('secretive', { ...spec, env: { NEW_VAR: '********' } });
  assert.equal(unknownMask.status, 422);
  assert.equal(unknownMask.body.error.details[0].path, 'env.NEW_VAR');
});

test('an invalid spec reports every problem with its path, and nothing is stored', async () => {
  const res = await put('broken', { slug: 'broken', model: 'm', backend: 'vllm', task_type: 'text2image', min_vram_gb: 24, execution_policy: 'scheduled', execution_policy_config: { cron: 'every night' } });
  assert.equal(res.status, 422);
  assert.equal(res.body.error.code, 'WORKLOAD_SPEC_INVALID');
  const paths = res.body.error.details.map((d: { path: string }) => d.path);
  for (const p of ['command', 'task_type', 'min_vram_gb', 'execution_policy_config.cron']) assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  assert.equal((await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads/broken`)).status, 404);

  const pin = await put('pinned-elsewhere', { slug: 'pinned-elsewhere', model: 'm', backend: 'ollama', worker_id: 'wrk_NoSuchWorker00000' });
  assert.equal(pin.status, 422);
  assert.equal(pin.body.error.details[0].path, 'worker_id');
});

test('bad requests get a clear 4xx and change nothing', async () => {
  const before = (await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads`)).body.items.length;
  const spec = { slug: 'ok-slug', model: 'llama3.2', backend: 'ollama' };
  const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, string]> = [
    ['non-JSON', () => put('ok-slug', '{"slug": ', undefined, { 'content-type': 'application/json' }), 400, 'INVALID_JSON'],
    ['a body over 1 MiB', () => put('ok-slug', { ...spec, env: { BIG: 'x'.repeat(1024 * 1024 + 10) } }), 413, 'PAYLOAD_TOO_LARGE'],
    ['a wrong content type', () => put('ok-slug', JSON.stringify(spec), undefined, { 'content-type': 'text/yaml' }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a unicode slug', () => put(encodeURIComponent('café'), { ...spec, slug: 'café' }), 422, 'WORKLOAD_SPEC_INVALID'],
    ['an overlong slug', () => put('a'.repeat(64), { ...spec, slug: 'a'.repeat(64) }), 422, 'WORKLOAD_SPEC_INVALID'],
    ['an overlong path', () => put('a'.repeat(300), { ...spec, slug: 'a'.repeat(300) }), 400, 'VALIDATION_FAILED'],
    ['path and body disagree', () => put('ok-slug', { ...spec, slug: 'other-slug' }), 400, 'VALIDATION_FAILED'],
    ['a number as a string', () => put('ok-slug', { ...spec, execution_policy_config: { replicas: '2' } }), 422, 'WORKLOAD_SPEC_INVALID'],
    ['null where an object belongs', () => put('ok-slug', { ...spec, execution_policy_config: null }), 422, 'WORKLOAD_SPEC_INVALID'],
    ['a JSON array', () => put('ok-slug', [spec]), 422, 'WORKLOAD_SPEC_INVALID'],
    ['an unknown on_drift', () => put('ok-slug', spec, 'maybe'), 400, 'VALIDATION_FAILED'],
    ['an unknown project', () => api(hub.url, hub.adminToken, 'PUT', '/api/v1/projects/nope/workloads/ok-slug', spec), 404, 'PROJECT_NOT_FOUND'],
  ];
  for (const [what, call, status, code] of cases) {
    const res = await call();
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body).slice(0, 300)}`);
    assert.equal(res.body.error.code, code, what);
  }
  assert.equal((await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads`)).body.items.length, before);
  assert.equal((await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads/ok-slug`)).status, 404);
});

test('20 parallel ensure() calls of one new slug create exactly one workload with one generation', async () => {
  const spec = { slug: 'racy', model: 'llama3.2', backend: 'ollama' };
  const results = await Promise.all(Array.from({ length: 20 }, () => put('racy', spec)));
  assert.deepEqual(results.map((r) => r.status).sort(), [...Array(19).fill(200), 201].sort());
  assert.ok(results.every((r) => r.body.generation === 1));
  const created = await api(hub.url, hub.adminToken, 'GET', '/api/v1/events?project=acme&workload=racy');
  assert.equal(created.body.items.filter((e: { kind: string }) => e.kind === 'workload.created').length, 1);
});

test('delete, activate and deactivate', async () => {
  await put('short-lived', { slug: 'short-lived', model: 'llama3.2', backend: 'ollama' });
  const off = await api(hub.url, hub.adminToken, 'POST', `${acme}/workloads/short-lived/deactivate`);
  assert.deepEqual([off.body.state, off.body.desired_state, off.body.desired_replicas], ['inactive', 'inactive', 0]);
  const on = await api(hub.url, hub.adminToken, 'POST', `${acme}/workloads/short-lived/activate`);
  assert.deepEqual([on.body.desired_state, on.body.desired_replicas], ['active', 1]);
  const key = await api(hub.url, hub.adminToken, 'POST', `${acme}/workloads/short-lived/keys`, { name: 'ci' });
  assert.equal(key.status, 201);
  assert.equal((await api(hub.url, hub.adminToken, 'DELETE', `${acme}/workloads/short-lived`)).status, 204);
  assert.equal((await api(hub.url, hub.adminToken, 'GET', `${acme}/workloads/short-lived`)).status, 404);
  assert.equal((await api(hub.url, hub.adminToken, 'DELETE', `${acme}/workloads/short-lived`)).status, 404);
  const asked = new Set(['workload.deleted', 'key.created', 'workload.activated', 'workload.deactivated', 'workload.created']);
  const kinds = (await api(hub.url, hub.adminToken, 'GET', '/api/v1/events?project=acme&workload=short-lived')).body.items
    .map((e: { kind: string }) => e.kind)
    .filter((k: string) => asked.has(k));
  assert.deepEqual(kinds, ['workload.deleted', 'key.created', 'workload.activated', 'workload.deactivated', 'workload.created']);
});
