// Integration: the dry run (`:plan`, `ik plan`) changes nothing and explains itself; logs are read through the agent
// (`ik workloads logs`, tail and follow).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runIk, spawnIk, startAgent, startHub, tempDir, type TestHub } from '../helpers/processes.ts';
import { api, waitForWorker } from '../helpers/api.ts';
import { allReady, backendGet, ensure, vllmSpec, waitForReplicas } from '../helpers/workloads.ts';

let hub: TestHub;
let env: NodeJS.ProcessEnv;
let workerId = '';

before(async () => {
  hub = await startHub();
  env = { IK_HUB_URL: hub.url, IK_TOKEN: hub.adminToken };
  startAgent({ hub, name: 'planner-box', smi: 'h100-x1' });
  workerId = (await waitForWorker(hub.url, hub.adminToken, 'planner-box', (w) => w.state === 'ready')).id;
  await api(hub.url, hub.adminToken, 'PATCH', `/api/v1/workers/${workerId}`, { gpu_hourly_cost_usd: 2.5 });
});
after(() => hub.stop());

test('POST :plan answers where a replica would go and its cost, and changes nothing', async () => {
  const fits = await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects/default/workloads:plan', vllmSpec('planned', 'meta-llama/Llama-3.1-8B-Instruct', { execution_policy_config: { replicas: 2 } }));
  assert.equal(fits.status, 200);
  assert.equal(fits.body.feasible, true);
  assert.equal(fits.body.placement.worker_id, workerId);
  assert.equal(fits.body.estimate.gpus, 1);
  assert.equal(fits.body.estimate.known, true);
  assert.ok(fits.body.estimate.vram_gib_per_gpu > 15 && fits.body.estimate.vram_gib_per_gpu < 25, String(fits.body.estimate.vram_gib_per_gpu));
  assert.deepEqual(fits.body.hourly_cost_usd, { min: 5, max: 5 }, '2 replicas × 1 GPU × $2.50');

  const tooBig = await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects/default/workloads:plan', vllmSpec('too-big', 'meta-llama/Llama-3.1-405B-Instruct'));
  assert.equal(tooBig.status, 200, 'a plan that does not fit is still an answer');
  assert.equal(tooBig.body.feasible, false);
  assert.match(tooBig.body.explanation, new RegExp(`^needs ~\\d+ GiB on 1 GPU.*; ${workerId}: `));

  const invalid = await api(hub.url, hub.adminToken, 'POST', '/api/v1/projects/default/workloads:plan', { slug: 'x', model: 'm', backend: 'vllm' });
  assert.equal(invalid.status, 422);
  assert.equal(invalid.body.error.details[0].path, 'command');
  assert.equal((await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/default/workloads')).body.items.length, 0, 'nothing was created');
});

test('ik plan prints the placement or why not', async () => {
  const dir = tempDir();
  const file = join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(vllmSpec('cli-plan', 'Qwen/Qwen2.5-7B-Instruct')));
  const ok = await runIk(['plan', '-f', file], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /fits:\s+yes/);
  assert.match(ok.stdout, new RegExp(`placement:\\s+${workerId} on GPU-`));
  assert.match(ok.stdout, /hourly cost:\s+\$2\.50/);
  writeFileSync(file, JSON.stringify(vllmSpec('cli-plan', 'meta-llama/Llama-3.1-405B-Instruct')));
  const no = await runIk(['plan', '-f', file, '--json'], env);
  assert.equal(no.code, 0);
  assert.equal(JSON.parse(no.stdout).feasible, false);
  const human = await runIk(['plan', '-f', file], env);
  assert.equal(human.code, 1, 'a plan that does not fit exits non-zero');
  assert.match(human.stdout, /why not:\s+needs ~/);
});

test('logs through the agent: tail, and follow that streams new lines until the client leaves', async () => {
  await ensure(hub, vllmSpec('chatty'));
  const [replica] = await waitForReplicas(hub, 'chatty', allReady(1));
  const tail = await runIk(['workloads', 'logs', 'chatty', '--tail', '5'], env);
  assert.equal(tail.code, 0, tail.stderr);
  const lines = tail.stdout.trim().split('\n');
  assert.ok(lines.length >= 1 && lines.length <= 5, `tail 5 gave ${lines.length} lines`);

  const follow = spawnIk(['workloads', 'logs', 'chatty', '--follow', '--tail', '1'], env);
  await follow.waitForLine(/./);
  await backendGet(replica!.port!, '/v1/models?marker=followed-line');
  await follow.waitForLine(/marker=followed-line/);
  await follow.kill('SIGTERM');

  const unknown = await runIk(['workloads', 'logs', 'chatty', '--replica', 'rep_NotARealReplica'], env);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no replica rep_NotARealReplica/);
});
