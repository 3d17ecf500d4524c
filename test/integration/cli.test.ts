// Integration: the ik CLI as users run it: `ik up` on a machine without GPUs, worker and join-token commands, errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { runIk, spawnIk, startAgent, startHub, tempDir, type Child, type TestHub } from '../helpers/processes.ts';
import { waitForWorker } from '../helpers/api.ts';

const hasNvidiaSmi = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v nvidia-smi'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('ik up: the hub plus a local agent; prints the URL, where the admin token is, and the install one-liner', async () => {
  const cwd = tempDir('ik-up-');
  const up: Child = spawnIk(['up', '--port', '0', '--host', '127.0.0.1'], { IK_HEARTBEAT_INTERVAL_MS: '500', IK_NVIDIA_SMI: '' }, cwd);
  const urlLine = await up.waitForLine(/ikhub is running at http:\/\/127\.0\.0\.1:\d+/);
  await up.waitForLine(/curl -sfL http:\/\/\S+\/install\.sh \| IK_TOKEN=ik_join_\w+ sh -/);
  await up.waitForLine(/admin token \(shown once/);
  assert.match(up.output, /\.ik\/admin-token/);
  const url = /at (http:\/\/\S+)/.exec(urlLine)![1]!;

  // The CLI in the same directory finds the hub through ./.ik/cli.json (0600).
  assert.equal(statSync(join(cwd, '.ik/cli.json')).mode & 0o777, 0o600);
  assert.equal(statSync(join(cwd, '.ik/admin-token')).mode & 0o777, 0o600);
  let workers: any[] = [];
  for (let i = 0; i < 100 && workers.length === 0; i++) {
    const ls = await runIk(['workers', 'ls', '--json'], {}, cwd);
    assert.equal(ls.code, 0, ls.stderr);
    workers = JSON.parse(ls.stdout).items.filter((w: any) => w.state === 'ready');
  }
  assert.equal(workers.length, 1, 'the embedded agent registered');
  if (!hasNvidiaSmi) {
    assert.equal(workers[0].gpu_error.code, 'NVIDIA_SMI_MISSING');
    assert.deepEqual(workers[0].gpus, []);
  }
  const table = await runIk(['workers'], {}, cwd);
  assert.match(table.stdout, /ID\s+NAME\s+STATE/);
  assert.match(table.stdout, new RegExp(`${workers[0].id}\\s+\\S+\\s+ready`));
  assert.ok(url);

  // A second start reuses the stored secrets and does not print the admin token again.
  await up.kill('SIGTERM');
  assert.equal((await up.exited).code, 0);
  const again = spawnIk(['up', '--port', '0', '--host', '127.0.0.1'], { IK_NVIDIA_SMI: '' }, cwd);
  await again.waitForLine(/admin token: in /);
  assert.doesNotMatch(again.output, /ik_sdk_/);
  await again.kill('SIGTERM');
});

let hub: TestHub;
let env: NodeJS.ProcessEnv;
before(async () => {
  hub = await startHub();
  env = { IK_HUB_URL: hub.url, IK_TOKEN: hub.adminToken };
  startAgent({ hub, name: 'cli-box', smi: 'h100-mig' });
  await waitForWorker(hub.url, hub.adminToken, 'cli-box', (w) => w.state === 'ready');
});
after(() => hub.stop());

test('ik workers ls|show|cordon|uncordon|drain with and without --json', async () => {
  const ls = await runIk(['workers', 'ls', '--json'], env);
  assert.equal(ls.code, 0, ls.stderr);
  const w = JSON.parse(ls.stdout).items[0];
  assert.equal(w.name, 'cli-box');

  const show = await runIk(['workers', 'show', w.id], env);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /NVIDIA H100 80GB HBM3/);
  assert.match(show.stdout, /MIG: /);
  assert.match(show.stdout, /driver:\s+590\.48\.01 \(CUDA 13\.1\)/);

  const cordon = await runIk(['workers', 'cordon', w.id, '--json'], env);
  assert.equal(JSON.parse(cordon.stdout).cordoned, true);
  const drain = await runIk(['workers', 'drain', w.id], env);
  assert.match(drain.stdout, /cordoned,draining/);
  const uncordon = await runIk(['workers', 'uncordon', w.id, '--json'], env);
  assert.deepEqual([JSON.parse(uncordon.stdout).cordoned, JSON.parse(uncordon.stdout).draining], [false, false]);
});

test('ik join-token create|ls|revoke', async () => {
  const created = await runIk(['join-token', 'create', '--label', 'zone=eu', '--expires-in', '3600', '--json'], env);
  assert.equal(created.code, 0, created.stderr);
  const token = JSON.parse(created.stdout);
  assert.match(token.secret, /^ik_join_/);
  assert.deepEqual(token.labels, { zone: 'eu' });
  assert.ok(token.expires_at);

  const ls = await runIk(['join-token', 'ls'], env);
  assert.match(ls.stdout, new RegExp(`${token.id}\\s+${token.prefix.replace(/[_]/g, '_')}…`));
  assert.doesNotMatch(ls.stdout, new RegExp(token.secret), 'listings are masked');

  const revoked = await runIk(['join-token', 'revoke', token.id, '--json'], env);
  assert.ok(JSON.parse(revoked.stdout).revoked_at);
  const human = await runIk(['join-token', 'create'], env);
  assert.match(human.stdout, /shown once/);
  assert.match(human.stdout, /curl -sfL .*install\.sh \| IK_TOKEN=ik_join_/);
});

test('errors: one clear line and a non-zero exit', async () => {
  const cases: Array<[string[], NodeJS.ProcessEnv, number, RegExp]> = [
    [['workers', 'show', 'wrk_nope'], env, 1, /^ik: error: no worker wrk_nope/],
    [['workers', 'ls', '--bogus'], env, 2, /^ik: error: Unknown option '--bogus'.*ik workers ls/],
    [['workers', 'cordon'], env, 2, /needs a worker id/],
    [['nonsense'], env, 2, /unknown command "nonsense"/],
    [['workers', 'ls'], { IK_HUB_URL: 'http://127.0.0.1:1', IK_TOKEN: hub.adminToken }, 1, /cannot reach the hub at http:\/\/127\.0\.0\.1:1/],
    [['workers', 'ls'], { IK_HUB_URL: hub.url, IK_TOKEN: 'ik_sdk_wrongwrongwrongwrongwrongwrongwrong' }, 1, /invalid token/],
    [['workers', 'ls'], { IK_DATA_DIR: tempDir() }, 1, /no hub to talk to/],
    [['join-token', 'create', '--label', 'novalue'], env, 2, /KEY=VALUE/],
    [['join-token', 'create', '--expires-in', 'soon'], env, 2, /--expires-in expects a whole number/],
    [['hub', '--port', 'eighty'], {}, 2, /--port expects a whole number/],
    [['agent', '--hub', 'http://127.0.0.1:1'], { IK_DATA_DIR: tempDir() }, 1, /has not joined .* yet: pass --token/],
    [['hub'], { IK_ADMIN_TOKEN: 'ik_sdk_short' }, 1, /IK_ADMIN_TOKEN: must be "ik_sdk_" followed by at least 32/],
  ];
  for (const [args, e, code, message] of cases) {
    const res = await runIk(args, e);
    assert.equal(res.code, code, `${args.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, message, args.join(' '));
    assert.equal(res.stderr.trim().split('\n').length, 1, `one line: ${res.stderr}`);
  }
  const json = await runIk(['workers', 'show', 'wrk_nope', '--json'], env);
  assert.equal(JSON.parse(json.stderr).error.message.startsWith('no worker'), true);
  const version = await runIk(['version', '--json'], {});
  assert.match(JSON.parse(version.stdout).version, /^\d+\.\d+\.\d+/);
});
