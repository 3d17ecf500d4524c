// Integration: the CLI's workload flow against a real hub: projects, tokens, ensure, workloads, keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runIk, startHub, tempDir, type TestHub } from '../helpers/processes.ts';

let hub: TestHub;
let admin: NodeJS.ProcessEnv;
let dir: string;

before(async () => {
  hub = await startHub();
  admin = { IK_HUB_URL: hub.url, IK_TOKEN: hub.adminToken };
  dir = tempDir('ik-cli-');
});
after(() => hub.stop());

const specFile = (name: string, spec: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, typeof spec === 'string' ? spec : JSON.stringify(spec, null, 2));
  return file;
};

test('projects and project tokens: create, list, use, revoke', async () => {
  const created = await runIk(['projects', 'create', 'acme', '--name', 'Acme Inc'], admin);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /project acme created/);
  const ls = await runIk(['projects', 'ls', '--json'], admin);
  assert.deepEqual(JSON.parse(ls.stdout).items.map((p: { slug: string }) => p.slug), ['acme', 'default']);

  const token = await runIk(['tokens', 'create', '--project', 'acme', '--name', 'ci', '--json'], admin);
  const secret = JSON.parse(token.stdout).secret as string;
  assert.match(secret, /^ik_sdk_/);
  const asProject = { IK_HUB_URL: hub.url, IK_TOKEN: secret, IK_PROJECT: 'acme' };
  const mine = await runIk(['projects', 'ls', '--json'], asProject);
  assert.deepEqual(JSON.parse(mine.stdout).items.map((p: { slug: string }) => p.slug), ['acme']);
  const table = await runIk(['tokens', 'ls'], asProject);
  assert.match(table.stdout, /ci\s+-\s+active|ci\s+\d+s ago\s+active/);
  assert.doesNotMatch(table.stdout, new RegExp(secret));
  const id = JSON.parse(token.stdout).id as string;
  const revoked = await runIk(['tokens', 'revoke', id], { ...admin, IK_PROJECT: 'acme' });
  assert.match(revoked.stdout, /revoked/);
  const refused = await runIk(['workloads', 'ls'], asProject);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /revoked/);
});

test('ik ensure -f: create, unchanged, drift refused with every difference, reconciled', async () => {
  const spec = { name: 'Support bot', slug: 'support-bot', model: 'meta-llama/Llama-3.1-8B-Instruct', backend: 'vllm', command: 'vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192', env: { HF_TOKEN: 'hf_x' } };
  const file = specFile('support-bot.json', spec);
  const first = await runIk(['ensure', '-f', file], admin);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /workload default\/support-bot created: generation 1/);
  const second = await runIk(['ensure', '-f', file, '--json'], admin);
  assert.equal(JSON.parse(second.stdout).generation, 1);

  const changed = specFile('changed.json', { ...spec, model: 'meta-llama/Llama-3.1-70B-Instruct', command: 'vllm serve meta-llama/Llama-3.1-70B-Instruct', execution_policy_config: { replicas: 2 } });
  const fail = await runIk(['ensure', '-f', changed, '--on-drift', 'fail'], admin);
  assert.equal(fail.code, 1);
  const lines = fail.stderr.trim().split('\n');
  assert.match(lines[0]!, /^ik: error: the stored spec of support-bot differs in/);
  for (const path of ['model', 'command', 'execution_policy_config.replicas']) assert.ok(lines.some((l) => l.startsWith(`  ${path}: stored`)), `${path} listed`);
  const reconciled = await runIk(['ensure', '-f', changed], admin);
  assert.match(reconciled.stdout, /reconciled: generation 2/);

  const show = await runIk(['workloads', 'show', 'support-bot'], admin);
  assert.match(show.stdout, /meta-llama\/Llama-3\.1-70B-Instruct on vllm \(text2text\)/);
  assert.match(show.stdout, /HF_TOKEN=\*{8}/);
  assert.doesNotMatch(show.stdout, /hf_x/);
  const ls = await runIk(['workloads'], admin);
  assert.match(ls.stdout, /support-bot\s+meta-llama\/Llama-3\.1-70B-Instruct\s+vllm\s+text2text\s+fixed\s+creating\s+0\/2\s+2/);
});

test('ik ensure prints every validation problem with its path', async () => {
  const bad = specFile('bad.json', { slug: 'Bad_Slug', model: 'x', backend: 'vllm', provider: 'aws', execution_policy: 'autoscaling', execution_policy_config: { min_replicas: 1, max_workers: 2 } });
  const res = await runIk(['ensure', '-f', bad], admin);
  assert.equal(res.code, 1);
  const detail = res.stderr.split('\n').slice(1).filter(Boolean);
  for (const path of ['slug', 'command', 'provider', 'execution_policy_config.min_replicas']) {
    assert.ok(detail.some((l) => l.startsWith(`  ${path}: `)), `${path} in:\n${res.stderr}`);
  }
  assert.match(res.stderr, /min_workers/, 'says what to use instead');
  const notJson = await runIk(['ensure', '-f', specFile('broken.json', '{"slug": ')], admin);
  assert.equal(notJson.code, 1);
  assert.match(notJson.stderr, /broken\.json is not valid JSON/);
  const missing = await runIk(['ensure', '-f', join(dir, 'nope.json')], admin);
  assert.match(missing.stderr, /cannot read .*nope\.json: no such file/);
  const noFile = await runIk(['ensure'], admin);
  assert.equal(noFile.code, 2);
  const drift = await runIk(['ensure', '-f', bad, '--on-drift', 'sometimes'], admin);
  assert.equal(drift.code, 2);
});

test('ik keys create|ls|revoke and ik workloads rm', async () => {
  const spec = specFile('emb.json', { slug: 'emb', model: 'nomic-embed-text', backend: 'ollama', task_type: 'embedding' });
  assert.equal((await runIk(['ensure', '-f', spec], admin)).code, 0);
  const key = await runIk(['keys', 'create', 'emb', '--rate-limit', '120', '--json'], admin);
  assert.equal(key.code, 0, key.stderr);
  const k = JSON.parse(key.stdout);
  assert.match(k.secret, /^ik_live_/);
  assert.equal(k.rate_limit_per_minute, 120);
  const ls = await runIk(['keys', 'ls'], admin);
  assert.match(ls.stdout, new RegExp(`${k.id}\\s+\\S+…\\s+emb\\s+\\S+ key\\s+120/min`));
  const revoked = await runIk(['keys', 'revoke', k.id, '--json'], admin);
  assert.ok(JSON.parse(revoked.stdout).revoked_at);
  const unknown = await runIk(['keys', 'revoke', 'key_nope'], admin);
  assert.equal(unknown.code, 1);
  const rm = await runIk(['workloads', 'rm', 'emb'], admin);
  assert.match(rm.stdout, /workload emb deleted/);
  const gone = await runIk(['workloads', 'show', 'emb'], admin);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no workload "emb"/);
});
