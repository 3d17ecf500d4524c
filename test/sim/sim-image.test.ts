// The simulator's Docker image (scripts/build-sim-image.sh → ik-sim:dev): built without a registry, its entry points
// stand in for vllm / python3 -m sglang.launch_server / ollama on the host network. Skips without Docker, except in CI.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort, ROOT, waitFor } from './harness.ts';

const exec = promisify(execFile);
const IMAGE = 'ik-sim:dev';

function dockerAvailable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

const inCi = process.env.CI === 'true';
const hasDocker = dockerAvailable();
// In CI a missing Docker engine is a failure, not a skip (DESIGN.md §10).
const skip = !hasDocker && !inCi ? 'Docker is not available (docker info failed)' : false;

const containers = new Set<string>();
after(async () => {
  if (containers.size) await exec('docker', ['rm', '-f', ...containers]).catch(() => undefined);
});

async function runContainer(args: string[]): Promise<string> {
  const { stdout } = await exec('docker', ['run', '--rm', '-d', '--network', 'host', '--label', 'ik.test=sim', ...args]);
  const id = stdout.trim();
  containers.add(id);
  return id;
}

async function logs(id: string): Promise<string> {
  const r = await exec('docker', ['logs', id]).catch((e: { stdout?: string; stderr?: string }) => e);
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

describe('ik-sim image', { skip }, () => {
  test('docker is available', () => {
    assert.ok(hasDocker, 'Docker is required in CI (CI=true) but `docker info` failed');
  });

  test('the script builds ik-sim:dev idempotently, labelled ik.sim=1', { timeout: 120_000 }, async () => {
    const script = join(ROOT, 'scripts/build-sim-image.sh');
    const first = (await exec(script, [], { cwd: ROOT })).stdout.trim();
    assert.match(first, /^sha256:[0-9a-f]{64}$/);
    const second = (await exec(script, [], { cwd: ROOT })).stdout.trim();
    assert.equal(second, first);
    const { stdout } = await exec('docker', ['image', 'inspect', '-f', '{{index .Config.Labels "ik.sim"}} {{json .Config.Env}}', IMAGE]);
    assert.match(stdout, /^1 .*PATH=\/usr\/local\/bin/);
  });

  test('`vllm serve M` in a container answers /health and lists the model on the host network', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const id = await runContainer(['-e', 'IK_REPLICA_ID=rep-img', IMAGE, 'vllm', 'serve', 'M', '--host', '127.0.0.1', '--port', String(port)]);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/health`).catch(() => null))?.status === 200, 20_000, () => `container ${id}`);
    const res = await fetch(`${url}/v1/models`);
    assert.equal(res.headers.get('x-ik-sim-replica'), 'rep-img');
    const models = (await res.json()) as { data: Array<{ id: string }> };
    assert.deepEqual(models.data.map((m) => m.id), ['M']);
    // docker stop sends SIGTERM to PID 1 (node): it must exit promptly, not after the kill timeout.
    const t0 = Date.now();
    await exec('docker', ['stop', '-t', '10', id]);
    containers.delete(id);
    assert.ok(Date.now() - t0 < 5000, `docker stop took ${Date.now() - t0} ms`);
  });

  test('python3 -m sglang.launch_server, vllm-omni serve and ollama serve entry points', { timeout: 60_000 }, async () => {
    const [sgPort, omniPort, olPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const ids = await Promise.all([
      runContainer([IMAGE, 'python3', '-m', 'sglang.launch_server', '--model-path', 'S', '--host', '127.0.0.1', '--port', String(sgPort), '--enable-metrics']),
      runContainer([IMAGE, 'vllm-omni', 'serve', 'O', '--host', '127.0.0.1', '--port', String(omniPort)]),
      runContainer(['-e', `OLLAMA_HOST=127.0.0.1:${olPort}`, IMAGE, 'ollama', 'serve']),
    ]);
    const ready = (url: string) => async () => (await fetch(url).catch(() => null))?.status === 200;
    const context = () => ids.join(', ');
    await waitFor(ready(`http://127.0.0.1:${sgPort}/health`), 20_000, context);
    await waitFor(ready(`http://127.0.0.1:${omniPort}/health`), 20_000, context);
    await waitFor(ready(`http://127.0.0.1:${olPort}/api/version`), 20_000, context);
    assert.match(await (await fetch(`http://127.0.0.1:${sgPort}/metrics`)).text(), /sglang:num_running_reqs\{model_name="S"\}/);
    assert.match(await logs(ids[1]!), /ik-sim, omni/);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${olPort}/api/tags`)).json(), { models: [] });
  });

  test('a malformed command exits non-zero with the message on stderr', { timeout: 60_000 }, async () => {
    const r = await exec('docker', ['run', '--rm', '--label', 'ik.test=sim', IMAGE, 'vllm', 'serve']).catch((e: { code?: number; stderr?: string }) => e);
    assert.equal((r as { code?: number }).code, 2);
    assert.match((r as { stderr?: string }).stderr ?? '', /required: model_tag/);
  });
});
