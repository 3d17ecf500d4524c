// Integration: the admin API's authentication, its public routes, and bad input that must change nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHub, startAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { CREDENTIAL_FILE } from '../../agent/credentials.ts';
import type { WorkerView } from '../../shared/api.ts';

let hub: TestHub;
let worker: WorkerView;
let credential: string;

before(async () => {
  hub = await startHub();
  const agent = startAgent({ hub, name: 'api-box', smi: 'h100-x1' });
  worker = await waitForWorker(hub.url, hub.adminToken, 'api-box', (w) => w.state === 'ready');
  // The hub lists the worker as soon as it admits it; the agent stores its credential when the welcome arrives.
  const file = join(agent.dataDir, CREDENTIAL_FILE);
  await eventually('the stored credential', async () => (existsSync(file) ? true : undefined));
  credential = JSON.parse(readFileSync(file, 'utf8')).credential;
});
after(() => hub.stop());

test('public routes answer without a token: health, OpenAPI, install.sh, the agent bundle', async () => {
  const health = await api(hub.url, undefined, 'GET', '/api/v1/health');
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  assert.match(health.body.version, /^\d+\.\d+\.\d+/);
  const openapi = await api(hub.url, undefined, 'GET', '/api/v1/openapi.json');
  assert.equal(openapi.status, 200);
  assert.equal(openapi.body.openapi, '3.1.0');
  const script = await fetch(`${hub.url}/install.sh`);
  assert.equal(script.status, 200);
  assert.match(await script.text(), /^#!\/bin\/sh/);
  const sha = await (await fetch(`${hub.url}/agent/bundle.sha256`)).text();
  assert.match(sha, /^[0-9a-f]{64}\s/);
});

test('/api/v1/* without a token, or with a wrong one, is 401 with a message that says what to send', async () => {
  const cases: Array<[string | undefined, RegExp]> = [
    [undefined, /missing token/],
    ['ik_sdk_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC', /no such control token/],
    ['not-a-token', /control token/],
    [hub.joinToken, /agent tokens only work on the agent tunnel/],
    [credential, /agent tokens only work on the agent tunnel/],
    ['ik_live_DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD', /data key/],
  ];
  for (const path of ['/api/v1/workers', `/api/v1/workers/${worker.id}`, '/api/v1/join-tokens', '/api/v1/events']) {
    for (const [token, message] of cases) {
      const res = await api(hub.url, token, 'GET', path);
      assert.equal(res.status, 401, `${path} with ${token?.slice(0, 10)}`);
      assert.equal(res.body.error.code, 'UNAUTHORIZED');
      assert.match(res.body.error.message, message);
    }
  }
  const cordon = await api(hub.url, credential, 'POST', `/api/v1/workers/${worker.id}/cordon`);
  assert.equal(cordon.status, 401);
  const after = await api(hub.url, hub.adminToken, 'GET', `/api/v1/workers/${worker.id}`);
  assert.equal(after.body.cordoned, false, 'a refused call changes nothing');
});

test('/metrics needs the admin token and reports workers, GPUs and tunnel messages', async () => {
  assert.equal((await api(hub.url, undefined, 'GET', '/metrics')).status, 401);
  const res = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.adminToken}` } });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^ik_workers\{state="ready"\} 1$/m);
  assert.match(text, /^ik_gpus\{state="ready"\} 1$/m);
  assert.match(text, /^ik_tunnel_messages_total\{direction="in",type="heartbeat"\} \d+$/m);
  assert.match(text, /^ik_tunnel_messages_total\{direction="out",type="welcome"\} 1$/m);
  assert.match(text, new RegExp(`^ik_gpu_memory_free_mib\\{worker="api-box",gpu="GPU-[^"]+"\\} \\d+$`, 'm'));
});

test('bad bodies get a clear 4xx in the error shape, and change nothing', async () => {
  const path = `/api/v1/workers/${worker.id}`;
  const cases: Array<[string, unknown, Record<string, string>, number, string, RegExp]> = [
    ['malformed JSON', '{"labels": {', { 'content-type': 'application/json' }, 400, 'INVALID_JSON', /not valid JSON/],
    ['empty JSON body', '', { 'content-type': 'application/json' }, 400, 'INVALID_JSON', /not valid JSON/],
    ['wrong content type', 'labels=x', { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/],
    ['form encoded', 'labels=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE', /application\/json/],
    ['unknown field', { labels: {}, colour: 'red' }, {}, 400, 'VALIDATION_FAILED', /colour/],
    ['number as a string', { gpu_hourly_cost_usd: '1.5' }, {}, 400, 'VALIDATION_FAILED', /gpu_hourly_cost_usd/],
    ['null where an object belongs', { labels: null }, {}, 400, 'VALIDATION_FAILED', /labels/],
    ['nothing to change', {}, {}, 400, 'VALIDATION_FAILED', /nothing to change/],
    ['a negative cost', { gpu_hourly_cost_usd: -1 }, {}, 400, 'VALIDATION_FAILED', /gpu_hourly_cost_usd/],
    ['a JSON array', [1, 2], {}, 400, 'VALIDATION_FAILED', /body/],
    ['a body over 1 MiB', { labels: { big: 'x'.repeat(2 * 1024 * 1024) } }, {}, 413, 'PAYLOAD_TOO_LARGE', /larger than/],
  ];
  for (const [what, body, headers, status, code, message] of cases) {
    const res = await api(hub.url, hub.adminToken, 'PATCH', path, body, headers);
    assert.equal(res.status, status, what);
    assert.equal(res.body.error.code, code, what);
    assert.match(res.body.error.message, message, what);
  }
  const invalid = await api(hub.url, hub.adminToken, 'PATCH', path, { labels: {}, colour: 'red' });
  assert.deepEqual(invalid.body.error.details?.[0]?.path, 'body');
  const typed = await api(hub.url, hub.adminToken, 'PATCH', path, { gpu_hourly_cost_usd: '1.5' });
  assert.equal(typed.body.error.details?.[0]?.path, 'body.gpu_hourly_cost_usd');

  const unchanged = await api(hub.url, hub.adminToken, 'GET', path);
  assert.deepEqual(unchanged.body.labels, {});
  assert.equal(unchanged.body.gpu_hourly_cost_usd, null);
});

test('join tokens: bad bodies are refused and nothing is created; unknown ids are 404', async () => {
  const before = (await api(hub.url, hub.adminToken, 'GET', '/api/v1/join-tokens')).body.items.length;
  for (const body of [
    { expires_in_s: '60' },
    { expires_in_s: -5 },
    { project: 'no-such-project' },
    { labels: { 'bad key!': 'x' } },
    { labels: 'zone=eu' },
    { secret: 'ik_join_mine' },
  ]) {
    const res = await api(hub.url, hub.adminToken, 'POST', '/api/v1/join-tokens', body);
    assert.ok(res.status === 400 || res.status === 404, JSON.stringify(body));
  }
  assert.equal((await api(hub.url, hub.adminToken, 'GET', '/api/v1/join-tokens')).body.items.length, before);
  const missing = await api(hub.url, hub.adminToken, 'DELETE', '/api/v1/join-tokens/jtk_nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'TOKEN_NOT_FOUND');
});

test('unknown routes and query parameters are refused clearly', async () => {
  const route = await api(hub.url, hub.adminToken, 'GET', '/api/v1/nothing-here');
  assert.equal(route.status, 404);
  assert.equal(route.body.error.code, 'ROUTE_NOT_FOUND');
  assert.match(route.body.error.message, /openapi\.json/);
  const query = await api(hub.url, hub.adminToken, 'GET', '/api/v1/workers?colour=red');
  assert.equal(query.status, 400);
  assert.equal(query.body.error.details[0].path, 'query');
  const project = await api(hub.url, hub.adminToken, 'GET', '/api/v1/workers?project=nope');
  assert.equal(project.status, 404);
  assert.equal(project.body.error.code, 'PROJECT_NOT_FOUND');
});
