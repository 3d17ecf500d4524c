// The Docker runtime: its create options and log/pull decoding as pure functions, then the real engine with the
// simulator image (start on the host network, adopt, logs, exit reasons, stop, failing pull, GPU refusal, reaper).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { pino } from 'pino';
import { backendDriver } from '../../../agent/backends/index.ts';
import { DockerRuntime } from '../../../agent/runtime/docker.ts';
import { buildCreateOptions, decodeLaunch, encodeLaunch, gpuDeviceRequests, HF_CACHE_IN_CONTAINER, LABELS } from '../../../agent/runtime/docker-create.ts';
import { LogDecoder, parseSince } from '../../../agent/runtime/docker-logs.ts';
import { PullTracker } from '../../../agent/runtime/docker-pull.ts';
import { allocatePort } from '../../../agent/runtime/ports.ts';
import type { PullProgress, ReplicaHandle, RunSpec } from '../../../agent/runtime/types.ts';
import type { ReplicaLaunch } from '../../../shared/protocol/replicas.ts';
import { workloadSpecSchema } from '../../../shared/spec/workload-spec.ts';
import { ROOT } from '../../helpers/processes.ts';

const IMAGE = 'ik-sim:dev';
const GPU = 'GPU-0b1d2c3e-aaaa-bbbb-cccc-1234567890ab';
const silent = pino({ level: 'silent' });
/** Unique per test process, so parallel runs never touch each other's containers. */
const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
const workerId = `wrk_dt${run}`;
const otherWorkerId = `wrk_du${run}`;
const spec = workloadSpecSchema.parse({
  name: 'Docker test',
  slug: 'docker-test',
  model: 'ik-sim/model',
  backend: 'vllm',
  task_type: 'text2text',
  command: 'vllm serve ik-sim/model',
  execution_policy: 'fixed',
  execution_policy_config: { replicas: 1 },
});
let replicaCount = 0;

function newLaunch(): ReplicaLaunch {
  replicaCount += 1;
  const replica_id = `rep_${run}${String(replicaCount).padStart(4, '0')}`;
  return { replica_id, project: 'prj_docker_test', workload: 'docker-test', generation: 3, spec, gpu_uuids: [GPU], restart_backoff_base_ms: 1000 };
}

function runSpec(launch: ReplicaLaunch, port: number, extra: { env?: Record<string, string>; workerId?: string; hfCacheDir?: string } = {}): RunSpec {
  const gpus = launch.gpu_uuids.join(',');
  return {
    launch,
    workerId: extra.workerId ?? workerId,
    image: IMAGE,
    argv: backendDriver('vllm').argv(launch.spec, port),
    env: { IK_REPLICA_ID: launch.replica_id, CUDA_VISIBLE_DEVICES: gpus, NVIDIA_VISIBLE_DEVICES: gpus, ...extra.env },
    port,
    gpuUuids: launch.gpu_uuids,
    sharedMemory: false,
    hfCacheDir: extra.hfCacheDir ?? '/tmp/ik-hf-unit',
  };
}

describe('docker create options (pure)', () => {
  const launch = newLaunch();
  const unitSpec = runSpec(launch, 41234);

  it('runs the command with its first word as entrypoint, on the host network, never restarted by Docker', () => {
    const o = buildCreateOptions(unitSpec, 'none');
    assert.equal(o.name, `ik-${launch.replica_id}`);
    assert.deepEqual(o.Entrypoint, ['vllm']);
    assert.deepEqual(o.Cmd, unitSpec.argv.slice(1));
    assert.ok(o.Env?.includes(`CUDA_VISIBLE_DEVICES=${GPU}`));
    assert.equal(o.HostConfig?.NetworkMode, 'host');
    assert.deepEqual(o.HostConfig?.RestartPolicy, { Name: 'no' });
    assert.deepEqual(o.HostConfig?.Binds, [`/tmp/ik-hf-unit:${HF_CACHE_IN_CONTAINER}`]);
    assert.deepEqual(o.HostConfig?.DeviceRequests, [], 'gpu mode none passes no device requests');
    assert.equal(o.HostConfig?.IpcMode, undefined);
    assert.ok((o.HostConfig?.ShmSize ?? 0) >= 2 * 1024 ** 3);
    assert.equal(o.Labels?.[LABELS.replica], launch.replica_id);
    assert.equal(o.Labels?.[LABELS.worker], workerId);
    assert.equal(o.Labels?.[LABELS.generation], '3');
    assert.equal(o.Labels?.[LABELS.port], '41234');
  });

  it('shares the host IPC namespace for tensor-parallel replicas', () => {
    const o = buildCreateOptions({ ...unitSpec, sharedMemory: true }, 'none');
    assert.equal(o.HostConfig?.IpcMode, 'host');
    assert.equal(o.HostConfig?.ShmSize, undefined);
  });

  it('asks for GPUs by UUID through the nvidia driver or CDI names', () => {
    assert.deepEqual(buildCreateOptions(unitSpec, 'nvidia').HostConfig?.DeviceRequests, [{ Driver: 'nvidia', DeviceIDs: [GPU], Capabilities: [['gpu']] }]);
    assert.deepEqual(gpuDeviceRequests([GPU, 'MIG-1'], 'cdi'), [{ Driver: 'cdi', DeviceIDs: [`nvidia.com/gpu=${GPU}`, 'nvidia.com/gpu=MIG-1'] }]);
    assert.deepEqual(gpuDeviceRequests([], null), [], 'a CPU-only replica needs no GPU mode');
  });

  it('refuses GPUs when the engine has no GPU mode, saying what to install or set', () => {
    assert.throws(() => buildCreateOptions(unitSpec, null), /needs GPUs .*NVIDIA Container Toolkit.*IK_DOCKER_GPU_MODE=none/);
  });

  it('round-trips the launch through its label and refuses a label that does not parse', () => {
    assert.deepEqual(decodeLaunch(encodeLaunch(launch)), { ok: true, launch });
    assert.equal(decodeLaunch(Buffer.from('{"replica_id":"x"}').toString('base64')).ok, false);
    assert.equal(decodeLaunch('%%%').ok, false);
    assert.equal(decodeLaunch(undefined).ok, false);
  });
});

describe('docker log and pull decoding (pure)', () => {
  const frame = (stream: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header.writeUInt8(stream, 0);
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it('decodes frames split anywhere, keeping partial lines per stream', () => {
    const bytes = Buffer.concat([frame(1, 'out one\nout t'), frame(2, 'err one\n'), frame(1, 'wo\r\n'), frame(2, 'tail')]);
    const decoder = new LogDecoder();
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += 5) lines.push(...decoder.push(bytes.subarray(i, i + 5)));
    assert.deepEqual(lines, ['out one', 'err one', 'out two']);
    assert.deepEqual(decoder.end(), ['tail']);
  });

  it('reads a stream without frame headers (TTY) as raw text', () => {
    const decoder = new LogDecoder();
    assert.deepEqual(decoder.push(Buffer.from('plain text line\nnext')), ['plain text line']);
    assert.deepEqual(decoder.end(), ['next']);
  });

  it('takes since as an ISO time or a duration, in unix seconds', () => {
    const now = Date.parse('2024-05-01T12:00:00Z');
    assert.equal(parseSince('10m', now), now / 1000 - 600);
    assert.equal(parseSince('2024-05-01T11:00:00Z', now), now / 1000 - 3600);
    assert.throws(() => parseSince('yesterday', now), /ISO time .* or a duration like 10m/);
  });

  it('sums layer progress into one percent and catches an error event', () => {
    const t = new PullTracker();
    assert.equal(t.add({ status: 'Pulling fs layer', id: 'a' }), null);
    t.add({ status: 'Downloading', id: 'a', progressDetail: { current: 50, total: 100 } });
    t.add({ status: 'Downloading', id: 'b', progressDetail: { current: 0, total: 300 } });
    assert.equal(t.percent(), 12.5);
    t.add({ status: 'Download complete', id: 'a' });
    assert.equal(t.percent(), 25);
    assert.equal(t.add({ error: 'toomanyrequests: rate limit', errorDetail: { message: 'toomanyrequests: rate limit' } }), 'toomanyrequests: rate limit');
  });

  it('says that the engine does not answer, and where', async () => {
    const runtime = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir: '/tmp/ik-hf-unit', docker: new Docker({ socketPath: '/tmp/ik-no-docker.sock' }) });
    const handle: ReplicaHandle = { replicaId: 'rep_nothing00', runtime: 'docker', containerId: null, pid: null, port: 1 };
    await assert.rejects(runtime.isRunning(handle), /the Docker engine does not answer at \/tmp\/ik-no-docker\.sock/);
    await assert.rejects(runtime.recover(workerId), /the Docker engine does not answer at \/tmp\/ik-no-docker\.sock/);
  });
});

/** A stand-in engine on a unix socket: each test answers the API paths it cares about. */
async function fakeEngine(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ docker: Docker; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ik-fake-docker-'));
  const socketPath = join(dir, 'docker.sock');
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    docker: new Docker({ socketPath }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('docker pulls and waits against a stand-in engine', () => {
  const handle: ReplicaHandle = { replicaId: 'rep_fakeengine', runtime: 'docker', containerId: 'c0ffee', pid: null, port: 1 };
  const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

  it('fails a pull whose stream reports an error with status 200', async () => {
    const fake = await fakeEngine((req, res) => {
      if (req.url?.startsWith('/images/create')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"Pulling from org/model"}\n{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n');
      } else json(res, 404, { message: 'no such image' });
    });
    try {
      const runtime = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir: '/tmp/ik-hf-unit', docker: fake.docker });
      await assert.rejects(runtime.prepare({ ...runSpec(newLaunch(), 1), image: 'org/model:v1' }, () => {}, new AbortController().signal), /image org\/model:v1 not found and cannot be pulled: manifest unknown/);
    } finally {
      await fake.close();
    }
  });

  it('aborts a pull that makes no progress, and reports the percent of one that does', async () => {
    let pulled = false;
    const fake = await fakeEngine((req, res) => {
      if (req.url?.startsWith('/images/create?fromImage=stuck')) {
        res.writeHead(200).write('{"status":"Downloading","id":"l1","progressDetail":{"current":1,"total":100}}\n'); // then nothing
      } else if (req.url?.startsWith('/images/create')) {
        res.writeHead(200);
        res.write('{"status":"Downloading","id":"l1","progressDetail":{"current":25,"total":100}}\n');
        pulled = true;
        res.end('{"status":"Download complete","id":"l1"}\n{"status":"Pull complete","id":"l1"}\n');
      } else if (req.url?.startsWith('/images/ok')) json(res, pulled ? 200 : 404, pulled ? { Id: 'sha256:1' } : { message: 'no such image' });
      else json(res, 404, { message: 'no such image' });
    });
    try {
      const runtime = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir: '/tmp/ik-hf-unit', docker: fake.docker, pullStallMs: 1000 });
      const started = Date.now();
      await assert.rejects(runtime.prepare({ ...runSpec(newLaunch(), 1), image: 'stuck:v1' }, () => {}, new AbortController().signal), /image stuck:v1 .*made no progress for 1 s/);
      assert.ok(Date.now() - started < 5000);
      const progress: PullProgress[] = [];
      await runtime.prepare({ ...runSpec(newLaunch(), 1), image: 'ok:v1' }, (p) => progress.push(p), new AbortController().signal);
      assert.deepEqual(progress, [
        { status: 'pulling ok:v1', percent: null },
        { status: 'Downloading l1', percent: 25 },
        { status: 'pulled ok:v1', percent: 100 },
      ]);
    } finally {
      await fake.close();
    }
  });

  it('says so when the engine goes away under a running replica and does not come back', async () => {
    const fake = await fakeEngine((req) => req.socket.destroy());
    try {
      const runtime = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir: '/tmp/ik-hf-unit', docker: fake.docker, engineReturnMs: 1500 });
      const exit = await runtime.wait(handle);
      assert.equal(exit.code, null);
      assert.match(exit.reason, /^lost the Docker engine: it went away and did not come back within 2 s \(the Docker engine does not answer at .*docker\.sock/);
    } finally {
      await fake.close();
    }
  });

  it('reports how a container ended while the engine restarted', async () => {
    let waits = 0;
    const fake = await fakeEngine((req, res) => {
      if (req.url?.includes('/wait')) return waits++ === 0 ? req.socket.destroy() : json(res, 200, { StatusCode: 137 });
      json(res, 200, { Id: 'c0ffee', State: { Running: false, OOMKilled: false, ExitCode: 137, Error: '' } });
    });
    try {
      const runtime = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir: '/tmp/ik-hf-unit', docker: fake.docker });
      assert.deepEqual(await runtime.wait(handle), { code: 137, signal: 'SIGKILL', reason: 'was killed by SIGKILL (exit code 137) after the Docker engine restarted' });
    } finally {
      await fake.close();
    }
  });
});

const engine = new Docker();
const engineAnswers = await engine.listContainers({ limit: 1, abortSignal: AbortSignal.timeout(3000) }).then(() => true, () => false);
const mustRun = process.env.CI === 'true';

describe('DockerRuntime on the real engine', { skip: !engineAnswers && !mustRun ? 'no Docker engine answers (CI=true makes this a failure)' : false }, () => {
  let hfCacheDir: string;
  let runtime: DockerRuntime;
  const ours = [workerId, otherWorkerId];

  const listOurs = async () => (await Promise.all(ours.map((w) => engine.listContainers({ all: true, filters: { label: [`${LABELS.worker}=${w}`] } })))).flat();

  before(async () => {
    assert.ok(engineAnswers, `no Docker engine answers at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'} (CI=true: Docker tests must run)`);
    const images = await engine.listImages({ filters: { reference: [IMAGE] } });
    if (images.length === 0) execFileSync(join(ROOT, 'scripts/build-sim-image.sh'), [IMAGE], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 });
    hfCacheDir = mkdtempSync(join(tmpdir(), 'ik-hf-'));
    runtime = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir, pullStallMs: 5000 });
  });

  after(async () => {
    runtime?.close();
    for (const c of await listOurs()) await engine.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    if (hfCacheDir) rmSync(hfCacheDir, { recursive: true, force: true });
    const left = ours.map((w) => execFileSync('docker', ['ps', '-aq', '--filter', 'label=ik.replica', '--filter', `label=ik.worker=${w}`], { encoding: 'utf8' }).trim());
    assert.equal(left.join(''), '', 'no container of this test may be left behind');
  });

  async function startSim(launch = newLaunch(), extra: Parameters<typeof runSpec>[2] = {}) {
    const port = await allocatePort();
    const spec = runSpec(launch, port, { hfCacheDir, ...extra });
    const handle = await runtime.start(spec);
    return { launch, port, spec, handle };
  }

  async function healthy(port: number, timeoutMs = 10_000): Promise<Response> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
      if (res?.status === 200) return res;
      if (Date.now() > deadline) throw new Error(`the simulator on port ${port} did not answer /health within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  let main: Awaited<ReturnType<typeof startSim>>;

  it('starts a container that serves /health on 127.0.0.1, labelled and configured as designed', async () => {
    main = await startSim();
    const res = await healthy(main.port);
    assert.equal(res.headers.get('x-ik-sim-replica'), main.launch.replica_id);
    const info = await engine.getContainer(main.handle.containerId!).inspect();
    assert.equal(info.Config.Labels[LABELS.replica], main.launch.replica_id);
    assert.equal(info.Config.Labels[LABELS.workload], 'docker-test');
    assert.equal(info.Config.Labels[LABELS.generation], '3');
    assert.equal(info.Config.Labels[LABELS.worker], workerId);
    assert.ok(info.Config.Env.includes(`CUDA_VISIBLE_DEVICES=${GPU}`) && info.Config.Env.includes(`NVIDIA_VISIBLE_DEVICES=${GPU}`));
    assert.equal(info.HostConfig.NetworkMode, 'host');
    assert.equal(info.HostConfig.RestartPolicy?.Name, 'no');
    assert.ok(info.HostConfig.Binds?.includes(`${hfCacheDir}:${HF_CACHE_IN_CONTAINER}`));
    assert.deepEqual(info.Config.Entrypoint, ['vllm']);
    assert.equal(await runtime.isRunning(main.handle), true);
  });

  it('is adopted by a new runtime from its labels alone', async () => {
    const fresh = new DockerRuntime({ log: silent, gpuMode: 'none', hfCacheDir });
    const found = await fresh.recover(workerId);
    const mine = found.find((r) => r.handle.replicaId === main.launch.replica_id);
    assert.ok(mine, 'the running container is recovered');
    assert.deepEqual(mine.launch, main.launch);
    assert.equal(mine.handle.port, main.port);
    assert.equal(mine.handle.containerId, main.handle.containerId);
    assert.equal(mine.running, true);
    assert.equal(await fresh.isRunning(mine.handle), true);
    assert.deepEqual(await fresh.recover(otherWorkerId), [], 'another worker adopts nothing of ours');
  });

  it('reads the log by tail and follows it until the signal aborts', async () => {
    const all = await runtime.lastLines(main.handle, 1000);
    assert.ok(all.length >= 2, `the simulator logs its start (${JSON.stringify(all)})`);
    assert.deepEqual(await runtime.lastLines(main.handle, 2), all.slice(-2));
    const batches: string[][] = [];
    for await (const lines of runtime.logs(main.handle, { tail: 1, since: '10m', follow: false, signal: new AbortController().signal })) batches.push(lines);
    assert.deepEqual(batches.flat(), all.slice(-1));

    const abort = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const lines of runtime.logs(main.handle, { tail: 0, since: null, follow: true, signal: abort.signal })) {
        seen.push(...lines);
        if (seen.some((l) => l.includes('/v1/models'))) abort.abort();
      }
    })();
    const deadline = Date.now() + 10_000;
    // The follow may not be connected yet when a request lands (tail 0 would miss its line): ask until a line arrives.
    while (!abort.signal.aborted && Date.now() < deadline) {
      await fetch(`http://127.0.0.1:${main.port}/v1/models`);
      await new Promise((r) => setTimeout(r, 200));
    }
    abort.abort();
    await following;
    assert.ok(seen.some((l) => l.includes('GET /v1/models')), `the follow saw the request's log line (${JSON.stringify(seen)})`);
  });

  it('reports a nonzero exit of a backend that fails at start, with its last log lines', async () => {
    const failing = await startSim(newLaunch(), { env: { IK_SIM_FAIL: 'exit-at-start' } });
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([runtime.wait(failing.handle), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('wait did not resolve')), 10_000)))]);
    clearTimeout(timer);
    assert.equal(exit.code, 1);
    assert.match(exit.reason, /^exited with code 1$/);
    const last = await runtime.lastLines(failing.handle, 20);
    assert.ok(last.some((l) => l.includes('IK_SIM_FAIL=exit-at-start')), `the failure is in the log (${JSON.stringify(last)})`);
    await runtime.stop(failing.handle, 1000);
  });

  it('stops and removes the container; stopping again is fine', async () => {
    const exited = runtime.wait(main.handle);
    await runtime.stop(main.handle, 2000);
    const exit = await exited;
    // SIGTERM reaches the backend within the grace, and the simulator shuts down cleanly on it.
    assert.deepEqual(exit, { code: 0, signal: null, reason: 'exited with code 0' });
    await assert.rejects(engine.getContainer(main.handle.containerId!).inspect(), /no such container/i);
    assert.equal(await runtime.isRunning(main.handle), false);
    await runtime.stop(main.handle, 1000);
    assert.deepEqual(await runtime.lastLines(main.handle, 5), []);
  });

  it('fails a pull of an image that does not exist, quickly and saying what to do', async () => {
    const progress: PullProgress[] = [];
    const spec = { ...runSpec(newLaunch(), 1), image: 'ik-sim:nope' };
    const started = Date.now();
    await assert.rejects(runtime.prepare(spec, (p) => progress.push(p), AbortSignal.timeout(20_000)), /image ik-sim:nope not found and cannot be pulled: .+ \(pull it on the box, or map it with IK_IMAGE_MAP\)/);
    assert.ok(Date.now() - started < 15_000);
    const present: PullProgress[] = [];
    await runtime.prepare({ ...spec, image: IMAGE }, (p) => present.push(p), AbortSignal.timeout(5000));
    assert.deepEqual(present, [], 'an image already present is not pulled');
  });

  it('refuses a GPU replica when the engine has no GPU mode, creating nothing', async () => {
    const noGpu = new DockerRuntime({ log: silent, gpuMode: null, hfCacheDir });
    const launch = newLaunch();
    await assert.rejects(noGpu.start(runSpec(launch, await allocatePort(), { hfCacheDir })), /needs GPUs/);
    assert.equal((await listOurs()).filter((c) => c.Labels[LABELS.replica] === launch.replica_id).length, 0);
  });

  it('reaps the containers of this worker that are not kept, and nothing else', async () => {
    const kept = await startSim();
    const leftover = await startSim();
    const foreign = await startSim(newLaunch(), { workerId: otherWorkerId });
    const removed = await runtime.reap(workerId, new Set([kept.launch.replica_id]));
    assert.deepEqual(removed, [leftover.launch.replica_id]);
    const remaining = new Set((await listOurs()).map((c) => c.Labels[LABELS.replica]));
    assert.ok(remaining.has(kept.launch.replica_id) && remaining.has(foreign.launch.replica_id));
    assert.ok(!remaining.has(leftover.launch.replica_id));
    await Promise.all([runtime.stop(kept.handle, 0), runtime.stop(foreign.handle, 0)]);
  });
});
