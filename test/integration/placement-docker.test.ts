// End to end with Docker: replicas run in `ik-sim:dev` containers (IK_IMAGE_MAP), host network, GPU UUIDs in the env,
// ik.* labels; a restarted agent adopts its container; a deleted workload leaves no container; a missing image and
// an engine that goes away are reasons in events, never a crash loop.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { startHub, startAgent, tempDir, type TestAgent, type TestHub } from '../helpers/processes.ts';
import { api, eventually, waitForWorker } from '../helpers/api.ts';
import { allReady, backendGet, ensure, events, vllmSpec, waitForReplicas } from '../helpers/workloads.ts';
import { containersOf, docker, dockerTestOptions, ensureSimImage, removeContainersOf, SIM_IMAGE_MAP } from '../helpers/docker.ts';

const options = dockerTestOptions();
let hub: TestHub;
let agent: TestAgent;
let workerId = '';
let proxy: EngineProxy;

/** A unix-socket proxy to the real engine, so a test can make "the engine" go away and come back for this agent only. */
class EngineProxy {
  readonly path = join(tempDir('ik-docker-proxy-'), 'docker.sock');
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect('/var/run/docker.sock');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    return new Promise((resolve) => this.server!.listen(this.path, resolve));
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const agentEnv = () => ({ IK_RUNTIME: 'docker', IK_DOCKER_GPU_MODE: 'none', IK_IMAGE_MAP: SIM_IMAGE_MAP, DOCKER_HOST: `unix://${proxy.path}` });

before(async () => {
  if (options.skip) return;
  ensureSimImage();
  proxy = new EngineProxy();
  await proxy.start();
  hub = await startHub({ env: { IK_WORKER_GRACE_S: '30' } });
  agent = startAgent({ hub, name: 'docker-box', smi: 'h100-x2', env: agentEnv() });
  workerId = (await waitForWorker(hub.url, hub.adminToken, 'docker-box', (w) => w.state === 'ready')).id;
});
after(async () => {
  if (options.skip) return;
  await hub?.stop();
  await agent?.child.kill('SIGKILL');
  removeContainersOf(workerId);
  await proxy?.stop();
});

test('a workload runs in a labelled container on the host network, with its GPU UUIDs in the env', options, async () => {
  const worker = await waitForWorker(hub.url, hub.adminToken, 'docker-box');
  assert.equal(worker.runtime.kind, 'docker');
  assert.equal(worker.runtime.gpu_mode, 'none');
  await ensure(hub, vllmSpec('in-docker', 'Qwen/Qwen2.5-0.5B-Instruct', { env: { HF_TOKEN: 'hf_secret' } }));
  const [replica] = await waitForReplicas(hub, 'in-docker', allReady(1), 60_000);
  assert.ok(replica!.container_id);
  const models = await backendGet(replica!.port!, '/v1/models');
  assert.equal(models.status, 200);
  assert.equal(models.replica, replica!.id);

  const inspected = JSON.parse(docker(['inspect', replica!.container_id!]))[0];
  const labels = inspected.Config.Labels;
  assert.equal(labels['ik.replica'], replica!.id);
  assert.equal(labels['ik.workload'], 'in-docker');
  assert.equal(labels['ik.generation'], '1');
  assert.equal(labels['ik.worker'], workerId);
  assert.equal(inspected.HostConfig.NetworkMode, 'host');
  assert.equal(inspected.HostConfig.RestartPolicy.Name, 'no');
  const env: string[] = inspected.Config.Env;
  assert.ok(env.includes(`NVIDIA_VISIBLE_DEVICES=${replica!.gpu_uuids.join(',')}`), env.join(' '));
  assert.ok(env.includes(`CUDA_VISIBLE_DEVICES=${replica!.gpu_uuids.join(',')}`));
  assert.ok(env.includes('HF_TOKEN=hf_secret'), 'the spec env reaches the backend');
  assert.deepEqual(inspected.Config.Entrypoint, ['vllm']);
  assert.deepEqual(inspected.Config.Cmd.slice(0, 2), ['serve', 'Qwen/Qwen2.5-0.5B-Instruct']);
});

test('the agent restarts and adopts its container: same container, no restart', options, async () => {
  const [before] = await waitForReplicas(hub, 'in-docker', allReady(1), 60_000);
  await agent.child.kill('SIGTERM');
  await waitForReplicas(hub, 'in-docker', (rs) => rs[0]?.state === 'unknown', 10_000);
  agent = startAgent({ ...agent.options, dataDir: agent.dataDir, token: '', env: agentEnv() });
  const [after] = await waitForReplicas(hub, 'in-docker', allReady(1), 30_000);
  assert.deepEqual([after!.id, after!.container_id, after!.restarts], [before!.id, before!.container_id, before!.restarts]);
  assert.equal(containersOf(workerId).length, 1, 'no duplicate container');
});

test('logs are read through the agent (demultiplexed)', options, async () => {
  const [replica] = await waitForReplicas(hub, 'in-docker', allReady(1), 30_000);
  const res = await fetch(`${hub.url}/api/v1/projects/default/workloads/in-docker/replicas/${replica!.id}/logs?tail=50`, {
    headers: { authorization: `Bearer ${hub.adminToken}` },
  });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /Uvicorn running on http:\/\/127\.0\.0\.1:\d+/);
  assert.doesNotMatch(text, /[\u0000-\u0008]/, 'no multiplexing headers in the text');
});

test('the engine going away and coming back: no crash loop, the replica is served again', options, async () => {
  const [before] = await waitForReplicas(hub, 'in-docker', allReady(1), 30_000);
  await proxy.stop();
  await new Promise((r) => setTimeout(r, 1500));
  await proxy.start();
  const [after] = await waitForReplicas(hub, 'in-docker', allReady(1), 60_000);
  assert.equal(after!.id, before!.id);
  assert.equal(agent.child.proc.exitCode, null, 'the agent is still running');
  const res = await backendGet(after!.port!, '/health');
  assert.equal(res.status, 200);
});

test('an image that does not exist: the replica fails with the reason, and the agent keeps running', options, async () => {
  const broken = startAgent({ hub, name: 'no-image-box', smi: 'h100-x1', env: { ...agentEnv(), IK_IMAGE_MAP: JSON.stringify({ ollama: 'ik-sim:does-not-exist' }) } });
  const brokenId = (await waitForWorker(hub.url, hub.adminToken, 'no-image-box', (w) => w.state === 'ready')).id;
  try {
    await ensure(hub, { slug: 'no-image', model: 'qwen2.5:0.5b', backend: 'ollama', worker_id: brokenId });
    const failed = await eventually('the pull failure event', async () => (await events(hub, 'workload=no-image')).find((e) => e.kind === 'replica.failed'), 60_000);
    assert.match(failed.message, /ik-sim:does-not-exist/);
    assert.match(failed.message, /cannot be pulled|not found/);
    assert.equal(broken.child.proc.exitCode, null, 'no crash of the agent');
  } finally {
    await api(hub.url, hub.adminToken, 'DELETE', '/api/v1/projects/default/workloads/no-image');
    await broken.child.kill('SIGKILL');
    removeContainersOf(brokenId);
  }
});

test('deleting the workload leaves no container', options, async () => {
  assert.equal((await api(hub.url, hub.adminToken, 'DELETE', '/api/v1/projects/default/workloads/in-docker')).status, 204);
  await eventually('containers to be removed', async () => (containersOf(workerId).length === 0 ? true : undefined), 60_000);
  const w = await api(hub.url, hub.adminToken, 'GET', '/api/v1/projects/default/workloads/in-docker');
  assert.equal(w.status, 404);
});
