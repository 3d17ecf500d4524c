// End to end with the process runtime: two agents with different GPUs (fake nvidia-smi), workloads placed where they
// fit and served by the simulator; a backend that dies restarts with backoff; a lost agent's replicas move after the
// grace period; an agent back within the grace period is adopted without a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, startAgent, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { waitForWorker } from '../helpers/api.ts';
import { allReady, backendGet, ensure, events, getWorkload, vllmSpec, waitForReplicas } from '../helpers/workloads.ts';

let hub: TestHub;
let big: TestAgent;
let small: TestAgent;
const ids = { big: '', small: '' };

before(async () => {
  // Long enough for an agent restart on a loaded machine, short enough for the lost-worker test.
  hub = await startHub({ env: { IK_WORKER_GRACE_S: '10' } });
  // big: two H100 80GB; small: four L4 24GB.
  big = startAgent({ hub, name: 'big', smi: 'h100-x2' });
  small = startAgent({ hub, name: 'small', smi: 'l4-x4' });
  ids.big = (await waitForWorker(hub.url, hub.adminToken, 'big', (w) => w.state === 'ready')).id;
  ids.small = (await waitForWorker(hub.url, hub.adminToken, 'small', (w) => w.state === 'ready')).id;
});
after(() => hub.stop());

test('three workloads are placed where they fit and serve /v1/models through the simulator; one that cannot fit explains why', async () => {
  // 32B in bf16 needs ~77 GiB: only an H100 has that; the 0.5B ones fit anywhere.
  await ensure(hub, vllmSpec('large', 'Qwen/Qwen2.5-32B-Instruct', { command: 'vllm serve Qwen/Qwen2.5-32B-Instruct --gpu-memory-utilization 0.95' }));
  // A small claim (30% of a GPU) fits on any of these GPUs, so it can move to whichever worker survives.
  await ensure(hub, vllmSpec('tiny-a', 'Qwen/Qwen2.5-0.5B-Instruct', { command: 'vllm serve Qwen/Qwen2.5-0.5B-Instruct --gpu-memory-utilization 0.3' }));
  await ensure(hub, { slug: 'tiny-b', model: 'qwen2.5:0.5b', backend: 'ollama' });
  await ensure(hub, vllmSpec('huge', 'meta-llama/Llama-3.1-405B-Instruct'));

  const large = await waitForReplicas(hub, 'large', allReady(1));
  assert.equal(large[0]!.worker_id, ids.big);
  for (const slug of ['large', 'tiny-a', 'tiny-b']) {
    const [replica] = await waitForReplicas(hub, slug, allReady(1));
    const models = await backendGet(replica!.port!, '/v1/models');
    assert.equal(models.status, 200, slug);
    assert.equal(models.replica, replica!.id, 'the simulator answers as this replica');
  }
  // The second H100 is busy (nvidia-smi measures ~60 GiB free): the large model must take the idle one.
  const bigWorker = await waitForWorker(hub.url, hub.adminToken, 'big');
  const idle = bigWorker.gpus.find((g) => (g.memory_free_mib ?? 0) > 80_000)!;
  assert.deepEqual(large[0]!.gpu_uuids, [idle.uuid]);

  const huge = await getWorkload(hub, 'huge');
  assert.deepEqual(huge.replicas.map((r: { state: string }) => r.state), ['pending']);
  assert.match(huge.placement, /^needs ~\d+ GiB on 1 GPU\b.*; wrk_\w+: .*GiB.*; wrk_\w+: .*GiB/);
  const pending = await events(hub, 'workload=huge');
  assert.ok(pending.some((e) => e.kind === 'workload.pending' && e.message.includes(huge.placement)));
});

test('a backend that dies is restarted with backoff, keeping its id', async () => {
  const [before] = await waitForReplicas(hub, 'tiny-a', allReady(1));
  process.kill(before!.pid!, 'SIGKILL');
  const [after] = await waitForReplicas(hub, 'tiny-a', (rs) => rs.length === 1 && rs[0]!.state === 'ready' && rs[0]!.restarts === before!.restarts + 1);
  assert.equal(after!.id, before!.id);
  assert.notEqual(after!.pid, before!.pid);
  const kinds = (await events(hub, 'workload=tiny-a')).map((e) => e.kind);
  assert.ok(kinds.includes('replica.failed') && kinds.includes('replica.restarted'), kinds.join(','));
  const failed = (await events(hub, 'workload=tiny-a')).find((e) => e.kind === 'replica.failed')!;
  assert.match(failed.message, /was killed by SIGKILL/);
  assert.ok(Array.isArray(failed.data.last_log) && failed.data.last_log.length > 0, 'the event carries the last log lines');
});

test('an agent restarting within the grace period is adopted: no restart, no duplicate', async () => {
  const [before] = await waitForReplicas(hub, 'tiny-b', allReady(1));
  const worker = before!.worker_id === ids.big ? big : small;
  await worker.child.kill('SIGTERM');
  await waitForReplicas(hub, 'tiny-b', (rs) => rs[0]?.state === 'unknown', 10_000);
  const again = startAgent({ ...worker.options, dataDir: worker.dataDir, token: '' });
  if (worker === big) big = again;
  else small = again;
  const [after] = await waitForReplicas(hub, 'tiny-b', allReady(1));
  assert.deepEqual([after!.id, after!.pid, after!.restarts, after!.port], [before!.id, before!.pid, before!.restarts, before!.port]);
  const kinds = (await events(hub, 'workload=tiny-b')).map((e) => e.kind);
  assert.ok(kinds.includes('replica.adopted'));
  assert.ok(!kinds.includes('replica.lost'));
});

test('an agent gone longer than the grace period: its replicas are lost and placed elsewhere', async () => {
  const [before] = await waitForReplicas(hub, 'tiny-a', allReady(1));
  const [victim, survivorId] = before!.worker_id === ids.big ? [big, ids.small] : [small, ids.big];
  await victim.child.kill('SIGKILL');
  const [after] = await waitForReplicas(hub, 'tiny-a', (rs) => rs.some((r) => r.state === 'ready' && r.worker_id === survivorId), 30_000);
  const moved = (await getWorkload(hub, 'tiny-a')).replicas.find((r: { state: string }) => r.state === 'ready');
  assert.notEqual(moved.id, before!.id, 'a replacement, not the same replica');
  assert.ok(after);
  const kinds = (await events(hub, 'workload=tiny-a')).map((e) => e.kind);
  assert.ok(kinds.includes('replica.lost'), kinds.join(','));
});
