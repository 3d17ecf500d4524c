// Integration: a real hub and real agents (child processes, fake nvidia-smi) register, heartbeat, drop and come back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startHub, startAgent } from '../helpers/processes.ts';
import { api, eventually, listWorkers, waitForWorker } from '../helpers/api.ts';
import { CREDENTIAL_FILE } from '../../agent/credentials.ts';
import { EXIT_REJECTED } from '../../agent/main.ts';

test('two agents register with their own inventory, go disconnected then down, and keep their id on restart', async () => {
  const hub = await startHub();
  const a = startAgent({ hub, name: 'box-a', smi: 'h100-x2' });
  const b = startAgent({ hub, name: 'box-b', smi: 'l40s-r610' });

  const wa = await waitForWorker(hub.url, hub.adminToken, 'box-a', (w) => w.state === 'ready');
  const wb = await waitForWorker(hub.url, hub.adminToken, 'box-b', (w) => w.state === 'ready');
  assert.match(wa.id, /^wrk_/);
  assert.notEqual(wa.id, wb.id);

  // box-a: two H100s from the fake nvidia-smi, sorted by index, identified by UUID.
  assert.equal(wa.gpus.length, 2);
  assert.deepEqual(wa.gpus.map((g) => g.index), [0, 1]);
  assert.ok(wa.gpus.every((g) => g.name === 'NVIDIA H100 80GB HBM3' && g.uuid.startsWith('GPU-')));
  assert.equal(wa.gpus[0]!.memory_total_mib, 81559);
  assert.equal(wa.gpus[0]!.compute_capability, '9.0');
  assert.equal(wa.gpu_driver_version, '590.48.01');
  assert.equal(wa.cuda_version, '13.1');
  assert.equal(wa.gpu_error, null);
  assert.equal(wa.project, null);
  assert.equal(wa.runtime.kind, 'process');
  assert.ok(wa.host.cpu_cores > 0 && wa.host.memory_total_mib > 0);
  // box-b: the R610 wording still yields the driver and CUDA versions.
  assert.equal(wb.gpus[0]!.name, 'NVIDIA L40S');
  assert.equal(wb.gpu_driver_version, '610.57.04');
  assert.equal(wb.cuda_version, '13.3');

  // Heartbeats keep arriving (they start after the welcome, once the credential is stored 0600).
  const firstBeat = Date.parse(wa.last_heartbeat_at!);
  await waitForWorker(hub.url, hub.adminToken, 'box-a', (w) => Date.parse(w.last_heartbeat_at!) > firstBeat);
  assert.equal(statSync(join(a.dataDir, CREDENTIAL_FILE)).mode & 0o777, 0o600);

  // Killing an agent: disconnected at once (the socket drops), down after 3 missed heartbeats.
  await a.child.kill('SIGKILL');
  await waitForWorker(hub.url, hub.adminToken, 'box-a', (w) => w.state === 'disconnected' || w.state === 'down');
  await waitForWorker(hub.url, hub.adminToken, 'box-a', (w) => w.state === 'down');
  const events = await api(hub.url, hub.adminToken, 'GET', `/api/v1/events?worker=${wa.id}`);
  assert.equal(events.status, 200);
  const kinds = (events.body.items as Array<{ kind: string }>).map((e) => e.kind);
  // Newest first: lost after disconnected after joined.
  assert.deepEqual(kinds, ['worker.lost', 'worker.disconnected', 'worker.joined']);

  // The same agent restarting (same data dir, no token needed) keeps its worker id: no duplicate row.
  const again = startAgent({ hub, name: 'box-a', smi: 'h100-x2', dataDir: a.dataDir, token: '' });
  const back = await waitForWorker(hub.url, hub.adminToken, 'box-a', (w) => w.state === 'ready');
  assert.equal(back.id, wa.id);
  assert.equal((await listWorkers(hub.url, hub.adminToken)).length, 2);
  await again.child.kill('SIGTERM');
  await b.child.kill('SIGTERM');
  await hub.stop();
});

test('a stopped agent says goodbye: its worker is disconnected at once', async () => {
  const hub = await startHub({ env: { IK_HEARTBEAT_INTERVAL_MS: '60000' } });
  const agent = startAgent({ hub, name: 'polite', smi: 'rtx4080-x1' });
  await waitForWorker(hub.url, hub.adminToken, 'polite', (w) => w.state === 'ready');
  await agent.child.kill('SIGTERM');
  // With a 60 s heartbeat the state can only come from the closed tunnel.
  const w = await waitForWorker(hub.url, hub.adminToken, 'polite', (w) => w.state === 'disconnected', 5000);
  assert.equal(w.state, 'disconnected');
  await hub.stop();
});

test('the hub restarting: workers reconnect on their own and keep their ids', async () => {
  const hub = await startHub();
  const agent = startAgent({ hub, name: 'patient', smi: 'h100-x1' });
  const before = await waitForWorker(hub.url, hub.adminToken, 'patient', (w) => w.state === 'ready');
  await hub.stop('SIGKILL');
  const hub2 = await hub.restart();
  const after = await waitForWorker(hub2.url, hub2.adminToken, 'patient', (w) => w.state === 'ready', 20_000);
  assert.equal(after.id, before.id);
  assert.equal((await listWorkers(hub2.url, hub2.adminToken)).length, 1);
  await agent.child.kill('SIGTERM');
  await hub2.stop();
});

test('cordon, drain and uncordon are visible; PATCH sets labels and cost; unknown ids are 404', async () => {
  const hub = await startHub();
  startAgent({ hub, name: 'ops', smi: 'l4-x4' });
  const w = await waitForWorker(hub.url, hub.adminToken, 'ops', (w) => w.state === 'ready');
  assert.equal(w.gpus.length, 4);

  const cordoned = await api(hub.url, hub.adminToken, 'POST', `/api/v1/workers/${w.id}/cordon`);
  assert.equal(cordoned.status, 200);
  assert.equal(cordoned.body.cordoned, true);
  const drained = await api(hub.url, hub.adminToken, 'POST', `/api/v1/workers/${w.id}/drain`);
  assert.equal(drained.body.draining, true);
  const shown = await api(hub.url, hub.adminToken, 'GET', `/api/v1/workers/${w.id}`);
  assert.deepEqual([shown.body.cordoned, shown.body.draining], [true, true]);
  const un = await api(hub.url, hub.adminToken, 'POST', `/api/v1/workers/${w.id}/uncordon`);
  assert.deepEqual([un.body.cordoned, un.body.draining], [false, false]);

  const patched = await api(hub.url, hub.adminToken, 'PATCH', `/api/v1/workers/${w.id}`, { labels: { rack: 'r1' }, gpu_hourly_cost_usd: 1.25 });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.body.labels, { rack: 'r1' });
  assert.equal(patched.body.gpu_hourly_cost_usd, 1.25);

  for (const [method, path] of [
    ['GET', '/api/v1/workers/wrk_doesnotexist00'],
    ['POST', '/api/v1/workers/wrk_doesnotexist00/cordon'],
    ['PATCH', '/api/v1/workers/wrk_doesnotexist00'],
    ['DELETE', '/api/v1/workers/wrk_doesnotexist00'],
  ] as const) {
    const res = await api(hub.url, hub.adminToken, method, path, method === 'PATCH' ? { labels: {} } : undefined);
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(res.body.error.code, 'WORKER_NOT_FOUND');
  }
  await hub.stop();
});

test('a wrong join token is rejected with a reason the agent logs, and nothing is registered', async () => {
  const hub = await startHub();
  const agent = startAgent({ hub, name: 'intruder', token: 'ik_join_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
  const { code } = await agent.child.exited;
  assert.equal(code, EXIT_REJECTED);
  assert.match(agent.child.output, /invalid_token/);
  assert.match(agent.child.output, /join token is not known/);
  assert.equal((await listWorkers(hub.url, hub.adminToken)).length, 0);
  await hub.stop();
});

test('a revoked join token and a deleted worker\'s credential are rejected with reasons', async () => {
  const hub = await startHub();
  const created = await api(hub.url, hub.adminToken, 'POST', '/api/v1/join-tokens', { labels: { zone: 'eu' } });
  assert.equal(created.status, 201);
  assert.match(created.body.secret, /^ik_join_/);
  assert.match(created.body.install_command, /install\.sh \| IK_TOKEN=ik_join_/);

  // A worker that joined with the token keeps working after the token is revoked, and carries its labels.
  const first = startAgent({ hub, name: 'early', token: created.body.secret });
  const early = await waitForWorker(hub.url, hub.adminToken, 'early', (w) => w.state === 'ready');
  assert.deepEqual(early.labels, { zone: 'eu' });
  const revoked = await api(hub.url, hub.adminToken, 'DELETE', `/api/v1/join-tokens/${created.body.id}`);
  assert.equal(revoked.status, 200);
  assert.ok(revoked.body.revoked_at);
  const listed = await api(hub.url, hub.adminToken, 'GET', '/api/v1/join-tokens');
  assert.ok(!JSON.stringify(listed.body).includes(created.body.secret), 'a listing never shows the secret');

  const late = startAgent({ hub, name: 'late', token: created.body.secret });
  assert.equal((await late.child.exited).code, EXIT_REJECTED);
  assert.match(late.child.output, /token_revoked/);

  // Deleting a worker disconnects its agent; its credential no longer works on the next start.
  const del = await api(hub.url, hub.adminToken, 'DELETE', `/api/v1/workers/${early.id}`);
  assert.equal(del.status, 204);
  assert.equal((await first.child.exited).code, EXIT_REJECTED);
  assert.match(first.child.output, /worker_deleted/);
  const restarted = startAgent({ hub, name: 'early', token: '', dataDir: first.dataDir });
  assert.equal((await restarted.child.exited).code, EXIT_REJECTED);
  assert.match(restarted.child.output, /credential_revoked/);
  assert.equal((await listWorkers(hub.url, hub.adminToken)).length, 0);
  await hub.stop();
});

test('two agents on one host with different data dirs and names; a reused name is refused while connected', async () => {
  const hub = await startHub();
  startAgent({ hub, name: 'twin-1', smi: 'h100-x1' });
  startAgent({ hub, name: 'twin-2', smi: 'h100-x1' });
  await waitForWorker(hub.url, hub.adminToken, 'twin-1', (w) => w.state === 'ready');
  await waitForWorker(hub.url, hub.adminToken, 'twin-2', (w) => w.state === 'ready');
  const clash = startAgent({ hub, name: 'twin-1', smi: 'h100-x1' });
  assert.equal((await clash.child.exited).code, EXIT_REJECTED);
  assert.match(clash.child.output, /name_in_use/);
  assert.equal((await listWorkers(hub.url, hub.adminToken)).length, 2);
  await hub.stop();
});

test('nvidia-smi failures: the worker registers with no GPUs and a gpu_error code', async () => {
  const hub = await startHub();
  const cases = [
    ['no-smi', null, 'NVIDIA_SMI_MISSING'],
    ['no-driver', 'driver-not-loaded', 'DRIVER_NOT_LOADED'],
    ['mismatch', 'driver-mismatch', 'DRIVER_MISMATCH'],
    ['hung', 'hang', 'NVIDIA_SMI_TIMEOUT'],
    ['weird', 'garbage', 'NVIDIA_SMI_UNEXPECTED_OUTPUT'],
  ] as const;
  for (const [name, smi] of cases) startAgent({ hub, name, smi, env: smi === 'hang' ? { IK_NVIDIA_SMI_TIMEOUT_MS: '500' } : {} });
  for (const [name, , code] of cases) {
    const w = await waitForWorker(hub.url, hub.adminToken, name, (w) => w.state === 'ready');
    assert.deepEqual(w.gpus, [], name);
    assert.equal(w.gpu_error?.code, code, name);
    assert.ok(w.gpu_error!.message.length > 10, `${name}: the message explains`);
  }
  await hub.stop();
});

test('MIG devices and absent values reach the worker object', async () => {
  const hub = await startHub();
  startAgent({ hub, name: 'mig', smi: 'h100-mig' });
  startAgent({ hub, name: 'absent', smi: 'mixed-absent' });
  const mig = await waitForWorker(hub.url, hub.adminToken, 'mig', (w) => w.state === 'ready');
  const withMig = mig.gpus.find((g) => g.mig_mode === 'enabled');
  assert.ok(withMig, 'one GPU has MIG enabled');
  assert.equal(withMig.utilization_pct, null);
  assert.deepEqual(withMig.mig_devices.map((m) => m.profile).sort(), ['1g.10gb', '1g.10gb', '2g.20gb', '3g.40gb']);
  assert.ok(withMig.mig_devices.every((m) => m.uuid.startsWith('MIG-') && (m.memory_total_mib ?? 0) > 0));
  const absent = await waitForWorker(hub.url, hub.adminToken, 'absent', (w) => w.state === 'ready');
  const nulls = absent.gpus.flatMap((g) => [g.utilization_pct, g.temperature_c, g.memory_used_mib]).filter((v) => v === null);
  assert.ok(nulls.length > 0, 'absent cells are null');
  assert.ok(!absent.gpus.some((g) => g.utilization_pct === 0 && g.temperature_c === 0), 'absent is never turned into zero');
  await hub.stop();
});
